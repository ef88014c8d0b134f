/**
 * Keeps this transfer's entry of the registry (transfer-registry.ts) up to date: one more subscriber to the
 * engine's events (spec/ARCHITECTURE.md §5) for the current file, and a 1 s timer that rewrites the entry
 * from the stats. At the end the entry is removed (a foreground run) or kept with its exit code (a
 * background one, for FINISHED_KEEP_MS).
 */
import { PIECE_SIZE } from '../protocol/index.js';
import type { TransferListener } from '../transfer/events.js';
import type { TransferStats } from '../transfer/stats.js';
import type { TransferRoute } from './transfer-route.js';
import { createRegistryDir, type HeldRegistry } from './registry-dir.js';
import {
  processStartTime,
  removeStatus,
  STATUS_VERSION,
  type TransferStatus,
  writeStatus,
} from './transfer-registry.js';

/** Files from this size (a piece) up are followed one by one for the current file (see #latestSmall). */
const BIG_FILE_BYTES = PIECE_SIZE;
/** The entry is rewritten at most this often. */
const WRITE_INTERVAL_MS = 1000;

/** What is known of a transfer when it starts. */
export interface TransferDescription {
  id: string;
  direction: 'push' | 'pull';
  host: string;
  port: number;
  sources: string[];
  destination: string;
  connections: number;
  bwlimit: number | null;
  /** The background log, or null in the foreground. */
  log: string | null;
}

/** The first entry of a transfer run by process `pid`. */
export function initialStatus(d: TransferDescription, pid: number): TransferStatus {
  const now = new Date().toISOString();
  return {
    version: STATUS_VERSION,
    ...d,
    pid,
    pid_start: processStartTime(pid) ?? '',
    transport: null,
    state: 'running',
    current_file: null,
    bytes_done: 0,
    bytes_total: 0,
    files_done: 0,
    files_total: 0,
    rate: null,
    eta_sec: null,
    started_at: now,
    updated_at: now,
    exit_code: null,
  };
}

export interface StatusSources {
  /** The current attempt's stats (a retry starts new ones). */
  stats: () => TransferStats;
  /** Connections open now. */
  connections: () => number;
  /** How the latest session was reached; undefined before the first one. */
  route: () => TransferRoute | undefined;
}

export class TransferStatusWriter {
  /** Held from the first entry to the last (registry-dir.ts): no path is followed again meanwhile. */
  readonly #registry: HeldRegistry;
  readonly #status: TransferStatus;
  readonly #from: StatusSources;
  readonly #timer: NodeJS.Timeout;
  /** Files of a piece or more whose data is on its way, oldest first: the first is the "current file". */
  readonly #inFlight = new Set<string>();
  /**
   * The latest smaller file asked for, until it is done: the current file when no bigger one is on its way.
   * Small files are not kept in #inFlight: hashing every path into a set was ~1.5 us a file, for a name
   * the status shows once a second and that is gone in microseconds.
   */
  #latestSmall: string | undefined;
  #last: { ms: number; bytes: number } | undefined;

  constructor(dir: string, description: TransferDescription, from: StatusSources) {
    this.#from = from;
    this.#registry = createRegistryDir(dir);
    this.#status = initialStatus(description, process.pid);
    try {
      writeStatus(this.#registry.via, this.#status);
    } catch (err) {
      this.#registry.close();
      throw err;
    }
    this.#timer = setInterval(() => this.#write(), WRITE_INTERVAL_MS);
    // The transfer keeps the process alive, not its status.
    this.#timer.unref();
  }

  /** The subscriber to the engine's events: which file is being sent. */
  readonly listener: TransferListener = (event) => {
    if (event.type === 'needed') {
      if (event.bytes >= BIG_FILE_BYTES) this.#inFlight.add(event.path);
      else if (event.bytes > 0) this.#latestSmall = event.path;
    } else if (event.type === 'finished' || event.type === 'failed') {
      if (event.path === this.#latestSmall) this.#latestSmall = undefined;
      else if (this.#inFlight.size > 0) this.#inFlight.delete(event.path);
    }
  };

  /** A foreground run ends: its entry goes. Synchronous, so it can run in process.on('exit'). */
  remove(): void {
    clearInterval(this.#timer);
    try {
      removeStatus(this.#registry.via, this.#status.id);
    } finally {
      this.#registry.close();
    }
  }

  /** A background run ends: its entry stays, exited, with its code. Synchronous, as remove(). */
  exited(code: number): void {
    clearInterval(this.#timer);
    this.#refresh(performance.now());
    this.#status.state = 'exited';
    this.#status.exit_code = code;
    this.#status.current_file = null;
    this.#status.rate = null;
    this.#status.eta_sec = null;
    try {
      writeStatus(this.#registry.via, this.#status);
    } finally {
      this.#registry.close();
    }
  }

  #write(): void {
    this.#refresh(performance.now());
    try {
      writeStatus(this.#registry.via, this.#status);
    } catch {
      // A full disk or a removed directory costs the status only; the transfer goes on.
    }
  }

  #refresh(nowMs: number): void {
    const stats = this.#from.stats();
    const s = this.#status;
    const bytes = stats.bytesDone + stats.bytesResumed;
    if (this.#last !== undefined && nowMs > this.#last.ms) {
      // A retry starts from new stats: a drop is not a negative rate.
      s.rate = Math.round((Math.max(0, bytes - this.#last.bytes) * 1000) / (nowMs - this.#last.ms));
    }
    this.#last = { ms: nowMs, bytes };
    s.bytes_done = bytes;
    s.bytes_total = stats.bytesTotal + stats.bytesResumed;
    s.files_done = stats.filesSent + stats.filesSkipped + stats.filesFailed + stats.dirs;
    s.files_total = stats.filesTotal;
    const remaining = s.bytes_total - s.bytes_done;
    s.eta_sec =
      stats.listComplete && s.rate !== null && s.rate > 0
        ? Math.round(Math.max(0, remaining) / s.rate)
        : null;
    s.connections = this.#from.connections();
    const route = this.#from.route();
    if (route !== undefined) {
      s.transport = route.transport;
      s.port = route.port;
    }
    s.current_file = this.#inFlight.values().next().value ?? this.#latestSmall ?? null;
    s.updated_at = new Date().toISOString();
  }
}
