// Builds raw fcp frames and message payloads by hand from the byte layouts (STYLE rule 12: fixtures come from
// a builder, not from binary blobs). Nothing here calls the protocol encoders: the layouts are written out
// again on purpose, so a test that compares them with encodeMessage/encodeFrame cross-checks the encoder.
import { loadHasher } from '../../src/transfer/checksum.js';

/** A growable list of big-endian fields; independent of src/protocol/byte-io.ts. */
export class Bytes {
  readonly #parts: Uint8Array[] = [];

  #fixed(size: number, write: (view: DataView) => void): this {
    const part = new Uint8Array(size);
    write(new DataView(part.buffer));
    this.#parts.push(part);
    return this;
  }

  u8(v: number): this {
    return this.#fixed(1, (d) => d.setUint8(0, v));
  }

  u16(v: number): this {
    return this.#fixed(2, (d) => d.setUint16(0, v));
  }

  u32(v: number): this {
    return this.#fixed(4, (d) => d.setUint32(0, v));
  }

  u64(v: bigint): this {
    return this.#fixed(8, (d) => d.setBigUint64(0, v));
  }

  i64(v: bigint): this {
    return this.#fixed(8, (d) => d.setBigInt64(0, v));
  }

  raw(b: Uint8Array | readonly number[]): this {
    this.#parts.push(Uint8Array.from(b));
    return this;
  }

  /** u16 byte length, then the bytes: a string as UTF-8, or raw bytes (to build invalid UTF-8). */
  str16(s: string | Uint8Array): this {
    const b = typeof s === 'string' ? new TextEncoder().encode(s) : s;
    return this.u16(b.byteLength).raw(b);
  }

  /** u16 count, then each string as str16. */
  strings(list: readonly (string | Uint8Array)[]): this {
    this.u16(list.length);
    for (const s of list) this.str16(s);
    return this;
  }

  /** A fresh Buffer of everything so far (not from the shared pool, so `.buffer` identity means something). */
  build(): Buffer {
    const total = this.#parts.reduce((n, p) => n + p.byteLength, 0);
    const out = Buffer.alloc(total);
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  }
}

/** Concatenates into a fresh, unpooled Buffer. */
export function concat(parts: readonly Uint8Array[]): Buffer {
  const b = new Bytes();
  for (const p of parts) b.raw(p);
  return b.build();
}

// Frame type numbers written out again, not imported, for the same cross-checking reason.
export const T = {
  PUSH: 0x01,
  PULL: 0x02,
  SESSION: 0x03,
  ATTACH: 0x04,
  RESERVED_05: 0x05,
  DIR_INFO: 0x06,
  FILE_INFO: 0x07,
  FILE_COUNT: 0x08,
  FILE_READY: 0x09,
  DATA: 0x0a,
  DONE: 0x0b,
  ABORT: 0x0c,
  PIECE_ACK: 0x0d,
  FILE_END: 0x0e,
  FILE_DONE: 0x0f,
  HELLO: 0x10,
  PING: 0x11,
  FILE_HAVE: 0x12,
  AUTH_START: 0x13,
  AUTH_CHALLENGE: 0x14,
  AUTH_PROOF: 0x15,
  AUTH_RETRY: 0x16,
  ATTACH_CHALLENGE: 0x17,
  ATTACH_PROOF: 0x18,
  DETACH: 0x19,
} as const;

export interface FrameOverrides {
  /** Header checksum to write instead of xxh32(payload). */
  checksum?: number;
  /** Header length to write instead of payload.length (the payload bytes are still appended as given). */
  length?: number;
}

/** Frames: `flag` u8 | `chksum` u32 = xxh32(payload, 0) | `length` u16 | payload. */
export class FrameBuilder {
  /** xxh32(bytes, seed 0), from the project's hasher. */
  readonly h32: (bytes: Uint8Array) => number;

  constructor(h32: (bytes: Uint8Array) => number) {
    this.h32 = h32;
  }

  /** Just the 7-byte header. */
  header(type: number, checksum: number, length: number): Buffer {
    return new Bytes().u8(type).u32(checksum).u16(length).build();
  }

