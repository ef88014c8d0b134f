import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { MAX_DATA_BYTES, MsgType, PIECE_SIZE, ReadyAction } from '../../src/protocol/constants.js';
import { errorArea, FcpError } from '../../src/protocol/errors.js';
import {
  type DataMsg,
  decodeMessage,
  encodeDataPrefix,
  encodeMessage,
  MAX_ACK_ENTRIES,
  MAX_DONE_ENTRIES,
  MAX_HAVE_BYTES,
  MAX_PAYLOAD_BY_TYPE,
  MAX_READY_ENTRIES,
  MESSAGE_CODECS,
  type Message,
  type ReadyEntry,
} from '../../src/protocol/messages.js';
import { concat, payload, T, type WireTime } from '../helpers/frame-builder.js';

// Messages (src/protocol/messages.ts): every type round-trips through encodeMessage/decodeMessage and
// decodes from a payload built by hand from the layout, so the encoder is checked against the layout too.

type NonData = Exclude<Message, DataMsg>;

function fcpErrorOf(fn: () => unknown): FcpError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FcpError) return err;
    assert.unreachable(`expected an FcpError, got ${err instanceof Error ? err.stack : String(err)}`);
  }
  assert.unreachable('expected an FcpError, nothing was thrown');
  throw new Error('unreachable');
}

function assertCode(fn: () => unknown, code: string, label: string): void {
  const err = fcpErrorOf(fn);
  assert.is(err.code, code, `${label}: ${err.code} ${err.message}`);
}

function assertMalformed(type: number, p: Uint8Array, label: string): void {
  assertCode(() => decodeMessage(type, p), 'FCP_ERR_PROTO_MALFORMED', label);
}

const U32_MAX = 0xffffffff;
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const I64_MAX = 0x7fff_ffff_ffff_ffffn;
const I64_MIN = -0x8000_0000_0000_0000n;
const NS = 1_000_000_000n;

/** The nanosecond count a WireTime stands for. */
function nsOf(t: WireTime): bigint {
  return t.sec * NS + BigInt(t.nsec);
}

function ascii(n: number, ch = 'a'): string {
  return ch.repeat(n);
}

/** `n` bytes counting up from `seed`, a fresh Uint8Array (what the decoder copies binary fields into). */
function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed + i) & 0xff);
}

/** Exactly `n` bytes of UTF-8 made mostly of 2-byte characters. */
function utf8Bytes(n: number): string {
  return 'é'.repeat(Math.floor(n / 2)) + (n % 2 === 1 ? 'z' : '');
}

function sessionId(seed: number): Uint8Array {
  return Uint8Array.from({ length: 16 }, (_, i) => (i * 17 + seed) & 0xff);
}

const UNICODE_PATH = 'dir/naïve\nline\ttab/日本語/😀 e\u0301\r.txt';

interface Case {
  name: string;
  msg: NonData;
  /** The payload written by hand from the layout. */
  wire: Buffer;
}

function fileInfoCase(
  name: string,
  f: {
    id: number;
    kind: 1 | 2;
    mode: number;
    size: bigint;
    mtime: WireTime;
    checksum: bigint | undefined;
    path: string;
    linkTarget: string;
  },
): Case {
  return {
    name,
    msg: {
      type: MsgType.FileInfo,
      id: f.id,
      kind: f.kind,
      mode: f.mode,
      size: f.size,
      mtimeNs: nsOf(f.mtime),
      checksum: f.checksum,
      path: f.path,
      linkTarget: f.linkTarget,
    },
    wire: payload.fileInfo({
      ...f,
      checksum: f.checksum ?? 0n,
      hasChecksum: f.checksum === undefined ? 0 : 1,
    }),
  };
}

function dirInfoCase(name: string, f: { id: number; mode: number; mtime: WireTime; path: string }): Case {
  return {
    name,
    msg: { type: MsgType.DirInfo, id: f.id, mode: f.mode, mtimeNs: nsOf(f.mtime), path: f.path },
    wire: payload.dirInfo(f),
  };
}

const ACTIONS = Object.values(ReadyAction);

function readyEntries(n: number): ReadyEntry[] {
  return Array.from({ length: n }, (_, i) => {
    const action = ACTIONS[i % ACTIONS.length]!;
    const code = action === ReadyAction.Fail ? (i * 7) & 0xffff : 0;
    return { id: (i * 2_654_435_761) >>> 0, action, code };
  });
}

function pullCase(name: string, f: Omit<Extract<NonData, { type: 0x02 }>, 'type'>): Case {
  return { name, msg: { type: MsgType.Pull, ...f }, wire: payload.pull(f) };
}

const patterns = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

