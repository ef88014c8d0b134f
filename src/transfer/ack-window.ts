/**
 * How many bytes one connection of a sender may have sent but not yet acknowledged (PIECE_ACK): a few
 * tenths of a second of its own acknowledged rate, so that the pieces a slow connection holds are done
 * about when a fast one's are. Times are passed in (ms, performance.now()), so the rule is tested without
 * a clock.
 *
 * Why: a connection hands its pieces to socket buffers it cannot see into (its send buffer, the receiver's,
 * a shaper's queue), and with a fixed 64 MiB per connection those fill: behind a per-flow shaper (10 MB/s
 * per connection, a 250 MB/s link, 32 connections) the emulator held 0 to 18 MB per connection when the
 * file's last piece was handed out, and the last of them crossed alone at 10 MB/s: 1.5-2 s of a 9 s copy
 * at a fraction of the link. A piece goes to whichever connection's pump asks first, so a bound in time
 * per connection is what keeps their queues equal in time.
 */
import { PIECE_SIZE } from '../protocol/index.js';

/** The most a connection may hold unacknowledged, whatever its rate. */
export const MAX_WINDOW_BYTES = 64 * PIECE_SIZE;
/** Until its rate is known. A window-bound WAN connection (4 MiB at 40 ms) needs ~5-7 MB. */
export const START_WINDOW_BYTES = 16 * PIECE_SIZE;
/** The least, whatever its rate: a piece crossing and the next one queued behind it. */
export const MIN_WINDOW_BYTES = 2 * PIECE_SIZE;
/**
 * Seconds of its own rate a connection may hold, at least (WINDOW_BASE_TIMES its base latency, if more).
 * What it holds is also what carries it through a stall of the receiver (a loaded box's daemon stopping
 * for 100-300 ms): 0.3 s shortened the shaped tail a little more, and read 5-10 % slower than the build
 * before on the unshaped emulated WAN at a load of 8 (within that load's spread, but in every pair).
 */
export const WINDOW_SECONDS = 0.5;
/**
 * Multiples of the connection's base latency (a piece sent on it with nothing ahead, to its
 * acknowledgement: the round trip, the piece's own time on the wire, the receiver's write) it may hold: the
 * window grows by this factor per round trip while it is what holds the connection back, so a long path
 * still opens it in a few round trips.
 */
export const WINDOW_BASE_TIMES = 2;
/** A rate is taken over at least this long. */
export const RATE_SPAN_MS = 200;

export class AckWindow {
  #bytes = START_WINDOW_BYTES;
  #spanStart: number;
  #spanBytes = 0;
  #baseMs = Infinity;

  constructor(now: number) {
    this.#spanStart = now;
  }

  /** Bytes the connection may hold unacknowledged now. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * The connection had nothing unacknowledged and is given data again: it stood idle for want of data,
   * which says nothing of its rate, so the measurement starts over.
   */
  restarted(now: number): void {
    this.#spanStart = now;
    this.#spanBytes = 0;
  }

  /**
   * `bytes` were acknowledged; `probeMs`: how long one of them took, if it was sent with nothing ahead of
   * it on the connection (its base latency).
   */
  acked(bytes: number, now: number, probeMs?: number): void {
    if (probeMs !== undefined) this.#baseMs = Math.min(this.#baseMs, probeMs);
    this.#spanBytes += bytes;
    const ms = now - this.#spanStart;
    if (ms < RATE_SPAN_MS) return;
    const baseMs = Number.isFinite(this.#baseMs) ? this.#baseMs : 0;
    const seconds = Math.max(WINDOW_SECONDS, (WINDOW_BASE_TIMES * baseMs) / 1000);
    // At most halved per span: one span through a stall (a collection, a busy receiver) is not the rate.
    const want = Math.max((this.#spanBytes / ms) * 1000 * seconds, this.#bytes / 2);
    this.#bytes = Math.min(MAX_WINDOW_BYTES, Math.max(MIN_WINDOW_BYTES, want));
    this.#spanStart = now;
    this.#spanBytes = 0;
  }
}