  /** A whole frame with a correct checksum and length unless overridden. */
  frame(type: number, payload: Uint8Array = new Uint8Array(0), overrides: FrameOverrides = {}): Buffer {
    const sum = overrides.checksum ?? this.h32(payload);
    const length = overrides.length ?? payload.byteLength;
    return concat([this.header(type, sum, length), payload]);
  }

  /** Several frames back to back in one fresh buffer. */
  stream(frames: ReadonlyArray<readonly [type: number, payload: Uint8Array]>): Buffer {
    return concat(frames.map(([type, payload]) => this.frame(type, payload)));
  }
}

/** A FrameBuilder on the project's xxh32. */
export async function loadFrameBuilder(): Promise<FrameBuilder> {
  const hasher = await loadHasher();
  return new FrameBuilder(hasher.h32);
}

// ---- Message payloads, one builder per type, from the layouts in src/protocol/messages.ts. Every numeric
// field takes any number so tests can write values the decoder must refuse (bad kinds, actions, flags).

type Text = string | Uint8Array;

/** A time on the wire: i64 seconds (floored) | u32 nanoseconds in [0, 1e9). */
export interface WireTime {
  sec: bigint;
  nsec: number;
}

function time(b: Bytes, t: WireTime): Bytes {
  return b.i64(t.sec).u32(t.nsec);
}