const CASES: Case[] = [
  {
    name: 'HELLO typical',
    msg: { type: MsgType.Hello, versionMin: 1, versionMax: 1, capabilities: 0, agent: 'fcp/0.1.0 node/20' },
    wire: payload.hello({ versionMin: 1, versionMax: 1, capabilities: 0, agent: 'fcp/0.1.0 node/20' }),
  },
  {
    name: 'HELLO edge values, empty agent',
    msg: { type: MsgType.Hello, versionMin: 0, versionMax: 0xffff, capabilities: U32_MAX, agent: '' },
    wire: payload.hello({ versionMin: 0, versionMax: 0xffff, capabilities: U32_MAX, agent: '' }),
  },
  {
    name: 'HELLO 200-character agent, unicode',
    msg: { type: MsgType.Hello, versionMin: 1, versionMax: 2, capabilities: 5, agent: `ü${ascii(199)}` },
    wire: payload.hello({ versionMin: 1, versionMax: 2, capabilities: 5, agent: `ü${ascii(199)}` }),
  },
  {
    name: 'PUSH empty dest',
    msg: { type: MsgType.Push, flags: 0, connections: 1, dest: '' },
    wire: payload.push({ flags: 0, connections: 1, dest: '' }),
  },
  {
    name: 'PUSH edge values, unicode dest with newline and tab',
    msg: { type: MsgType.Push, flags: 3, connections: 0xffff, dest: UNICODE_PATH },
    wire: payload.push({ flags: 3, connections: 0xffff, dest: UNICODE_PATH }),
  },
  {
    name: 'PUSH dest of exactly 4095 bytes',
    msg: { type: MsgType.Push, flags: 3, connections: 8, dest: utf8Bytes(4095) },
    wire: payload.push({ flags: 3, connections: 8, dest: utf8Bytes(4095) }),
  },
  pullCase('PULL no patterns', {
    flags: 0,
    connections: 1,
    source: '',
    include: [],
    exclude: [],
  }),
  pullCase('PULL unicode patterns', {
    flags: 3,
    connections: 0xffff,
    source: UNICODE_PATH,
    include: ['*.txt', '', 'ü/**'],
    exclude: ['a\nb', '日本\t'],
  }),
  pullCase('PULL 256 patterns in each list, one of 4095 bytes', {
    flags: 1,
    connections: 16,
    source: 'src/**',
    include: [...patterns(255, 'inc'), utf8Bytes(4095)],
    exclude: patterns(256, 'exc'),
  }),
  {
    name: 'SESSION typical',
    msg: {
      type: MsgType.Session,
      sessionId: sessionId(1),
      flags: 3,
      maxConnections: 64,
      pieceSize: PIECE_SIZE,
    },
    wire: payload.session({ sessionId: sessionId(1), flags: 3, maxConnections: 64, pieceSize: PIECE_SIZE }),
  },
  {
    name: 'SESSION edge values',
    msg: {
      type: MsgType.Session,
      sessionId: new Uint8Array(16).fill(0xff),
      flags: 3,
      maxConnections: 0xffff,
      pieceSize: U32_MAX,
    },
    wire: payload.session({
      sessionId: new Uint8Array(16).fill(0xff),
      flags: 3,
      maxConnections: 0xffff,
      pieceSize: U32_MAX,
    }),
  },
  {
    name: 'SESSION zeros',
    msg: { type: MsgType.Session, sessionId: new Uint8Array(16), flags: 0, maxConnections: 0, pieceSize: 0 },
    wire: payload.session({ sessionId: new Uint8Array(16), flags: 0, maxConnections: 0, pieceSize: 0 }),
  },
  {
    name: 'ATTACH',
    msg: { type: MsgType.Attach, sessionId: sessionId(99) },
    wire: payload.attach({ sessionId: sessionId(99) }),
  },
  dirInfoCase('DIR_INFO zeros, empty path', { id: 0, mode: 0, mtime: { sec: 0n, nsec: 0 }, path: '' }),
  dirInfoCase('DIR_INFO before 1970 with nanoseconds (-1.5 s)', {
    id: U32_MAX,
    mode: 0o40755,
    mtime: { sec: -2n, nsec: 500_000_000 },
    path: UNICODE_PATH,
  }),
  dirInfoCase('DIR_INFO one nanosecond before 1970', {
    id: 1,
    mode: U32_MAX,
    mtime: { sec: -1n, nsec: 999_999_999 },
    path: 'a',
  }),
  dirInfoCase('DIR_INFO largest time', {
    id: 2,
    mode: 0o755,
    mtime: { sec: I64_MAX, nsec: 999_999_999 },
    path: utf8Bytes(4095),
  }),
  dirInfoCase('DIR_INFO smallest time', { id: 3, mode: 0o700, mtime: { sec: I64_MIN, nsec: 0 }, path: 'b' }),
  fileInfoCase('FILE_INFO without checksum', {
    id: 7,
    kind: 1,
    mode: 0o100644,
    size: 12345n,
    mtime: { sec: 1_700_000_000n, nsec: 123_456_789 },
    checksum: undefined,
    path: 'a/b.txt',
    linkTarget: '',
  }),
  fileInfoCase('FILE_INFO with a zero checksum (present, not absent)', {
    id: 8,
    kind: 1,
    mode: 0o100600,
    size: 0n,
    mtime: { sec: 0n, nsec: 1 },
    checksum: 0n,
    path: 'empty',
    linkTarget: '',
  }),
  fileInfoCase('FILE_INFO edge values, pre-1970 time, unicode path', {
    id: U32_MAX,
    kind: 1,
    mode: U32_MAX,
    size: U64_MAX,
    mtime: { sec: -1n, nsec: 876_543_211 },
    checksum: U64_MAX,
    path: UNICODE_PATH,
    linkTarget: '',
  }),
  fileInfoCase('FILE_INFO symlink', {
    id: 9,
    kind: 2,
    mode: 0o120777,
    size: 9n,
    mtime: { sec: -86_400n, nsec: 0 },
    checksum: undefined,
    path: 'link\tname',
    linkTarget: '../target\nwith newline/😀',
  }),
  fileInfoCase('FILE_INFO path and link target of 4095 bytes each (the type maximum)', {
    id: 10,
    kind: 2,
    mode: 0o120777,
    size: 4095n,
    mtime: { sec: I64_MIN, nsec: 999_999_999 },
    checksum: 1n,
    path: utf8Bytes(4095),
    linkTarget: ascii(4095, 't'),
  }),
  {
    name: 'FILE_COUNT zeros',
    msg: { type: MsgType.FileCount, entries: 0, bytes: 0n },
    wire: payload.fileCount({ entries: 0, bytes: 0n }),
  },
  {
    name: 'FILE_COUNT edge values',
    msg: { type: MsgType.FileCount, entries: U32_MAX, bytes: U64_MAX },
    wire: payload.fileCount({ entries: U32_MAX, bytes: U64_MAX }),
  },
  { name: 'FILE_READY empty', msg: { type: MsgType.FileReady, entries: [] }, wire: payload.fileReady([]) },
  {
    name: 'FILE_READY one entry of each action',
    msg: {
      type: MsgType.FileReady,
      entries: readyEntries(ACTIONS.length).map((e, i) => (i === 0 ? { ...e, id: U32_MAX } : e)),
    },
    wire: payload.fileReady(
      readyEntries(ACTIONS.length).map((e, i) => (i === 0 ? { ...e, id: U32_MAX } : e)),
    ),
  },
  {
    name: 'FILE_READY MAX_READY_ENTRIES entries',
    msg: { type: MsgType.FileReady, entries: readyEntries(MAX_READY_ENTRIES) },
    wire: payload.fileReady(readyEntries(MAX_READY_ENTRIES)),
  },
  {
    name: 'DONE zeros',
    msg: { type: MsgType.Done, filesSent: 0, filesSkipped: 0, filesFailed: 0, bytes: 0n },
    wire: payload.done({ filesSent: 0, filesSkipped: 0, filesFailed: 0, bytes: 0n }),
  },
  {
    name: 'DONE edge values',
    msg: { type: MsgType.Done, filesSent: U32_MAX, filesSkipped: 1, filesFailed: U32_MAX, bytes: U64_MAX },
    wire: payload.done({ filesSent: U32_MAX, filesSkipped: 1, filesFailed: U32_MAX, bytes: U64_MAX }),
  },
  {
    name: 'ABORT',
    msg: { type: MsgType.Abort, code: 0x0104, text: 'payload too short for id' },
    wire: payload.abort({ code: 0x0104, text: 'payload too short for id' }),
  },
  {
    name: 'ABORT empty text, largest code',
    msg: { type: MsgType.Abort, code: 0xffff, text: '' },
    wire: payload.abort({ code: 0xffff, text: '' }),
  },
  {
    name: 'ABORT text of exactly 1024 bytes',
    msg: { type: MsgType.Abort, code: 1, text: utf8Bytes(1024) },
    wire: payload.abort({ code: 1, text: utf8Bytes(1024) }),
  },
  { name: 'PIECE_ACK empty', msg: { type: MsgType.PieceAck, pieces: [] }, wire: payload.pieceAck([]) },
  {
    name: 'PIECE_ACK MAX_ACK_ENTRIES pieces',
    msg: {
      type: MsgType.PieceAck,
      pieces: Array.from({ length: MAX_ACK_ENTRIES }, (_, i) => ({
        id: i === 0 ? U32_MAX : i,
        seq: U32_MAX - i,
      })),
    },
    wire: payload.pieceAck(
      Array.from({ length: MAX_ACK_ENTRIES }, (_, i) => ({ id: i === 0 ? U32_MAX : i, seq: U32_MAX - i })),
    ),
  },
  {
    name: 'FILE_END zeros',
    msg: { type: MsgType.FileEnd, id: 0, code: 0, checksum: 0n },
    wire: payload.fileEnd({ id: 0, code: 0, checksum: 0n }),
  },
  {
    name: 'FILE_END edge values',
    msg: { type: MsgType.FileEnd, id: U32_MAX, code: 0xffff, checksum: U64_MAX },
    wire: payload.fileEnd({ id: U32_MAX, code: 0xffff, checksum: U64_MAX }),
  },
  { name: 'FILE_DONE empty', msg: { type: MsgType.FileDone, entries: [] }, wire: payload.fileDone([]) },
  {
    name: 'FILE_DONE MAX_DONE_ENTRIES entries',
    msg: {
      type: MsgType.FileDone,
      entries: Array.from({ length: MAX_DONE_ENTRIES }, (_, i) => ({ id: U32_MAX - i, code: i & 0xffff })),
    },
    wire: payload.fileDone(
      Array.from({ length: MAX_DONE_ENTRIES }, (_, i) => ({ id: U32_MAX - i, code: i & 0xffff })),
    ),
  },
  { name: 'PING', msg: { type: MsgType.Ping }, wire: payload.ping() },
  { name: 'DETACH', msg: { type: MsgType.Detach }, wire: payload.detach() },
  {
    name: 'FILE_HAVE one bitmap byte',
    msg: { type: MsgType.FileHave, id: 4, firstSeq: 0, bitmap: Uint8Array.from([0b1010_0000]) },
    wire: payload.fileHave({ id: 4, firstSeq: 0, bitmap: Uint8Array.from([0b1010_0000]) }),
  },
  {
    name: 'AUTH_START empty user',
    msg: { type: MsgType.AuthStart, clientNonce: bytes(32, 1), clientKx: bytes(32, 2), user: '' },
    wire: payload.authStart({ clientNonce: bytes(32, 1), clientKx: bytes(32, 2), user: '' }),
  },
  {
    name: 'AUTH_START user of 255 bytes',
    msg: { type: MsgType.AuthStart, clientNonce: bytes(32, 3), clientKx: bytes(32, 4), user: utf8Bytes(255) },
    wire: payload.authStart({ clientNonce: bytes(32, 3), clientKx: bytes(32, 4), user: utf8Bytes(255) }),
  },
  {
    name: 'AUTH_CHALLENGE every field at its maximum',
    msg: {
      type: MsgType.AuthChallenge,
      serverNonce: bytes(32, 5),
      serverKx: bytes(32, 6),
      hostKey: bytes(1024, 7),
      hostProof: bytes(1024, 8),
      tokenPath: ascii(4095),
    },
    wire: payload.authChallenge({
      serverNonce: bytes(32, 5),
      serverKx: bytes(32, 6),
      hostKey: bytes(1024, 7),
      hostProof: bytes(1024, 8),
      tokenPath: ascii(4095),
    }),
  },
  {
    name: 'AUTH_CHALLENGE without a token',
    msg: {
      type: MsgType.AuthChallenge,
      serverNonce: bytes(32, 9),
      serverKx: bytes(32, 10),
      hostKey: bytes(44, 11),
      hostProof: bytes(64, 12),
      tokenPath: '',
    },
    wire: payload.authChallenge({
      serverNonce: bytes(32, 9),
      serverKx: bytes(32, 10),
      hostKey: bytes(44, 11),
      hostProof: bytes(64, 12),
      tokenPath: '',
    }),
  },
  {
    name: 'AUTH_PROOF publickey, largest blob and signature',
    msg: { type: MsgType.AuthProof, method: 1, keyBlob: bytes(4096, 13), proof: bytes(4096, 14) },
    wire: payload.authProof({ method: 1, keyBlob: bytes(4096, 13), proof: bytes(4096, 14) }),
  },
  {
    name: 'AUTH_PROOF token',
    msg: { type: MsgType.AuthProof, method: 2, keyBlob: new Uint8Array(0), proof: bytes(32, 15) },
    wire: payload.authProof({ method: 2, keyBlob: new Uint8Array(0), proof: bytes(32, 15) }),
  },
  { name: 'AUTH_RETRY', msg: { type: MsgType.AuthRetry, attemptsLeft: 5 }, wire: payload.authRetry(5) },
  {
    name: 'ATTACH_CHALLENGE',
    msg: { type: MsgType.AttachChallenge, nonce: bytes(32, 16) },
    wire: payload.attachChallenge(bytes(32, 16)),
  },
  {
    name: 'ATTACH_PROOF',
    msg: { type: MsgType.AttachProof, proof: bytes(32, 17) },
    wire: payload.attachProof(bytes(32, 17)),
  },
  {
    name: 'FILE_HAVE MAX_HAVE_BYTES bitmap, edge values',
    msg: {
      type: MsgType.FileHave,
      id: U32_MAX,
      firstSeq: U32_MAX,
      bitmap: new Uint8Array(MAX_HAVE_BYTES).fill(0xff),
    },
    wire: payload.fileHave({
      id: U32_MAX,
      firstSeq: U32_MAX,
      bitmap: new Uint8Array(MAX_HAVE_BYTES).fill(0xff),
    }),
  },
];

