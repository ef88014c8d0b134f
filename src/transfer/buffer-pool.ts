/**
 * Reusable piece-sized buffers. A piece buffer lives from the read (or the first DATA frame) until the
 * socket has taken its bytes (or the disk write finished); recycling them keeps RSS flat instead of
 * leaving hundreds of MiB of garbage between collections on a fast link.
 */
import { dataFramesSize, PIECE_SIZE } from '../protocol/index.js';

/** A full piece laid out as its DATA frames (protocol/data-frames.ts): what the sender reads into. */
const FRAMED_PIECE_SIZE = dataFramesSize(PIECE_SIZE);
/**
 * Every buffer is a view of a slab of SLAB_BYTES: a full piece takes a whole one, smaller buffers are carved
 * one after another (Node's allocUnsafe does the same below 4 KiB only). A slab whose every view came back
 * is carved again; one with a view never given back is left to the GC with its last view.
 *
 * Why one size: a small file's buffer then costs no ArrayBuffer of its own, whose allocation and sweeping
 * were ~5 % of a side's CPU on 20,000 small files; and buffers allocated at their own sizes (slabs of
 * 256 KiB left to the GC, each file of 64 KiB-1 MiB its exact size) piled up as external memory until V8
 * chose to collect, and left malloc's heap full of holes that stayed in the RSS of both sides.
 */
const SLAB_BYTES = FRAMED_PIECE_SIZE;
/**
 * Idle slabs kept for reuse; more than this in flight at once are left to the GC when they come back. The
 * most in flight: a sender's read-ahead and socket queue, 8 + 16 pieces; a receiver's pieces waiting for
 * the disk and one being assembled per connection, 8 + 32 at -n 32.
 */
const MAX_FREE_SLABS = 40;

/** A slab and the views of it handed out and not yet given back. */
interface Slab {
  readonly buf: Buffer;
  used: number;
  out: number;
}

export class BufferPool {
  readonly #free: Slab[] = [];
  /** Which slab a view belongs to, by its ArrayBuffer; weak, so a slab never given back is still freed. */
  readonly #slabOf = new WeakMap<ArrayBufferLike, Slab>();
  /** The slab being carved. */
  #slab: Slab | undefined;

  /** A buffer of exactly `len` bytes, a view of a slab. Contents are garbage. */
  take(len: number): Buffer {
    if (len > SLAB_BYTES) return Buffer.allocUnsafeSlow(len);
    return this.#carve(len);
  }

  /** A buffer for `len` bytes of a piece laid out as DATA frames (see take()). Garbage. */
  takeFramed(len: number): Buffer {
    return this.take(dataFramesSize(len));
  }

  /** `len` bytes of the current slab, the next one when it has no room left; offsets stay 8-byte aligned. */
  #carve(len: number): Buffer {
    let slab = this.#slab;
    if (slab === undefined || slab.used + len > SLAB_BYTES) {
      slab = this.#nextSlab(slab);
      this.#slab = slab;
    }
    const view = slab.buf.subarray(slab.used, slab.used + len);
    slab.used += (len + 7) & ~7;
    slab.out++;
    return view;
  }

  /** An empty slab: the full one itself when nothing of it is out, else an idle one, else a new one. */
  #nextSlab(full: Slab | undefined): Slab {
    const slab = full?.out === 0 ? full : this.#free.pop();
    if (slab !== undefined) {
      slab.used = 0;
      return slab;
    }
    const fresh: Slab = { buf: Buffer.allocUnsafeSlow(SLAB_BYTES), used: 0, out: 0 };
    this.#slabOf.set(fresh.buf.buffer, fresh);
    return fresh;
  }

  /** Forgets the idle buffers, for the GC to free (a daemon with no session left: see idle-memory.ts). */
  trim(): void {
    this.#free.length = 0;
    this.#slab = undefined;
  }

  /**
   * Returns a buffer from take() or takeFramed(), exactly once; the caller must not touch it afterwards. Its
   * slab is idle again once the last of its views came back, unless it is still being carved.
   */
  give(buf: Buffer): void {
    const slab = this.#slabOf.get(buf.buffer);
    if (slab === undefined) return;
    slab.out--;
    if (slab.out === 0 && slab !== this.#slab && this.#free.length < MAX_FREE_SLABS) this.#free.push(slab);
  }
}

/**
 * The process's pool, shared by every session: a daemon serving session after session reuses the same
 * piece buffers instead of leaving each finished session's pool for the GC while the next one allocates
 * its own (a long-running fcpd's peak RSS ratcheted up that way).
 */
export const sharedPool = new BufferPool();
