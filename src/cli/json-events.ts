/**
 * fcp --json: one JSON object per line on stdout, for scripts (spec/EVENTS.md is the schema, version
 * JSON_EVENTS_VERSION). A TransferListener turns the engine's per-file events into lines; the caller adds
 * the start of each session, progress at most every PROGRESS_INTERVAL_MS, the fatal error and the summary.
 * Only src/cli/ writes to stdout: this module is handed the function that does.
 */
import type { TransferRoute } from '../client/transfer-route.js';
import type { FcpError, SessionMsg } from '../protocol/index.js';
import type { TransferEvent, TransferEventType, TransferListener } from '../transfer/events.js';
import type { TransferStats } from '../transfer/stats.js';
import { progressFigures, RateMeter } from './progress-figures.js';
import { jsonLine, jsonString } from './json-line.js';

/** Bumped when a field changes meaning or goes away; new fields and events do not bump it. */
export const JSON_EVENTS_VERSION = 1;
const PROGRESS_INTERVAL_MS = 1000;
const RATE_WINDOW_MS = 5000;
/** File lines held back at most, in bytes: written at once beyond it, not at the end of the pass. */
const PENDING_BYTES = 64 * 1024;

/** What the start events say of the run; each adds its session's id and granted connections. */
export interface JsonRun {
  direction: 'push' | 'pull';
  host: string;
  port: number;
  sources: readonly string[];
  destination: string;
  /** The connections asked for (--connections): the daemon may grant fewer. */
  connections: number;
  dryRun: boolean;
  limit: number | undefined;
}

/** What the summary event says of the whole run (every attempt's files and bytes counted once). */
export interface JsonSummary {
  stats: TransferStats;
  elapsedSec: number;
  dryRun: boolean;
  exitCode: number;
  /** The most connections open at once in any attempt, the control one included (it carries data too). */
  connections: number;
}

type Line = Record<string, unknown>;

/** The engine events that make a line (fileLine, settledLine). */
const LINE_EVENTS: ReadonlySet<TransferEventType> = new Set<TransferEventType>([
  'finished',
  'skipped',
  'not-sent',
  'failed',
  'warning',
  'connection-lost',
]);

export class JsonEvents {
  readonly #write: (text: string | Uint8Array) => void;
  readonly #now: () => number;
  readonly #rate = new RateMeter(RATE_WINDOW_MS);
  readonly #run: JsonRun;
  #lastProgressMs: number | undefined;
  /** Sessions started so far: the start event's `attempt`. */
  #sessions = 0;
  /**
   * File lines not written yet: those settled in one pass of the event loop go out in one write. A re-run
   * that skips 59,000 entries wrote 59,000 lines to a pipe, each a write(2) of its own: a fifth of the
   * client's CPU (spec/EVENTS.md "Order"). Every other line writes them first, so the order stays.
   */
  #pending: Buffer | undefined;
  #pendingBytes = 0;
  #flushQueued = false;
  /** The `time` of the last line and the millisecond it was made for: one Date per millisecond, not per line. */
  #stampMs = Number.NaN;
  #stamp = '';

  /**
   * `write` gets whole lines with their newlines (file lines as UTF-8, several at once); `nowMs` is the
   * monotonic clock of the stats' startedMs.
   */
  constructor(run: JsonRun, write: (text: string | Uint8Array) => void, nowMs: () => number) {
    this.#run = run;
    this.#write = write;
    this.#now = nowMs;
  }