interface DataCase {
  name: string;
  id: number;
  seq: number;
  offset: number;
  data: Buffer;
}

const DATA_CASES: DataCase[] = [
  { name: 'DATA empty', id: 0, seq: 0, offset: 0, data: Buffer.alloc(0) },
  { name: 'DATA typical', id: 12, seq: 3, offset: 65_523, data: Buffer.from('hello, world') },
  {
    name: 'DATA MAX_DATA_BYTES, edge values',
    id: U32_MAX,
    seq: U32_MAX,
    offset: U32_MAX,
    data: Buffer.from(Array.from({ length: MAX_DATA_BYTES }, (_, i) => (i * 13) & 0xff)),
  },
];

/** Truncation lengths: all of them for small payloads, a bounded sample for the large batches. */
function truncations(length: number): number[] {
  if (length <= 2048) return Array.from({ length }, (_, i) => i);
  const out = new Set<number>();
  for (let i = 0; i < 256; i++) out.add(i);
  for (let i = length - 256; i < length; i++) out.add(i);
  for (let i = 256; i < length - 256; i += 61) out.add(i);
  return [...out];
}

test('every message type has a case', () => {
  const covered = new Set([...CASES.map((c) => c.msg.type), MsgType.Data]);
  for (const type of Object.values(MsgType)) assert.ok(covered.has(type), `type ${type}`);
});

