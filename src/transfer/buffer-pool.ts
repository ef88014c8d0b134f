/**
 * Reusable piece-sized buffers. A piece buffer lives from the read (or the first DATA frame) until the
 * socket has taken its bytes (or the disk write finished); recycling them keeps RSS flat instead of
 * leaving hundreds of MiB of garbage between collections on a fast link.
 */
import { dataFramesSize, PIECE_SIZE } from '../protocol/index.js';

/** Buffers kept for reuse, of each kind; more than this in flight are allocated and left to the GC. */
const MAX_POOLED = 40;
/**
 * Buffers up to SMALL_MAX bytes are views into a slab of SLAB_BYTES (Node's allocUnsafe does the same below
 * 4 KiB only): a small file's buffer then costs no ArrayBuffer of its own, whose allocation and sweeping
 * were ~5 % of a side's CPU on 20,000 small files. A slab is never reused; the GC frees it with its last view.
 */
const SLAB_BYTES = 256 * 1024;
const SMALL_MAX = 64 * 1024;
/** A full piece laid out as its DATA frames (protocol/data-frames.ts): what the sender reads into. */
const FRAMED_PIECE_SIZE = dataFramesSize(PIECE_SIZE);

export class BufferPool {
  readonly #free: Buffer[] = [];
  readonly #freeFramed: Buffer[] = [];
  #slab: Buffer | undefined;
  #slabUsed = 0;

  /** A buffer of exactly `len` bytes (a view of a pooled one for full pieces). Contents are garbage. */
  take(len: number): Buffer {
    if (len === PIECE_SIZE) return this.#free.pop() ?? Buffer.allocUnsafeSlow(PIECE_SIZE);
    if (len > SMALL_MAX) return Buffer.allocUnsafeSlow(len);
    return this.#carve(len);
  }

  /** `len` bytes of the current slab, a new one when it has no room left; offsets stay 8-byte aligned. */
  #carve(len: number): Buffer {
    if (this.#slab === undefined || this.#slabUsed + len > SLAB_BYTES) {
      this.#slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.#slabUsed = 0;
    }
    const view = this.#slab.subarray(this.#slabUsed, this.#slabUsed + len);
    this.#slabUsed += (len + 7) & ~7;
    return view;
  }

  /**
   * A buffer for `len` bytes of a piece laid out as DATA frames: pooled for full pieces, carved from a slab
   * up to SMALL_MAX bytes as take() does. Garbage.
   */
  takeFramed(len: number): Buffer {
    if (len === PIECE_SIZE) return this.#freeFramed.pop() ?? Buffer.allocUnsafeSlow(FRAMED_PIECE_SIZE);
    const size = dataFramesSize(len);
    return size > SMALL_MAX ? Buffer.allocUnsafeSlow(size) : this.#carve(size);
  }

  /** Forgets the idle buffers, for the GC to free (a daemon with no session left: see idle-memory.ts). */
  trim(): void {
    this.#free.length = 0;
    this.#freeFramed.length = 0;
    this.#slab = undefined;
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