export const payload = {
  /** magic "FCP" | version_min u16 | version_max u16 | capabilities u32 | agent str16 */
  hello(f: {
    magic?: Text;
    versionMin: number;
    versionMax: number;
    capabilities: number;
    agent: Text;
  }): Buffer {
    const magic = f.magic ?? 'FCP';
    return new Bytes()
      .raw(typeof magic === 'string' ? new TextEncoder().encode(magic) : magic)
      .u16(f.versionMin)
      .u16(f.versionMax)
      .u32(f.capabilities)
      .str16(f.agent)
      .build();
  },

  /** flags u32 | connections u16 | dest str16 */
  push(f: { flags: number; connections: number; dest: Text }): Buffer {
    return new Bytes().u32(f.flags).u16(f.connections).str16(f.dest).build();
  },

  /** flags u32 | connections u16 | source str16 | include list | exclude list (u16 count + str16s). No regex: those stay on the client. */
  pull(f: {
    flags: number;
    connections: number;
    source: Text;
    include: readonly Text[];
    exclude: readonly Text[];
  }): Buffer {
    return new Bytes()
      .u32(f.flags)
      .u16(f.connections)
      .str16(f.source)
      .strings(f.include)
      .strings(f.exclude)
      .build();
  },

  /** session_id [16] | flags u32 | max_connections u16 | piece_size u32 */
  session(f: { sessionId: Uint8Array; flags: number; maxConnections: number; pieceSize: number }): Buffer {
    return new Bytes().raw(f.sessionId).u32(f.flags).u16(f.maxConnections).u32(f.pieceSize).build();
  },

  /** session_id [16] | (the daemon's answer under AttachProven) proof [32] */
  attach(f: { sessionId: Uint8Array; proof?: Uint8Array }): Buffer {
    const b = new Bytes().raw(f.sessionId);
    return (f.proof === undefined ? b : b.raw(f.proof)).build();
  },

  /** id u32 | mode u32 | mtime (i64 s | u32 ns) | path str16 */
  dirInfo(f: { id: number; mode: number; mtime: WireTime; path: Text }): Buffer {
    return time(new Bytes().u32(f.id).u32(f.mode), f.mtime).str16(f.path).build();
  },

  /** id u32 | kind u8 | mode u32 | size u64 | mtime (i64 s | u32 ns) | checksum u64 | has_checksum u8 | path str16 | link_target str16 */
  fileInfo(f: {
    id: number;
    kind: number;
    mode: number;
    size: bigint;
    mtime: WireTime;
    checksum: bigint;
    hasChecksum: number;
    path: Text;
    linkTarget: Text;
  }): Buffer {
    return time(new Bytes().u32(f.id).u8(f.kind).u32(f.mode).u64(f.size), f.mtime)
      .u64(f.checksum)
      .u8(f.hasChecksum)
      .str16(f.path)
      .str16(f.linkTarget)
      .build();
  },

  /** entries u32 | bytes u64 */
  fileCount(f: { entries: number; bytes: bigint }): Buffer {
    return new Bytes().u32(f.entries).u64(f.bytes).build();
  },

  /** count u16 | count x (id u32 | action u8 | code u16) */
  fileReady(
    entries: ReadonlyArray<{ id: number; action: number; code: number }>,
    count = entries.length,
  ): Buffer {
    const b = new Bytes().u16(count);
    for (const e of entries) b.u32(e.id).u8(e.action).u16(e.code);
    return b.build();
  },

  /** file_id u32 | seq u32 | offset u32 | bytes */
  data(f: { id: number; seq: number; offset: number; data: Uint8Array }): Buffer {
    return new Bytes().u32(f.id).u32(f.seq).u32(f.offset).raw(f.data).build();
  },

  /** files_sent u32 | files_skipped u32 | files_failed u32 | bytes u64 */
  done(f: { filesSent: number; filesSkipped: number; filesFailed: number; bytes: bigint }): Buffer {
    return new Bytes().u32(f.filesSent).u32(f.filesSkipped).u32(f.filesFailed).u64(f.bytes).build();
  },

  /** code u16 | text str16 */
  abort(f: { code: number; text: Text }): Buffer {
    return new Bytes().u16(f.code).str16(f.text).build();
  },

  /** count u16 | count x (id u32 | seq u32) */
  pieceAck(pieces: ReadonlyArray<{ id: number; seq: number }>, count = pieces.length): Buffer {
    const b = new Bytes().u16(count);
    for (const p of pieces) b.u32(p.id).u32(p.seq);
    return b.build();
  },

  /** id u32 | code u16 | checksum u64 */
  fileEnd(f: { id: number; code: number; checksum: bigint }): Buffer {
    return new Bytes().u32(f.id).u16(f.code).u64(f.checksum).build();
  },

  /** count u16 | count x (id u32 | code u16) */
  fileDone(entries: ReadonlyArray<{ id: number; code: number }>, count = entries.length): Buffer {
    const b = new Bytes().u16(count);
    for (const e of entries) b.u32(e.id).u16(e.code);
    return b.build();
  },

  /** empty */
  ping(): Buffer {
    return Buffer.alloc(0);
  },

  /** empty */
  detach(): Buffer {
    return Buffer.alloc(0);
  },

  /** id u32 | first_seq u32 | bitmap (the rest, at least one byte; bit i, MSB first, is piece first_seq + i) */
  fileHave(f: { id: number; firstSeq: number; bitmap: Uint8Array }): Buffer {
    return new Bytes().u32(f.id).u32(f.firstSeq).raw(f.bitmap).build();
  },

  /** client_nonce [32] | client_kx [32] | user str16 */
  authStart(f: { clientNonce: Uint8Array; clientKx: Uint8Array; user: Text }): Buffer {
    return new Bytes().raw(f.clientNonce).raw(f.clientKx).str16(f.user).build();
  },

  /** server_nonce [32] | server_kx [32] | host_key bytes16 | host_proof bytes16 | token_path str16 */
  authChallenge(f: {
    serverNonce: Uint8Array;
    serverKx: Uint8Array;
    hostKey: Uint8Array;
    hostProof: Uint8Array;
    tokenPath: Text;
  }): Buffer {
    return new Bytes()
      .raw(f.serverNonce)
      .raw(f.serverKx)
      .str16(f.hostKey)
      .str16(f.hostProof)
      .str16(f.tokenPath)
      .build();
  },

  /** method u8 | key_blob bytes16 | proof bytes16 */
  authProof(f: { method: number; keyBlob: Uint8Array; proof: Uint8Array }): Buffer {
    return new Bytes().u8(f.method).str16(f.keyBlob).str16(f.proof).build();
  },

  /** attempts_left u8 */
  authRetry(attemptsLeft: number): Buffer {
    return new Bytes().u8(attemptsLeft).build();
  },

  /** attach_nonce [32] */
  attachChallenge(nonce: Uint8Array): Buffer {
    return new Bytes().raw(nonce).build();
  },

  /** proof [32] */
  attachProof(proof: Uint8Array): Buffer {
    return new Bytes().raw(proof).build();
  },
};