test('the codec table has exactly one entry per message type, and none for anything else', () => {
  const types = MESSAGE_CODECS.map((c) => c.type as number).sort((a, b) => a - b);
  const expected = (Object.values(MsgType) as number[]).sort((a, b) => a - b);
  assert.equal(types, expected);
});

test('encodeMessage writes exactly the hand-built layout', () => {
  for (const c of CASES) {
    const encoded = encodeMessage(c.msg);
    assert.is(encoded.length, c.wire.length, `${c.name}: length`);
    assert.ok(encoded.equals(c.wire), c.name);
  }
});

test('decodeMessage reads the hand-built layout back to the message', () => {
  for (const c of CASES) assert.equal(decodeMessage(c.msg.type, c.wire), c.msg, c.name);
});

test('round trip: decodeMessage(encodeMessage(m)) equals m', () => {
  for (const c of CASES) assert.equal(decodeMessage(c.msg.type, encodeMessage(c.msg)), c.msg, c.name);
});

test('every case fits the maximum its frame type allows', () => {
  for (const c of CASES) {
    const max = MAX_PAYLOAD_BY_TYPE[c.msg.type]!;
    assert.ok(c.wire.length <= max, `${c.name}: ${c.wire.length} > ${max}`);
  }
  assert.is(payload.fileReady(readyEntries(MAX_READY_ENTRIES)).length, MAX_PAYLOAD_BY_TYPE[T.FILE_READY]);
});

