/**
 * What the sending and the receiving engine share: the session's connections, liveness (PING when quiet,
 * a connection that hears nothing for the idle timeout is dropped), and the failure rules:
 *   - losing a data connection is survivable: the engine re-sends what it carried over the others;
 *   - losing the control connection, every connection, or receiving ABORT ends the session.
 * One promise, `done`, settles when the transfer is over.
 */
import type { ConnHandler, FramedConn } from '../transport/framed-conn.js';
import type { RateLimit } from '../transport/rate-limit.js';
import { codeFromWire, FcpError, type Message, MsgType, toFcpError } from '../protocol/index.js';
import type { Hasher } from './checksum.js';
import { reduceStats, type TransferEvent, TransferEvents, type TransferListener } from './events.js';
import type { TransferStats } from './stats.js';

/** Send a PING on a connection that has sent nothing for this long. */
const PING_INTERVAL_MS = 5_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

export interface EngineOptions {
  hasher: Hasher;
  /** The first connection: it carries the file list and results, and file data too. */
  control: FramedConn;
  /** The figures, kept as the reduction of this engine's events (reduceStats). */
  stats: TransferStats;
  /**
   * Subscribed before anything is reported: what prints or logs per-file problems, the client's extra
   * connections (they follow 'needed' and 'connection-lost'), later a --json writer.
   */
  listeners: readonly TransferListener[];
  /** A connection that receives nothing (not even PING) for this long is dropped. */
  idleTimeoutMs?: number;
  /** --bwlimit: the session's one bucket; the sender pays before it writes, the receiver as it reads. */
  rateLimit?: RateLimit;
}

export abstract class TransferEngine implements ConnHandler {
  protected readonly hasher: Hasher;
  protected readonly control: FramedConn;
  protected readonly stats: TransferStats;
  protected readonly conns = new Set<FramedConn>();
  protected readonly rateLimit: RateLimit | undefined;
  /** What this transfer reports as it goes (events.ts); `stats` is kept as their reduction. */
  readonly events = new TransferEvents();
  readonly #idleTimeoutMs: number;
  readonly #monitor: NodeJS.Timeout;
  #finished = false;
  /** Connections retired on purpose (retire()): their close is no loss. */
  readonly #retired = new Set<FramedConn>();
  #peakConnections = 0;
  /** holdReading(true) is in force: connections added meanwhile start paused too. */
  #readingHeld = false;
  #failure: FcpError | undefined;
  #settle!: { resolve: () => void; reject: (err: FcpError) => void };
  /** Settles once: resolves when the transfer completed, rejects with the fatal error otherwise. */
  readonly done: Promise<void>;

  constructor(opts: EngineOptions) {
    this.hasher = opts.hasher;
    this.control = opts.control;
    this.stats = opts.stats;
    this.rateLimit = opts.rateLimit;
    for (const listener of opts.listeners) this.events.on(listener);
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.done = new Promise<void>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    // A rejection nobody awaits yet must not crash the process; callers await `done` later.
    this.done.catch(() => {});
    this.#monitor = setInterval(() => this.#checkLiveness(), Math.min(1000, this.#idleTimeoutMs / 4));
    this.#monitor.unref();
  }

  get finished(): boolean {
    return this.#finished || this.#failure !== undefined;
  }

