/**
 * --bwlimit: one token bucket per session, shared by every connection of it. The sender's pumps pay for a
 * piece before they write it; a receiver pays for what it read and stops reading until the debt is paid
 * (its peer's window and socket buffers then hold the sender back). Tokens refill continuously from the
 * clock, so the cap is smooth rather than a burst at the top of every second, and a wait is one timer, never
 * a polling loop.
 */

/** What a bucket holds at most, and starts with: a small burst (about 1/20 s of the rate, at least 16 KiB). */
export function burstFor(rateBps: number): number {
  return Math.max(16 * 1024, Math.round(rateBps / 20));
}

/** Milliseconds on a monotonic clock. */
export type Clock = () => number;

export class RateLimit {
  /** The cap, in bytes per second. */
  readonly rateBps: number;
  readonly #burst: number;
  readonly #now: Clock;
  /** Bytes that may go now; negative while earlier takers wait for their share (a debt paid by time). */
  #tokens: number;
  #refilledMs: number;

  constructor(rateBps: number, now: Clock = () => performance.now()) {
    if (!(rateBps > 0) || !Number.isFinite(rateBps)) throw new RangeError(`bad rate ${rateBps}`);
    this.rateBps = rateBps;
    this.#burst = burstFor(rateBps);
    this.#now = now;
    this.#tokens = this.#burst;
    this.#refilledMs = now();
  }

  /**
   * Takes `bytes` and returns how long (ms) the caller must wait before it uses them: 0 while the bucket
   * holds enough. Later takers queue behind earlier ones because each adds to the same debt, so the waits
   * come out in order (first come, first served) without a queue.
   */
  reserve(bytes: number): number {
    this.#refill();
    this.#tokens -= bytes;
    return this.#tokens >= 0 ? 0 : (-this.#tokens * 1000) / this.rateBps;
  }

  /** reserve(), then waits for its share on one timer. */
  take(bytes: number): Promise<void> {
    const waitMs = this.reserve(bytes);
    if (waitMs === 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, Math.ceil(waitMs)));
  }

  #refill(): void {
    const now = this.#now();
    const elapsed = now - this.#refilledMs;
    this.#refilledMs = now;
    if (elapsed > 0) this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.rateBps) / 1000);
  }
}