test('DATA round trip through encodeDataPrefix, and the data is a view of the payload', () => {
  for (const c of DATA_CASES) {
    const wire = payload.data(c);
    const encoded = concat([encodeDataPrefix(c.id, c.seq, c.offset), c.data]);
    assert.ok(encoded.equals(wire), `${c.name}: layout`);
    const msg = decodeMessage(MsgType.Data, wire);
    assert.is(msg.type, MsgType.Data);
    if (msg.type !== MsgType.Data) return;
    assert.equal([msg.id, msg.seq, msg.offset], [c.id, c.seq, c.offset], c.name);
    assert.ok(Buffer.from(msg.data).equals(c.data), `${c.name}: data`);
    assert.ok(msg.data.buffer === wire.buffer, `${c.name}: no copy`);
    assert.is(msg.data.byteOffset, wire.byteOffset + 12, c.name);
  }
});

test('a session id is copied out of the payload; the payload may be reused afterwards', () => {
  const wire = payload.attach({ sessionId: sessionId(5) });
  const msg = decodeMessage(MsgType.Attach, wire);
  wire.fill(0);
  assert.equal(msg, { type: MsgType.Attach, sessionId: sessionId(5) });
});

test("the daemon's ATTACH answer with its proof (AttachProven): 16 + 32 bytes, nothing between or after", () => {
  const msg = { type: MsgType.Attach, sessionId: sessionId(7), proof: bytes(32, 8) } as const;
  const wire = payload.attach({ sessionId: sessionId(7), proof: bytes(32, 8) });
  assert.ok(Buffer.from(encodeMessage(msg)).equals(wire), 'encoded');
  assert.equal(decodeMessage(MsgType.Attach, wire), msg);
  for (let n = 17; n < 48; n++) assertMalformed(T.ATTACH, wire.subarray(0, n), `cut to ${n}`);
  assertMalformed(T.ATTACH, concat([wire, Buffer.from([0])]), '+ 1 byte');
  assertCode(() => encodeMessage({ ...msg, proof: bytes(31, 8) }), 'FCP_ERR_PROTO_MALFORMED', 'short proof');
});

test('payloads that sit inside a larger buffer decode from their own bytes only', () => {
  for (const c of CASES.slice(0, 12)) {
    const big = concat([Buffer.from([0xde, 0xad]), c.wire, Buffer.from([0xbe, 0xef, 0x00])]);
    assert.equal(decodeMessage(c.msg.type, big.subarray(2, 2 + c.wire.length)), c.msg, c.name);
  }
});

/** Types whose last field is "the rest of the payload": a shorter or longer payload can still be valid. */
const REST_TYPES: ReadonlyMap<number, number> = new Map([
  [MsgType.Data, 12],
  [MsgType.FileHave, 9],
]);

test('trailing bytes are FCP_ERR_PROTO_MALFORMED', () => {
  for (const c of CASES) {
    if (REST_TYPES.has(c.msg.type)) continue;
    assertMalformed(c.msg.type, concat([c.wire, Buffer.from([0])]), `${c.name} + 1 byte`);
    assertMalformed(c.msg.type, concat([c.wire, Buffer.alloc(9, 0xff)]), `${c.name} + 9 bytes`);
  }
  // A count that claims fewer entries than are present.
  assertMalformed(T.FILE_READY, concat([payload.fileReady([{ id: 1, action: 0, code: 0 }], 0)]), 'ready 0');
  assertMalformed(T.PIECE_ACK, payload.pieceAck([{ id: 1, seq: 1 }], 0), 'ack count 0');
  assertMalformed(T.FILE_DONE, payload.fileDone([{ id: 1, code: 0 }], 0), 'done count 0');
});

