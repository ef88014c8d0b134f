/**
 * Directory modes and times wait until every file is in place (a file created inside would change the
 * time, a read-only mode would refuse the file), as with rsync and tar. A tree of a million directories must
 * not cost a million objects: records are packed into 1 MiB chunks, about the path's bytes plus 16 each
 * (a third of what the objects took), and the whole log is capped (spec/SECURITY.md §10).
 *
 * Record layout: path bytes (UTF-8) | path length u16 | mode u16 | mtime seconds i64 | nanoseconds u32,
 * big-endian. The fixed part comes last so that the log reads backwards. Seconds and nanoseconds apart, as
 * the wire carries them (PROTOCOL.md §5.1): an i64 of nanoseconds ends in 2262, and ext4 allows 2446.
 */
import { FcpError } from '../protocol/index.js';
import type { SafePath } from './wire-path.js';

const CHUNK_BYTES = 1 << 20;
const TRAILER_BYTES = 16;
const NS_PER_SEC = 1_000_000_000n;
/** The log's cap: a million directories with 50-byte paths fit in it. */
export const MAX_DIR_META_BYTES = 64 * CHUNK_BYTES;

export interface DirMeta {
  rel: SafePath;
  mode: number;
  mtimeNs: bigint;
}

export class DirMetaLog {
  readonly #chunks: Buffer[] = [];
  /** Bytes used in each chunk. */
  readonly #fills: number[] = [];
  #count = 0;

  get count(): number {
    return this.#count;
  }

  /** Records a directory; FCP_ERR_LIMIT_EXCEEDED (fatal) once the log is full. */
  add(dir: DirMeta): void {
    const pathBytes = Buffer.byteLength(dir.rel);
    const size = pathBytes + TRAILER_BYTES;
    const last = this.#chunks.length - 1;
    if (last < 0 || this.#fills[last]! + size > CHUNK_BYTES) this.#newChunk();
    const at = this.#chunks.length - 1;
    const chunk = this.#chunks[at]!;
    let pos = this.#fills[at]!;
    pos += chunk.write(dir.rel, pos, 'utf8');
    pos = chunk.writeUInt16BE(pathBytes, pos);
    pos = chunk.writeUInt16BE(dir.mode & 0xffff, pos);
    // Seconds floor towards -inf, so that the nanoseconds of a time before 1970 stay non-negative.
    const nsec = ((dir.mtimeNs % NS_PER_SEC) + NS_PER_SEC) % NS_PER_SEC;
    pos = chunk.writeBigInt64BE((dir.mtimeNs - nsec) / NS_PER_SEC, pos);
    pos = chunk.writeUInt32BE(Number(nsec), pos);
    this.#fills[at] = pos;
    this.#count++;
  }

  /**
   * Newest first. Directories come before their contents in a list (spec/PROTOCOL.md §5.1), so this is
   * every directory after everything below it: deepest first, as the metadata must be applied.
   */
  *newestFirst(): Generator<DirMeta> {
    for (let c = this.#chunks.length - 1; c >= 0; c--) {
      const chunk = this.#chunks[c]!;
      for (let end = this.#fills[c]!; end > 0;) {
        const t = end - TRAILER_BYTES;
        const len = chunk.readUInt16BE(t);
        // Only paths that passed checkWirePath are added: what comes back is the same string.
        const rel = chunk.toString('utf8', t - len, t) as SafePath;
        const mtimeNs = chunk.readBigInt64BE(t + 4) * NS_PER_SEC + BigInt(chunk.readUInt32BE(t + 12));
        yield { rel, mode: chunk.readUInt16BE(t + 2), mtimeNs };
        end = t - len;
      }
    }
  }

  /** Gives the memory back. */
  clear(): void {
    this.#chunks.length = 0;
    this.#fills.length = 0;
    this.#count = 0;
  }

  #newChunk(): void {
    if ((this.#chunks.length + 1) * CHUNK_BYTES > MAX_DIR_META_BYTES) {
      throw new FcpError(
        'FCP_ERR_LIMIT_EXCEEDED',
        `more than ${MAX_DIR_META_BYTES >> 20} MiB of directory metadata waiting (${this.#count} directories)`,
        { fatal: true },
      );
    }
    this.#chunks.push(Buffer.allocUnsafe(CHUNK_BYTES));
    this.#fills.push(0);
  }
}
