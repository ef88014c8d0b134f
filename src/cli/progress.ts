/**
 * The client's live progress line and end-of-transfer summary. Formatting is pure; ProgressReporter only
 * writes to the stream it is given and reads the clock it is given, so tests drive it with fakes.
 */

import { formatBytes, threeDigits, type TransferStats } from '../transfer/stats.js';
import { type ProgressFigures, progressFigures, RateMeter } from './progress-figures.js';

export { formatBytes };

const SI_RATE_UNITS = ['B/s', 'kB/s', 'MB/s', 'GB/s', 'TB/s', 'PB/s'] as const;
/** The line is redrawn by a carriage return, the text, then erase to end of line (ECMA-48 EL 0). */
const REWRITE = '\r';
const ERASE_EOL = '\x1b[K';

/** Milliseconds from a monotonic clock; the default clock of ProgressReporter, use it for createStats too. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

/** SI rates like rsync and scp print them: '512 B/s', '45.1 kB/s', '612 MB/s', '1.23 GB/s'. */
export function formatRate(bytesPerSec: number): string {
  if (!Number.isFinite(bytesPerSec) || bytesPerSec < 0) return '? B/s';
  let value = bytesPerSec;
  let unit = 0;
  let digits = String(Math.round(value));
  // As in formatBytes: 999.7 kB/s reads "1.00 MB/s", not "1000 kB/s".
  while (unit < SI_RATE_UNITS.length - 1 && Number(digits) >= 1000) {
    value /= 1000;
    unit++;
    digits = threeDigits(value);
  }
  return `${digits} ${SI_RATE_UNITS[unit]}`;
}

/** Clock-style durations: '0:05', '12:34', '1:02:03'. */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '?:??';
  const total = Math.round(sec);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  if (h === 0) return `${m}:${ss}`;
  return `${h}:${String(m).padStart(2, '0')}:${ss}`;
}