test('every truncation of every payload is FCP_ERR_PROTO_MALFORMED, never another exception', () => {
  for (const c of CASES) {
    const shortest = REST_TYPES.get(c.msg.type) ?? c.wire.length;
    for (const n of truncations(shortest)) {
      assertMalformed(c.msg.type, c.wire.subarray(0, n), `${c.name} cut to ${n}`);
    }
  }
  // DATA's bytes are the rest of the payload, so only the 12-byte prefix can be cut short (FILE_HAVE's
  // bitmap likewise, above: it needs at least one byte).
  const data = payload.data({ id: 1, seq: 2, offset: 3, data: Buffer.from('xyz') });
  for (let n = 0; n < 12; n++) assertMalformed(T.DATA, data.subarray(0, n), `DATA cut to ${n}`);
  // Counts that claim more entries than the payload holds.
  assertMalformed(T.FILE_READY, payload.fileReady([{ id: 1, action: 0, code: 0 }], 0xffff), 'ready 0xffff');
  assertMalformed(T.PIECE_ACK, payload.pieceAck([{ id: 1, seq: 1 }], 2), 'ack 2');
  assertMalformed(T.FILE_DONE, payload.fileDone([], 1), 'done 1');
});

const BAD_UTF8: ReadonlyArray<[string, number[]]> = [
  ['lone continuation byte', [0x80]],
  ['0xff', [0x61, 0xff, 0x62]],
  ['overlong NUL', [0xc0, 0x80]],
  ['overlong slash', [0xe0, 0x80, 0xaf]],
  ['UTF-16 surrogate', [0xed, 0xa0, 0x80]],
  ['cut multi-byte sequence', [0x61, 0xe2, 0x82]],
  ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
];

test('invalid UTF-8 in any string field is FCP_ERR_PROTO_MALFORMED', () => {
  const mtime = { sec: 0n, nsec: 0 };
  for (const [what, bytes] of BAD_UTF8) {
    const bad = Uint8Array.from(bytes);
    const sites: Array<[string, number, Buffer]> = [
      ['PUSH dest', T.PUSH, payload.push({ flags: 0, connections: 1, dest: bad })],
      [
        'PULL source',
        T.PULL,
        payload.pull({ flags: 0, connections: 1, source: bad, include: [], exclude: [] }),
      ],
      [
        'PULL include',
        T.PULL,
        payload.pull({ flags: 0, connections: 1, source: 's', include: ['ok', bad], exclude: [] }),
      ],
      [
        'PULL exclude',
        T.PULL,
        payload.pull({ flags: 0, connections: 1, source: 's', include: [], exclude: [bad] }),
      ],
      ['DIR_INFO path', T.DIR_INFO, payload.dirInfo({ id: 1, mode: 0, mtime, path: bad })],
      [
        'FILE_INFO path',
        T.FILE_INFO,
        payload.fileInfo({
          id: 1,
          kind: 1,
          mode: 0,
          size: 0n,
          mtime,
          checksum: 0n,
          hasChecksum: 0,
          path: bad,
          linkTarget: '',
        }),
      ],
      [
        'FILE_INFO link target',
        T.FILE_INFO,
        payload.fileInfo({
          id: 1,
          kind: 2,
          mode: 0,
          size: 0n,
          mtime,
          checksum: 0n,
          hasChecksum: 0,
          path: 'l',
          linkTarget: bad,
        }),
      ],
      ['HELLO agent', T.HELLO, payload.hello({ versionMin: 1, versionMax: 1, capabilities: 0, agent: bad })],
      ['ABORT text', T.ABORT, payload.abort({ code: 1, text: bad })],
    ];
    for (const [site, type, wire] of sites) assertMalformed(type, wire, `${site}: ${what}`);
  }
});

test('regression: a path starting with U+FEFF keeps it (no BOM stripping, no two names for one file)', () => {
  const withBom = '\uFEFFname.txt';
  const push = decodeMessage(T.PUSH, payload.push({ flags: 0, connections: 1, dest: withBom }));
  assert.equal(push, { type: MsgType.Push, flags: 0, connections: 1, dest: withBom }, 'PUSH from the wire');
  const dir = { type: MsgType.DirInfo, id: 1, mode: 0o755, mtimeNs: 0n, path: withBom } as const;
  assert.equal(decodeMessage(T.DIR_INFO, encodeMessage(dir)), dir, 'DIR_INFO round trip');
});