  /** The subscriber to the engine's events (EngineOptions.listeners): one line per settled entry. */
  readonly listener: TransferListener = (event) => {
    // Most events make no line ('listed', one per entry; 'data'): no clock read for them.
    if (!LINE_EVENTS.has(event.type)) return;
    if (event.type === 'skipped' || event.type === 'finished') {
      this.#queue(settledLine(event, this.#time()));
      return;
    }
    const line = fileLine(event, this.#time());
    if (line === undefined) return;
    if (line['event'] === 'file') this.#queue(jsonLine(line));
    else this.#writeNow(jsonLine(line));
  };

  /** The start event of a session the daemon granted (CommonOptions.onSession). */
  readonly sessionStarted = (session: SessionMsg, route?: TransferRoute): void => {
    this.#sessions++;
    const run = this.#run;
    this.#emit({
      event: 'start',
      session: Buffer.from(session.sessionId).toString('hex'),
      attempt: this.#sessions,
      direction: run.direction,
      host: run.host,
      port: route?.port ?? run.port,
      // No route: the session was not run through a TransportChooser, so it dialed the endpoint itself.
      transport: route?.transport ?? 'daemon',
      sources: run.sources,
      destination: run.destination,
      connections: Math.min(run.connections, session.maxConnections),
      dry_run: run.dryRun,
      limit: run.limit ?? null,
    });
  };

  /** A progress line, unless one went out less than a second ago or no session has started yet. */
  progress(stats: TransferStats): void {
    if (this.#sessions === 0) return;
    const now = this.#now();
    const rate = this.#rate.sample(stats.startedMs, stats.bytesDone, now);
    if (this.#lastProgressMs !== undefined && now - this.#lastProgressMs < PROGRESS_INTERVAL_MS) return;
    this.#lastProgressMs = now;
    const f = progressFigures(stats, rate);
    this.#emit({
      event: 'progress',
      bytes_done: f.bytesDone,
      bytes_total: f.bytesTotal,
      bytes_sent: f.bytesSent,
      files_done: f.filesDone,
      files_total: f.filesTotal,
      files_failed: f.filesFailed,
      listing: f.listing,
      rate: f.rate === undefined ? null : Math.round(f.rate),
      eta_sec: f.etaSec === undefined ? null : Math.round(f.etaSec),
    });
  }

  /** A problem that fails nothing (a retry, a notice worth telling). */
  warning(err: FcpError): void {
    this.#emit({ event: 'warning', ...errorFields(err) });
  }

  /** The error that ended the run; the summary follows. */
  error(err: FcpError): void {
    this.#emit({ event: 'error', ...errorFields(err) });
  }

  summary(s: JsonSummary): void {
    this.#emit({
      event: 'summary',
      files_sent: s.stats.filesSent,
      files_skipped: s.stats.filesSkipped,
      files_failed: s.stats.filesFailed,
      files_not_sent: s.stats.filesNotSent,
      dirs: s.stats.dirs,
      bytes_sent: s.stats.bytesDone,
      bytes_resumed: s.stats.bytesResumed,
      bytes_planned: s.stats.bytesTotal,
      elapsed_sec: Math.round(s.elapsedSec * 1000) / 1000,
      dry_run: s.dryRun,
      exit_code: s.exitCode,
      connections: s.connections,
    });
  }

  /** Writes the file lines held back now (also called at the end of the pass they were made in). */
  flush(): void {
    const pending = this.#pending;
    if (pending === undefined || this.#pendingBytes === 0) return;
    const bytes = this.#pendingBytes;
    // A new buffer for the next lines: a write that could not finish at once may hold on to this one.
    this.#pending = undefined;
    this.#pendingBytes = 0;
    this.#write(pending.subarray(0, bytes));
  }

  #emit(fields: Line): void {
    this.#writeNow(jsonLine({ v: JSON_EVENTS_VERSION, time: this.#time(), ...fields }));
  }

  #writeNow(line: string): void {
    this.flush();
    this.#write(line);
  }

  /**
   * Encodes the line into the pending bytes at once, so that its string dies young: pending lines held as
   * one string kept every line's pieces alive through the scavenges until the flush, and promoted them.
   */
  #queue(line: string): void {
    // A UTF-16 unit is at most 3 bytes of UTF-8.
    if (this.#pendingBytes + 3 * line.length > PENDING_BYTES) this.flush();
    this.#pending ??= Buffer.allocUnsafe(Math.max(PENDING_BYTES, 3 * line.length));
    this.#pendingBytes += this.#pending.write(line, this.#pendingBytes);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => {
      this.#flushQueued = false;
      this.flush();
    });
  }

  #time(): string {
    const ms = Date.now();
    if (ms !== this.#stampMs) {
      this.#stampMs = ms;
      this.#stamp = new Date(ms).toISOString();
    }
    return this.#stamp;
  }
}

/**
 * The "file" line of an entry sent or skipped, one per entry of a run: what jsonLine() writes for the object
 * with these keys in this order, built as text (a third of the cost: no object, no generic walk). Only the
 * path can hold characters to escape; the other strings are the engine's own words.
 */
export function settledLine(event: SettledEvent, time: string): string {
  const sent = event.type === 'finished';
  const head =
    `{"v":${JSON_EVENTS_VERSION},"time":"${time}","event":"file",` +
    `"status":"${statusOf(event.kind, sent ? 'sent' : 'skipped')}","path":${jsonString(event.path)},` +
    `"kind":"${event.kind}","size":${event.size}`;
  return sent ? `${head},"resumed_bytes":${event.resumedBytes}}\n` : `${head}}\n`;
}

type SettledEvent = Extract<TransferEvent, { type: 'skipped' | 'finished' }>;

/**
 * The line of any other engine event, with `v` and `time` first (built whole: a spread of the fields into
 * another object was a tenth of the cost of a line), or undefined for the events that settle no entry.
 */
function fileLine(event: TransferEvent, time: string): Line | undefined {
  const v = JSON_EVENTS_VERSION;
  switch (event.type) {
    case 'not-sent':
      return { v, time, event: 'file', status: 'not_sent', path: event.path, kind: 'file', size: event.size };
    case 'failed':
      return {
        v,
        time,
        event: 'file',
        status: 'failed',
        path: event.path,
        code: event.error.code,
        message: event.error.message,
      };
    case 'warning':
      return { v, time, event: 'warning', ...errorFields(event.error) };
    case 'connection-lost':
      return {
        v,
        time,
        event: 'connection_lost',
        ...errorFields(event.error),
        connections: event.connections,
      };
    default:
      return undefined;
  }
}

/**
 * A directory's status is 'ready' (made or verified), whichever way the engine reported it: the receiver
 * answers SKIP for both, so a pushing client cannot tell them apart, and a pull must not read differently.
 */
function statusOf(kind: string, status: 'sent' | 'skipped'): string {
  return kind === 'dir' ? 'ready' : status;
}

function errorFields(err: FcpError): Line {
  return err.path === undefined
    ? { code: err.code, message: err.message }
    : { code: err.code, message: err.message, path: err.path };
}