/** Integers with thousands separators, independent of the locale: 4000 -> '4,000'. */
export function formatCount(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function plural(n: number, one: string, many: string): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** The line always printed at the end: "fcp: 1,004 files sent, 12 skipped, 0 failed, 2.10 GiB in 3.4 s (664 MB/s)". */
export function formatSummary(stats: TransferStats, elapsedSec: number): string {
  const elapsed = elapsedSec < 60 ? `${Math.max(0, elapsedSec).toFixed(1)} s` : formatDuration(elapsedSec);
  const rate = elapsedSec > 0 ? ` (${formatRate(stats.bytesDone / elapsedSec)})` : '';
  return (
    `fcp: ${plural(stats.filesSent, 'file', 'files')} sent, ${formatCount(stats.filesSkipped)} skipped, ` +
    `${formatCount(stats.filesFailed)} failed, ${formatBytes(stats.bytesDone)} in ${elapsed}${rate}` +
    (stats.bytesResumed > 0 ? `, ${formatBytes(stats.bytesResumed)} resumed (not sent again)` : '') +
    (stats.filesNotSent > 0 ? `, ${plural(stats.filesNotSent, 'file', 'files')} not sent (--limit)` : '')
  );
}

/**
 * The line that ends a dry run: what the real run would do, from the same figures.
 * "fcp: dry run, nothing written: 3 files would be sent (4.00 MiB), 12 skipped, 0 failed".
 */
export function formatDryRunSummary(stats: TransferStats): string {
  return (
    `fcp: dry run, nothing written: ${plural(stats.filesSent, 'file', 'files')} would be sent ` +
    `(${formatBytes(stats.bytesTotal)}), ${formatCount(stats.filesSkipped)} skipped, ` +
    `${formatCount(stats.filesFailed)} failed` +
    (stats.bytesHeld > 0 ? `, ${formatBytes(stats.bytesHeld)} would be resumed (not sent again)` : '') +
    (stats.filesNotSent > 0 ? `, ${plural(stats.filesNotSent, 'file', 'files')} not sent (--limit)` : '')
  );
}

export interface ProgressOptions {
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Decided by the caller: stdout is a TTY and -q was not given. When false nothing is ever written. */
  enabled: boolean;
  /** Monotonic milliseconds on the same clock as `stats.startedMs`; defaults to monotonicMs. */
  nowMs?: () => number;
  /** Minimum time between redraws. */
  intervalMs?: number;
  /** Span of the sliding window the rate is measured over. */
  windowMs?: number;
  /** --bwlimit, in bytes/s: the line says the rate is capped. */
  capBps?: number;
}

const DEFAULT_INTERVAL_MS = 200;
const DEFAULT_WINDOW_MS = 5000;
const DEFAULT_COLUMNS = 80;

/**
 * Draws one status line, rewritten in place, at most every `intervalMs`:
 * "  1.23 GiB / 2.00 GiB  612 MB/s  ETA 0:02  files 120/4,000". Until the file list is complete the totals
 * are what is known so far, marked "+", and there is no ETA. Bytes a resume found in place count as done. The line is fitted to the terminal width by dropping fields from the right.
 */
export class ProgressReporter {
  readonly #stream: ProgressOptions['stream'];
  readonly #enabled: boolean;
  readonly #now: () => number;
  readonly #intervalMs: number;
  readonly #capBps: number | undefined;
  readonly #rate: RateMeter;
  #lastDrawMs: number | undefined;
  #drawn = false;

  constructor(opts: ProgressOptions) {
    this.#stream = opts.stream;
    this.#enabled = opts.enabled;
    this.#now = opts.nowMs ?? monotonicMs;
    this.#intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.#capBps = opts.capBps;
    this.#rate = new RateMeter(opts.windowMs ?? DEFAULT_WINDOW_MS);
  }

  /** Redraws the line unless the last redraw was less than `intervalMs` ago. */
  update(stats: TransferStats): void {
    if (!this.#enabled) return;
    const now = this.#now();
    if (this.#lastDrawMs !== undefined && now - this.#lastDrawMs < this.#intervalMs) return;
    this.#lastDrawMs = now;
    const rate = this.#rate.sample(stats.startedMs, stats.bytesDone, now);
    const line = fitLine(progressFields(progressFigures(stats, rate), this.#capBps), this.#columns());
    this.#stream.write(`${REWRITE}${line}${ERASE_EOL}`);
    this.#drawn = true;
  }

  /** Clears the line, if one was drawn, so the summary starts on a clean line. */
  finish(): void {
    if (!this.#enabled || !this.#drawn) return;
    this.#stream.write(`${REWRITE}${ERASE_EOL}`);
    this.#drawn = false;
    this.#lastDrawMs = undefined;
  }

  #columns(): number {
    const columns = this.#stream.columns;
    return typeof columns === 'number' && columns > 0 ? columns : DEFAULT_COLUMNS;
  }
}

/**
 * The fields of the progress line, most important first; fitLine drops from the end. While the list is
 * still walked the totals read "so far+" and there is no ETA (README "Output").
 */
function progressFields(f: ProgressFigures, capBps: number | undefined): string[] {
  const more = f.listing ? '+' : '';
  const fields = [`${formatBytes(f.bytesDone)} / ${formatBytes(f.bytesTotal)}${more}`];
  const cap = capBps === undefined ? '' : ` (capped at ${formatRate(capBps)})`;
  if (f.rate !== undefined) fields.push(`${formatRate(f.rate)}${cap}`);
  if (f.etaSec !== undefined) fields.push(`ETA ${formatDuration(f.etaSec)}`);
  fields.push(`files ${formatCount(f.filesDone)}/${formatCount(f.filesTotal)}${more}`);
  if (f.filesFailed > 0) fields.push(`${formatCount(f.filesFailed)} failed`);
  return fields;
}

/**
 * Joins fields with two spaces after a two-space indent, dropping trailing fields until the line fits in
 * columns - 1 (writing the last column makes some terminals wrap), then truncating the first field if needed.
 */
export function fitLine(fields: readonly string[], columns: number): string {
  const width = Math.max(1, columns - 1);
  for (let n = fields.length; n > 0; n--) {
    const line = `  ${fields.slice(0, n).join('  ')}`;
    if (line.length <= width) return line;
  }
  return `  ${fields[0] ?? ''}`.slice(0, width);
}