test('unknown enum values and out-of-range fields are FCP_ERR_PROTO_MALFORMED', () => {
  const file = {
    id: 1,
    kind: 1,
    mode: 0o644,
    size: 1n,
    mtime: { sec: 0n, nsec: 0 },
    checksum: 0n,
    hasChecksum: 0,
    path: 'f',
    linkTarget: '',
  };
  for (const kind of [0, 3, 0xff])
    assertMalformed(T.FILE_INFO, payload.fileInfo({ ...file, kind }), `kind ${kind}`);
  for (const hasChecksum of [2, 0xff]) {
    assertMalformed(T.FILE_INFO, payload.fileInfo({ ...file, hasChecksum }), `checksum flag ${hasChecksum}`);
  }
  for (const nsec of [1_000_000_000, U32_MAX]) {
    const mtime = { sec: 5n, nsec };
    assertMalformed(T.FILE_INFO, payload.fileInfo({ ...file, mtime }), `FILE_INFO nsec ${nsec}`);
    assertMalformed(
      T.DIR_INFO,
      payload.dirInfo({ id: 1, mode: 0, mtime, path: 'd' }),
      `DIR_INFO nsec ${nsec}`,
    );
  }
  for (const action of [ACTIONS.length, 9, 0xff]) {
    const entries = [
      { id: 1, action: 0, code: 0 },
      { id: 2, action, code: 0 },
      { id: 3, action: 1, code: 0 },
    ];
    assertMalformed(T.FILE_READY, payload.fileReady(entries), `action ${action}`);
  }
  const hello = { versionMin: 2, versionMax: 1, capabilities: 0, agent: 'x' };
  assertMalformed(T.HELLO, payload.hello(hello), 'HELLO version range 2..1');
});

test('strings and lists over their limits, and an empty FILE_HAVE bitmap, are FCP_ERR_PROTO_MALFORMED', () => {
  const long = utf8Bytes(4096);
  const pull = { flags: 0, connections: 1, source: 's', include: [] as string[], exclude: [] as string[] };
  const mtime = { sec: 0n, nsec: 0 };
  const file = {
    id: 1,
    kind: 2,
    mode: 0,
    size: 0n,
    mtime,
    checksum: 0n,
    hasChecksum: 0,
    path: 'p',
    linkTarget: '',
  };
  const cases: Array<[string, number, Buffer]> = [
    ['PUSH dest 4096 bytes', T.PUSH, payload.push({ flags: 0, connections: 1, dest: long })],
    ['PULL source 4096 bytes', T.PULL, payload.pull({ ...pull, source: long })],
    ['PULL include 4096 bytes', T.PULL, payload.pull({ ...pull, include: [long] })],
    ['PULL 257 include patterns', T.PULL, payload.pull({ ...pull, include: patterns(257, 'i') })],
    ['PULL 257 exclude patterns', T.PULL, payload.pull({ ...pull, exclude: patterns(257, 'e') })],
    [
      'FILE_HAVE without a bitmap',
      T.FILE_HAVE,
      payload.fileHave({ id: 1, firstSeq: 0, bitmap: new Uint8Array(0) }),
    ],
    ['DIR_INFO path 4096 bytes', T.DIR_INFO, payload.dirInfo({ id: 1, mode: 0, mtime, path: long })],
    ['FILE_INFO path 4096 bytes', T.FILE_INFO, payload.fileInfo({ ...file, path: long })],
    ['FILE_INFO link target 4096 bytes', T.FILE_INFO, payload.fileInfo({ ...file, linkTarget: long })],
    [
      'HELLO agent 256 bytes',
      T.HELLO,
      payload.hello({ versionMin: 1, versionMax: 1, capabilities: 0, agent: ascii(256) }),
    ],
    ['ABORT text 1025 bytes', T.ABORT, payload.abort({ code: 1, text: utf8Bytes(1025) })],
  ];
  for (const [name, type, wire] of cases) assertMalformed(type, wire, name);
});

