import { performance } from 'node:perf_hooks';

const IEC_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/** Counters one transfer keeps; the client's progress line and summary read them. */
export interface TransferStats {
  /** Entries (files, links, directories) announced so far, and whether the list is complete. */
  filesTotal: number;
  listComplete: boolean;
  /** Files and links written (or, on the sending side, confirmed written by the receiver). */
  filesSent: number;
  /** Files found identical on the receiver and not sent. */
  filesSkipped: number;
  /** Files that failed (reported per file; the transfer went on). */
  filesFailed: number;
  /** Files left out by --limit. */
  filesNotSent: number;
  /** Bytes of file data that must cross the wire, known once the receiver has answered. */
  bytesTotal: number;
  /** Bytes of file data that have crossed the wire. */
  bytesDone: number;
  /** Bytes a resumed file did not need to send again: the receiver kept them from an interrupted run. */
  bytesResumed: number;
  /**
   * Bytes the receiver already held, verified, when it asked for a resumed file (counted as soon as it
   * asks, so progress shows them as done from the start; bytesResumed counts them once the file is done).
   */
  bytesHeld: number;
  /** Directories created or updated. */
  dirs: number;
  /** process.hrtime-based start, in milliseconds. */
  startedMs: number;
  /** When file data last crossed (performance.now(), ms): the connection tuner measures whole bursts by it. */
  lastDataMs: number;
}

export function createStats(nowMs: number): TransferStats {
  return {
    filesTotal: 0,
    listComplete: false,
    filesSent: 0,
    filesSkipped: 0,
    filesFailed: 0,
    filesNotSent: 0,
    bytesTotal: 0,
    bytesDone: 0,
    bytesResumed: 0,
    bytesHeld: 0,
    dirs: 0,
    startedMs: nowMs,
    lastDataMs: performance.now(),
  };
}

/** IEC sizes with 3 significant digits: '0 B', '512 B', '1.50 KiB', '2.00 GiB', '1010 KiB'. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  if (n < 1024) return `${Math.round(n)} B`;
  let value = n / 1024;
  let unit = 0;
  // Round first, then decide the unit, so 1023.9 KiB reads "1.00 MiB" rather than "1024 KiB".
  while (unit < IEC_UNITS.length - 1 && Number(threeDigits(value)) >= 1024) {
    value /= 1024;
    unit++;
  }
  return `${threeDigits(value)} ${IEC_UNITS[unit]}`;
}

/** Three significant digits without exponent notation; values of 1000 and above keep all integer digits. */
export function threeDigits(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/**
 * What the attempts of one run (fcp's retries after a lost session) add up to, each file and byte counted
 * once. A later attempt finds the files an earlier one finished and "skips" them: they count as sent. It
 * finds the pieces an earlier one sent kept in the partial and resumes them: they count as resumed, not
 * also as sent, so sent + resumed is the data the destination needed (README "Output").
 */
export class RunTotals {
  #filesSent = 0;
  #bytesSent = 0;
  #bytesResumed = 0;
  /** Bytes earlier attempts sent that no later attempt has reported as resumed yet. */
  #sentUnclaimed = 0;

  /** Files the attempts added so far have sent (what --limit has already spent). */
  get filesSent(): number {
    return this.#filesSent;
  }

  /** Adds one attempt, the failed ones as they fail and the last one at the end. */
  add(attempt: TransferStats): void {
    const resent = Math.min(attempt.bytesResumed, this.#sentUnclaimed);
    this.#sentUnclaimed += attempt.bytesDone - resent;
    this.#bytesSent += attempt.bytesDone - resent;
    this.#bytesResumed += attempt.bytesResumed;
    this.#filesSent += attempt.filesSent;
  }

  /** The run's figures: `last` (added already) with every attempt's files and bytes. */
  summary(last: TransferStats): TransferStats {
    const skippedByLast = Math.max(0, last.filesSkipped - (this.#filesSent - last.filesSent));
    return {
      ...last,
      filesSent: this.#filesSent,
      filesSkipped: skippedByLast,
      bytesDone: this.#bytesSent,
      bytesResumed: this.#bytesResumed,
    };
  }
}
