/**
 * fcp's hashes, all xxHash from xxhash-wasm: xxh32 guards each frame, xxh64 each piece, and a file's checksum
 * is the xxh64 of its piece hashes (spec/PROTOCOL.md §4). Hashing per piece lets many connections deliver a
 * file out of order while each side still hashes every byte exactly once, as it passes.
 */
import type { FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import xxhash from 'xxhash-wasm';
import { FcpError, PIECE_SIZE } from '../protocol/index.js';

type XXHashApi = Awaited<ReturnType<typeof xxhash>>;

const LITTLE_ENDIAN = endianness() === 'LE';
/** Files of up to this many pieces have their checksum computed in FILE_HASH_SCRATCH (see fileHash). */
const FILE_HASH_SCRATCH_PIECES = 64;
const FILE_HASH_SCRATCH = new DataView(new ArrayBuffer(FILE_HASH_SCRATCH_PIECES * 8));
const ONE_PIECE_HASH = new Uint8Array(FILE_HASH_SCRATCH.buffer, 0, 8);

/** The piece hashes as big-endian bytes, in a new buffer. */
function bigEndianCopy(pieceHashes: BigUint64Array): Buffer {
  // A copy in host order, swapped where the host is little-endian: writeBigUInt64BE per hash split each
  // value with BigInt arithmetic.
  const bytes = Buffer.from(pieceHashes.slice().buffer);
  if (LITTLE_ENDIAN) bytes.swap64();
  return bytes;
}

let loading: Promise<Hasher> | undefined;

/** The process-wide hasher; the wasm module is compiled once. */
export function loadHasher(): Promise<Hasher> {
  loading ??= xxhash().then((api) => new Hasher(api));
  return loading;
}

export class Hasher {
  readonly #api: XXHashApi;

  constructor(api: XXHashApi) {
    this.#api = api;
  }

  /** xxh32(bytes, 0): the frame checksum. */
  readonly h32 = (bytes: Uint8Array): number => this.#api.h32Raw(bytes, 0) >>> 0;

  /** xxh32 of several buffers as if concatenated (a DATA prefix plus a view of file bytes). */
  h32Parts(a: Uint8Array, b: Uint8Array): number {
    return this.#api.create32(0).update(a).update(b).digest() >>> 0;
  }

  /** xxh64(bytes, 0): the piece hash. */
  pieceHash(bytes: Uint8Array): bigint {
    return this.#api.h64Raw(bytes, 0n);
  }

  /** xxh64 of several buffers as if concatenated, seed 0: the piece hash of a piece read as DATA frames. */
  pieceHashViews(views: readonly Uint8Array[]): bigint {
    if (views.length === 1) return this.pieceHash(views[0]!);
    const state = this.#api.create64(0n);
    for (const view of views) state.update(view);
    return state.digest();
  }

  /** The file checksum: xxh64 over the big-endian piece hashes, in piece order. */
  fileHash(pieceHashes: BigUint64Array): bigint {
    const n = pieceHashes.length;
    if (n > FILE_HASH_SCRATCH_PIECES) return this.#api.h64Raw(bigEndianCopy(pieceHashes), 0n);
    // Laid out in a buffer kept for the purpose, through a DataView (no BigInt arithmetic): a copy of the
    // small typed array made V8 give it an ArrayBuffer of its own, once per file of every small-file copy.
    for (let i = 0; i < n; i++) FILE_HASH_SCRATCH.setBigUint64(i * 8, pieceHashes[i]!);
    const bytes = n === 1 ? ONE_PIECE_HASH : new Uint8Array(FILE_HASH_SCRATCH.buffer, 0, n * 8);
    return this.#api.h64Raw(bytes, 0n);
  }

  /** Reads a whole open file piece by piece and returns its checksum. Used for --checksum comparisons. */
  async hashOpenFile(fh: FileHandle, size: number, buffer = Buffer.allocUnsafe(PIECE_SIZE)): Promise<bigint> {
    const pieces = pieceCount(size);
    const hashes = new BigUint64Array(pieces);
    for (let seq = 0; seq < pieces; seq++) {
      const len = pieceLength(size, seq);
      const view = buffer.subarray(0, len);
      await readFully(fh, view, seq * PIECE_SIZE);
      hashes[seq] = this.pieceHash(view);
    }
    return this.fileHash(hashes);
  }
}

export function pieceCount(size: number): number {
  return Math.ceil(size / PIECE_SIZE);
}

export function pieceLength(size: number, seq: number): number {
  return Math.min(PIECE_SIZE, size - seq * PIECE_SIZE);
}

/** Fills `view` from `position`; a short read means the file shrank under us. */
export async function readFully(fh: FileHandle, view: Uint8Array, position: number): Promise<void> {
  let filled = 0;
  while (filled < view.byteLength) {
    const { bytesRead } = await fh.read(view, filled, view.byteLength - filled, position + filled);
    if (bytesRead === 0)
      throw new FcpError('FCP_ERR_FILE_CHANGED', 'file is shorter than when it was listed');
    filled += bytesRead;
  }
}