test('HELLO with a wrong magic is FCP_ERR_PROTO_NOT_FCP', () => {
  const good = { versionMin: 1, versionMax: 1, capabilities: 0, agent: 'x' };
  for (const magic of ['FCQ', 'fcp', 'SSH', 'GET', '\0\0\0']) {
    assertCode(
      () => decodeMessage(T.HELLO, payload.hello({ ...good, magic })),
      'FCP_ERR_PROTO_NOT_FCP',
      magic,
    );
  }
  // The magic is checked before the rest of the layout: an ssh banner is "not fcp", not "malformed".
  assertCode(
    () => decodeMessage(T.HELLO, Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')),
    'FCP_ERR_PROTO_NOT_FCP',
    'ssh banner',
  );
});

test('decodeMessage of an unknown type is FCP_ERR_PROTO_UNKNOWN_FLAG', () => {
  const known = new Set<number>(Object.values(MsgType));
  for (let type = 0; type <= 0xff; type++) {
    if (known.has(type)) continue;
    assertCode(() => decodeMessage(type, Buffer.alloc(0)), 'FCP_ERR_PROTO_UNKNOWN_FLAG', `type ${type}`);
  }
  for (const type of [0x00, 0x05, 0xff]) assert.not.ok(known.has(type), `${type} stays unassigned`);
});

test('encodeMessage of an over-long payload is FCP_ERR_PROTO_OVERSIZED', () => {
  const mtime = 0n;
  const over: Array<[string, NonData]> = [
    ['PUSH dest of 70000 bytes', { type: MsgType.Push, flags: 0, connections: 1, dest: ascii(70_000) }],
    [
      'PULL of 20 patterns of 4000 bytes',
      {
        type: MsgType.Pull,
        flags: 0,
        connections: 1,
        source: 's',
        include: Array.from({ length: 20 }, () => ascii(4000)),
        exclude: [],
      },
    ],
    [
      'FILE_HAVE bitmap of MAX_HAVE_BYTES + 1',
      { type: MsgType.FileHave, id: 1, firstSeq: 0, bitmap: new Uint8Array(MAX_HAVE_BYTES + 1) },
    ],
    [
      'DIR_INFO path of 5000 bytes',
      { type: MsgType.DirInfo, id: 1, mode: 0, mtimeNs: mtime, path: ascii(5000) },
    ],
    [
      'FILE_INFO one byte over its maximum',
      {
        type: MsgType.FileInfo,
        id: 1,
        kind: 2,
        mode: 0,
        size: 0n,
        mtimeNs: mtime,
        checksum: undefined,
        path: ascii(4095),
        linkTarget: ascii(4096),
      },
    ],
    ['FILE_READY MAX+1 entries', { type: MsgType.FileReady, entries: readyEntries(MAX_READY_ENTRIES + 1) }],
    [
      'PIECE_ACK MAX+1 pieces',
      {
        type: MsgType.PieceAck,
        pieces: Array.from({ length: MAX_ACK_ENTRIES + 1 }, (_, i) => ({ id: i, seq: 0 })),
      },
    ],
    [
      'FILE_DONE MAX+1 entries',
      {
        type: MsgType.FileDone,
        entries: Array.from({ length: MAX_DONE_ENTRIES + 1 }, (_, i) => ({ id: i, code: 0 })),
      },
    ],
  ];
  for (const [name, msg] of over) assertCode(() => encodeMessage(msg), 'FCP_ERR_PROTO_OVERSIZED', name);
});

test('encodeMessage of more entries than a u16 count holds is FCP_ERR_PROTO_OVERSIZED, not a RangeError', () => {
  const n = 0x10000;
  assertCode(
    () => encodeMessage({ type: MsgType.FileReady, entries: readyEntries(n) }),
    'FCP_ERR_PROTO_OVERSIZED',
    'FILE_READY 65536 entries',
  );
  assertCode(
    () =>
      encodeMessage({
        type: MsgType.PieceAck,
        pieces: Array.from({ length: n }, (_, i) => ({ id: i, seq: 0 })),
      }),
    'FCP_ERR_PROTO_OVERSIZED',
    'PIECE_ACK 65536 pieces',
  );
});

test('encodeMessage refuses what decodeMessage would refuse (the peer would close with MALFORMED)', () => {
  const pull = { type: MsgType.Pull, flags: 0, connections: 1, source: 's', include: [], exclude: [] };
  const refused: Array<[string, NonData]> = [
    ['PUSH dest of 4096 bytes', { type: MsgType.Push, flags: 0, connections: 1, dest: ascii(4096) }],
    ['PULL source of 4096 bytes', { ...pull, source: ascii(4096) }],
    ['PULL 257 include patterns', { ...pull, include: patterns(257, 'i') }],
    ['PULL exclude pattern of 4096 bytes', { ...pull, exclude: [ascii(4096)] }],
    [
      'FILE_HAVE with an empty bitmap',
      { type: MsgType.FileHave, id: 1, firstSeq: 0, bitmap: new Uint8Array(0) },
    ],
  ];
  for (const [name, msg] of refused) {
    const err = fcpErrorOf(() => encodeMessage(msg));
    assert.is(errorArea(err.code), 'PROTO', `${name}: ${err.code}`);
  }
});

test('HELLO: the agent is cut to fit its 255 bytes of UTF-8, never split inside a character', () => {
  for (const agent of [ascii(300), '😀'.repeat(100), 'é'.repeat(150)]) {
    const msg = decodeMessage(
      T.HELLO,
      encodeMessage({ type: MsgType.Hello, versionMin: 1, versionMax: 1, capabilities: 0, agent }),
    );
    assert.is(msg.type, MsgType.Hello);
    if (msg.type !== MsgType.Hello) return;
    assert.ok(agent.startsWith(msg.agent), `${agent.slice(0, 4)}...: a prefix`);
    assert.ok(Buffer.byteLength(msg.agent) <= 255, 'fits');
    assert.not.match(msg.agent, /\uFFFD/, 'no replacement character');
  }
});

test('ABORT: a long text is cut to 1024 bytes of UTF-8 without splitting a character', () => {
  const cases: Array<[string, string]> = [
    ['é'.repeat(600), 'é'.repeat(512)],
    ['€'.repeat(400), '€'.repeat(341)],
    ['😀'.repeat(300), '😀'.repeat(256)],
    [ascii(5000), ascii(1024)],
  ];
  for (const [text, expected] of cases) {
    const msg = decodeMessage(T.ABORT, encodeMessage({ type: MsgType.Abort, code: 2, text }));
    assert.equal(msg, { type: MsgType.Abort, code: 2, text: expected });
  }
});

test('decoding errors are fatal FcpErrors whose message names what was wrong', () => {
  const err = fcpErrorOf(() => decodeMessage(T.FILE_COUNT, Buffer.alloc(5)));
  assert.is(err.fatal, true);
  assert.match(err.message, /bytes|short/);
  const trailing = fcpErrorOf(() => decodeMessage(T.PING, Buffer.alloc(3)));
  assert.match(trailing.message, /3/);
});

test.run();
