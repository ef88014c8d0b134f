/**
 * The piece index kept beside a partial file (`.<name>.fcp-meta`): which pieces of the temporary file are
 * written, and their xxh64. It lets a re-run resume with only the missing pieces (spec/PROTOCOL.md §7).
 *
 * Layout, big-endian: magic "FCPMETA1" | size u64 | mtime_ns i64 | piece_size u32 | pieces u32, then one
 * 16-byte record per piece: hash u64 | state u8 (1 = written) | 7 bytes zero. A record is written after its
 * piece's data write completed, without fsync: a crash may lose records or leave records whose data never
 * reached the disk, so every recorded piece is re-read and re-hashed before it is trusted.
 *
 * mtime_ns i64 spans 1677 to 2262; the wire's i64 seconds go further (ext4 allows 2446). A file whose mtime
 * lies outside keeps no index: it is received as usual and, if interrupted, started over. Any narrower
 * record of its mtime would let another file of that size pass the resume check.
 */
import { constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { PIECE_SIZE } from '../../protocol/index.js';
import type { ConfinedRoot } from './confined-root.js';
import { isOwnPlainFile, openFresh } from './fresh-file.js';
import { checkWirePath } from '../wire-path.js';

const MAGIC = Buffer.from('FCPMETA1', 'latin1');
const HEADER_SIZE = 32;
const RECORD_SIZE = 16;
/** Index files larger than this are not read (1 TiB of pieces); the partial is started over. */
const MAX_PIECES = 1 << 20;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

export interface PartialIdentity {
  size: bigint;
  mtimeNs: bigint;
  pieces: number;
}

/** Whether the header's mtime_ns can hold this source file's mtime exactly. */
function fitsHeader(id: PartialIdentity): boolean {
  return id.mtimeNs >= I64_MIN && id.mtimeNs <= I64_MAX;
}

export class PieceIndex {
  /** Undefined for a file that keeps no index (an mtime the header cannot hold): records go nowhere. */
  readonly #fh: FileHandle | undefined;

  private constructor(fh: FileHandle | undefined) {
    this.#fh = fh;
  }

  /**
   * Starts a fresh index (truncating any old one) for a partial of the given source file; one that records
   * nothing when the header cannot hold the file's mtime.
   */
  static async create(root: ConfinedRoot, rel: string, id: PartialIdentity): Promise<PieceIndex> {
    if (!fitsHeader(id)) return new PieceIndex(undefined);
    // Made afresh with O_EXCL, whatever is at its name (fresh-file.ts).
    const fh = await openFresh(root, checkWirePath(rel), fsConstants.O_RDWR, 0o600);
    const header = Buffer.alloc(HEADER_SIZE);
    MAGIC.copy(header, 0);
    header.writeBigUInt64BE(id.size, 8);
    header.writeBigInt64BE(id.mtimeNs, 16);
    header.writeUInt32BE(PIECE_SIZE, 24);
    header.writeUInt32BE(id.pieces, 28);
    try {
      await fh.write(header, 0, HEADER_SIZE, 0);
    } catch (err) {
      // On a full disk this is the write that fails: nobody else holds the handle to close it.
      await fh.close().catch(() => {}); // the write's error is the one to report
      throw err;
    }
    return new PieceIndex(fh);
  }

  /** Reopens an index for appending more records (after a resume check). */
  static async reopen(root: ConfinedRoot, rel: string): Promise<PieceIndex> {
    return new PieceIndex(await root.openFile(rel, fsConstants.O_RDWR));
  }

  /**
   * The pieces an existing index records, if it describes this very source file (same size, mtime and
   * piece size); undefined when there is no usable index.
   */
  static async load(
    root: ConfinedRoot,
    rel: string,
    id: PartialIdentity,
  ): Promise<Map<number, bigint> | undefined> {
    if (id.pieces > MAX_PIECES || !fitsHeader(id)) return undefined;
    let fh: FileHandle;
    try {
      // O_NONBLOCK: a FIFO planted at the index's name must not hang the open; the check below refuses it.
      fh = await root.openFile(rel, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    } catch {
      return undefined;
    }
    try {
      // Another user's plant (or a hard link) is not an index of ours: the partial starts over.
      if (!isOwnPlainFile(await fh.stat())) return undefined;
      const want = HEADER_SIZE + id.pieces * RECORD_SIZE;
      const buf = Buffer.alloc(want);
      const { bytesRead } = await fh.read(buf, 0, want, 0);
      if (bytesRead < HEADER_SIZE || !buf.subarray(0, 8).equals(MAGIC)) return undefined;
      if (
        buf.readBigUInt64BE(8) !== id.size ||
        buf.readBigInt64BE(16) !== id.mtimeNs ||
        buf.readUInt32BE(24) !== PIECE_SIZE ||
        buf.readUInt32BE(28) !== id.pieces
      ) {
        return undefined;
      }
      const recorded = new Map<number, bigint>();
      for (let seq = 0; HEADER_SIZE + (seq + 1) * RECORD_SIZE <= bytesRead; seq++) {
        const at = HEADER_SIZE + seq * RECORD_SIZE;
        if (buf[at + 8] === 1) recorded.set(seq, buf.readBigUInt64BE(at));
      }
      return recorded;
    } finally {
      await fh.close();
    }
  }

  /** Records that piece `seq` is written with this hash. */
  record(seq: number, hash: bigint): Promise<void> {
    return this.recordRun(seq, [hash]);
  }

  /** Records that pieces `first`, `first + 1`, ... are written with these hashes: one write for the run. */
  async recordRun(first: number, hashes: bigint[]): Promise<void> {
    if (this.#fh === undefined) return;
    const recs = Buffer.alloc(RECORD_SIZE * hashes.length);
    for (let i = 0; i < hashes.length; i++) {
      recs.writeBigUInt64BE(hashes[i]!, i * RECORD_SIZE);
      recs[i * RECORD_SIZE + 8] = 1;
    }
    await this.#fh.write(recs, 0, recs.length, HEADER_SIZE + first * RECORD_SIZE);
  }

  async close(): Promise<void> {
    await this.#fh?.close();
  }
}