  /** The fatal error the session ended with, once it has. */
  protected get failure(): FcpError | undefined {
    return this.#failure;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  /** The most connections this engine had open at once (the control one included). */
  get peakConnections(): number {
    return this.#peakConnections;
  }

  /**
   * Gives `conn` no new work and closes it once what it carries is acknowledged; false when this engine
   * cannot (it is not the sender: the peer decides what goes on each connection) or `conn` is the control
   * connection. Its close is then no loss: nothing re-sent, no 'connection-lost', no replacement.
   */
  retire(conn: FramedConn): boolean {
    if (conn === this.control || !this.conns.has(conn) || this.finished) return false;
    if (!this.retireConnection(conn)) return false;
    this.#retired.add(conn);
    return true;
  }

  /** See retire(): a sender stops sending on `conn`; a receiver asks its peer to (DETACH). */
  protected retireConnection(conn: FramedConn): boolean {
    return this.stopSending(conn);
  }

  /** A sender stops its pump on `conn` and ends it once it is idle; false where nothing is sent. */
  protected stopSending(_conn: FramedConn): boolean {
    return false;
  }

  /**
   * Adds a connection: the control one (each subclass does that as the last step of its constructor, once
   * its own fields exist) or an ATTACHed one. Its messages reach the engine once the connection's Inbox
   * hands it over (Inbox.handOver): until then they wait there, so a client may start its list while its
   * handshake still waits for SESSION.
   */
  addConnection(conn: FramedConn): void {
    if (this.finished) {
      conn.destroy();
      return;
    }
    this.conns.add(conn);
    this.#peakConnections = Math.max(this.#peakConnections, this.conns.size);
    if (this.#readingHeld) conn.pause('output');
    this.connectionAdded(conn);
  }

  /**
   * While true, no connection of this engine reads: what arrives waits in the sockets and the peer's
   * windows fill, so the transfer stops making progress and events. The client holds it while the reader of
   * its stdout is behind (cli/stdout-queue.ts). Liveness is not affected: a paused connection is not silent.
   */
  holdReading(held: boolean): void {
    if (held === this.#readingHeld) return;
    this.#readingHeld = held;
    for (const conn of this.conns) {
      if (held) conn.pause('output');
      else conn.resume('output');
    }
  }

  onMessage(msg: Message, conn: FramedConn): void {
    if (this.finished) return;
    if (msg.type === MsgType.Abort) {
      this.fail(new FcpError(codeFromWire(msg.code), msg.text || undefined, { fatal: true }), false);
      return;
    }
    if (msg.type === MsgType.Detach) {
      this.#detach(conn);
      return;
    }
    this.handle(msg, conn);
  }

  /**
   * The receiver asks us to stop sending on `conn` (spec/PROTOCOL.md §3.2): retired as our own tuner would
   * retire it. Only a sender has anything to stop, and the control connection carries the session.
   */
  #detach(conn: FramedConn): void {
    if (conn === this.control) {
      throw new FcpError(
        'FCP_ERR_PROTO_UNEXPECTED',
        'DETACH on the control connection: only a data connection can be detached',
      );
    }
    if (this.#retired.has(conn) || !this.conns.has(conn)) return;
    if (!this.stopSending(conn)) {
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'DETACH sent to the receiving end of a session');
    }
    this.#retired.add(conn);
  }

  onFrameError(err: FcpError, conn: FramedConn): void {
    // A corrupt frame on a data connection costs that connection only: its pieces are re-sent elsewhere.
    if (conn === this.control) this.fail(err);
    else conn.destroy(err);
  }

  onClose(err: FcpError | undefined, conn: FramedConn): void {
    const known = this.conns.delete(conn);
    if (!known) return;
    // A retired connection that still carried something (it failed before its acks came) is re-sent as
    // any other, but its close is no loss to report.
    this.connectionLost(conn);
    if (this.#retired.delete(conn) || this.finished) return;
    const e =
      err ??
      new FcpError('FCP_ERR_NET_CLOSED', `${conn.peer} closed the connection before the transfer finished`);
    if (conn === this.control || this.conns.size === 0) {
      this.fail(e, false);
      return;
    }
    this.emit({ type: 'connection-lost', error: e, connections: this.conns.size });
  }

  /** Reports `event`: the stats take it first, then every listener. */
  protected emit(event: TransferEvent): void {
    reduceStats(this.stats, event);
    this.events.emit(event);
  }

  /**
   * Resolves once the file work a failure started is done: the partial files a --discard cancel removes.
   * A process about to exit waits for it (client/finish.ts).
   */
  cleanedUp(): Promise<void> {
    return Promise.resolve();
  }

  /** After success: closes every connection once what is queued on it has been written. */
  closeAll(): void {
    for (const conn of this.conns) conn.end();
  }

  /** Ends the session with a fatal error: ABORT to the peer (when `tell`), every socket closed. */
  fail(err: unknown, tell = true): void {
    if (this.finished) return;
    const e = toFcpError(err);
    this.#failure = e.fatal ? e : new FcpError(e.code, e.message, { fatal: true, path: e.path, cause: e });
    clearInterval(this.#monitor);
    for (const conn of this.conns) {
      if (tell) conn.abort(this.#failure);
      else conn.destroy();
    }
    this.cleanup();
    this.#settle.reject(this.#failure);
  }

  protected succeed(): void {
    if (this.finished) return;
    this.#finished = true;
    clearInterval(this.#monitor);
    this.#settle.resolve();
  }

  #checkLiveness(): void {
    const now = performance.now();
    for (const conn of this.conns) {
      // A connection we stopped reading (our disk is behind) is not the peer's silence.
      if (conn.paused) conn.lastReceivedMs = now;
      if (now - conn.lastReceivedMs > this.#idleTimeoutMs) {
        const secs = Math.round(this.#idleTimeoutMs / 1000);
        conn.destroy(new FcpError('FCP_ERR_NET_TIMEOUT', `no data from ${conn.remote} for ${secs} s`));
      } else if (now - conn.lastSentMs > PING_INTERVAL_MS) {
        conn.send({ type: MsgType.Ping });
      }
    }
  }

  /** A message for this engine's role; throw FcpError(FCP_ERR_PROTO_*) for anything out of place. */
  protected abstract handle(msg: Message, conn: FramedConn): void;
  protected abstract connectionAdded(conn: FramedConn): void;
  /** The connection is gone (the session may go on): re-send or forget what it carried. */
  protected abstract connectionLost(conn: FramedConn): void;
  /** Releases files and buffers after a failure. */
  protected abstract cleanup(): void;
}

/** Runs a promise-returning job with at most `limit` running at once. */
export class Limiter {
  readonly #limit: number;
  #running = 0;
  #queue: Array<() => void> = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#limit) await new Promise<void>((resolve) => this.#queue.push(resolve));
    this.#running++;
    try {
      return await job();
    } finally {
      this.#running--;
      this.#queue.shift()?.();
    }
  }
}

/** A promise that can be settled from outside: the wake-up signal of a waiting loop. */
export class Signal {
  #waiters: Array<() => void> = [];

  wait(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  wake(): void {
    // Woken several times per file where nobody waits: no fresh array then (a small-file sender's garbage).
    if (this.#waiters.length === 0) return;
    const w = this.#waiters;
    this.#waiters = [];
    for (const resolve of w) resolve();
  }
}

export function unexpected(msg: Message, role: string): FcpError {
  return new FcpError(
    'FCP_ERR_PROTO_UNEXPECTED',
    `message type 0x${msg.type.toString(16)} is not valid for the ${role}`,
  );
}
