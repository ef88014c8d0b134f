/**
 * Reusable piece-sized buffers. A piece buffer lives from the read (or the first DATA frame) until the
 * socket has taken its bytes (or the disk write finished); recycling them keeps RSS flat instead of
 * leaving hundreds of MiB of garbage between collections on a fast link.
 */
import { dataFramesSize, PIECE_SIZE } from '../protocol/index.js';

/** Buffers kept for reuse, of each kind; more than this in flight are allocated and left to the GC. */
const MAX_POOLED = 40;
/** A full piece laid out as its DATA frames (protocol/data-frames.ts): what the sender reads into. */
const FRAMED_PIECE_SIZE = dataFramesSize(PIECE_SIZE);

export class BufferPool {
  readonly #free: Buffer[] = [];
  readonly #freeFramed: Buffer[] = [];

  /** A buffer of exactly `len` bytes (a view of a pooled one for full pieces). Contents are garbage. */
  take(len: number): Buffer {
    if (len !== PIECE_SIZE) return Buffer.allocUnsafe(len);
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(PIECE_SIZE);
  }

  /** A buffer for `len` bytes of a piece laid out as DATA frames (pooled for full pieces). Garbage. */
  takeFramed(len: number): Buffer {
    if (len !== PIECE_SIZE) return Buffer.allocUnsafe(dataFramesSize(len));
    return this.#freeFramed.pop() ?? Buffer.allocUnsafeSlow(FRAMED_PIECE_SIZE);
  }

  /** Forgets the idle buffers, for the GC to free (a daemon with no session left: see idle-memory.ts). */
  trim(): void {
    this.#free.length = 0;
    this.#freeFramed.length = 0;
  }

  /** Returns a buffer from take() or takeFramed(); the caller must not touch it afterwards. */
  give(buf: Buffer): void {
    const free =
      buf.length === PIECE_SIZE
        ? this.#free
        : buf.length === FRAMED_PIECE_SIZE
          ? this.#freeFramed
          : undefined;
    if (free === undefined || free.length >= MAX_POOLED) return;
    free.push(buf);
  }
}

/**
 * The process's pool, shared by every session: a daemon serving session after session reuses the same
 * piece buffers instead of leaving each finished session's pool for the GC while the next one allocates
 * its own (a long-running fcpd's peak RSS ratcheted up that way).
 */
export const sharedPool = new BufferPool();
