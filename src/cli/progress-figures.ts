/**
 * The figures every progress view shows (the terminal line, the --json progress event), computed one way
 * from the transfer's stats so the two never disagree (STYLE rule 15). Pure: the caller brings the clock.
 */
import type { TransferStats } from '../transfer/stats.js';

/** What one progress report says. */
export interface ProgressFigures {
  /** Bytes in place on the receiver: sent this run, plus what it already held, verified, from an earlier run. */
  bytesDone: number;
  /** Bytes the destination needs in all (held ones included); while `listing`, only what is known so far. */
  bytesTotal: number;
  /** Bytes that crossed the wire this run: what the rate is measured on. */
  bytesSent: number;
  /** Entries (files, links, directories) settled, and announced. */
  filesDone: number;
  filesTotal: number;
  filesFailed: number;
  /** The list is still being walked: the totals can only grow, and there is no ETA. */
  listing: boolean;
  /** Bytes per second over the rate window, undefined until two instants have been seen. */
  rate: number | undefined;
  /** Seconds left at `rate`; undefined while listing or without a rate. */
  etaSec: number | undefined;
}

/** The figures of `stats` at a measured `rate` (bytes actually sent per second). */
export function progressFigures(stats: TransferStats, rate: number | undefined): ProgressFigures {
  const listing = !stats.listComplete;
  // Directories count: filesTotal announces them too.
  const settled = stats.filesSent + stats.filesSkipped + stats.filesFailed + stats.dirs;
  const remaining = stats.bytesTotal - stats.bytesDone;
  const etaSec = !listing && rate !== undefined && rate > 0 && remaining >= 0 ? remaining / rate : undefined;
  return {
    bytesDone: stats.bytesDone + stats.bytesHeld,
    bytesTotal: stats.bytesTotal + stats.bytesHeld,
    bytesSent: stats.bytesDone,
    filesDone: listing ? settled : Math.min(settled, stats.filesTotal),
    filesTotal: stats.filesTotal,
    filesFailed: stats.filesFailed,
    listing,
    rate,
    etaSec,
  };
}

interface Sample {
  t: number;
  bytes: number;
}

/**
 * Bytes per second over a sliding window of `windowMs`, measured on the bytes sent this run only: what a
 * resume found already in place never inflates the rate (nor, through it, shortens the ETA).
 */
export class RateMeter {
  readonly #windowMs: number;
  #samples: Sample[] = [];

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Records `bytesSent` at `now` and returns the rate, or undefined until two distinct instants. */
  sample(startedMs: number, bytesSent: number, now: number): number | undefined {
    // Seed with the transfer's start so the first reports show the average so far rather than nothing.
    if (this.#samples.length === 0 && startedMs <= now) this.#samples.push({ t: startedMs, bytes: 0 });
    this.#samples.push({ t: now, bytes: bytesSent });
    // Keep one sample at or before the window's start so the window always spans windowMs once it can.
    while (this.#samples.length > 2 && (this.#samples[1]?.t ?? now) <= now - this.#windowMs)
      this.#samples.shift();
    const first = this.#samples[0];
    if (first === undefined || now - first.t <= 0) return undefined;
    return (Math.max(0, bytesSent - first.bytes) * 1000) / (now - first.t);
  }
}
