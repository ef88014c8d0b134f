/**
 * What the sending and the receiving engine share: the session's connections, the rule that a lost
 * connection or an ABORT ends the session, and one promise that settles when the transfer is over.
 */
import type { ConnHandler, FramedConn } from '../net/framed-conn.js';
import { codeFromWire, FcpError, type Message, MsgType, toFcpError } from '../protocol/index.js';
import type { Hasher } from './checksum.js';
import type { TransferStats } from './stats.js';

export interface EngineOptions {
  hasher: Hasher;
  /** The first connection: it carries the file list and results, and file data too. */
  control: FramedConn;
  stats: TransferStats;
  /** Per-file problems (the transfer goes on): the caller prints or logs them. */
  onWarning: (err: FcpError) => void;
}

export abstract class TransferEngine implements ConnHandler {
  protected readonly hasher: Hasher;
  protected readonly control: FramedConn;
  protected readonly stats: TransferStats;
  protected readonly warn: (err: FcpError) => void;
  protected readonly conns = new Set<FramedConn>();
  #finished = false;
  #failure: FcpError | undefined;
  #settle!: { resolve: () => void; reject: (err: FcpError) => void };
  /** Settles once: resolves when the transfer completed, rejects with the fatal error otherwise. */
  readonly done: Promise<void>;

  constructor(opts: EngineOptions) {
    this.hasher = opts.hasher;
    this.control = opts.control;
    this.stats = opts.stats;
    this.warn = opts.onWarning;
    this.done = new Promise<void>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    // A rejection nobody awaits yet must not crash the process; callers await `done` later.
    this.done.catch(() => {});
  }

  get finished(): boolean {
    return this.#finished || this.#failure !== undefined;
  }

  /**
   * Adds a connection: the control one (each subclass does that as the last step of its constructor, once
   * its own fields exist) or an ATTACHed one.
   */
  addConnection(conn: FramedConn): void {
    if (this.finished) {
      conn.destroy();
      return;
    }
    this.conns.add(conn);
    conn.setHandler(this);
    this.connectionAdded(conn);
  }

  onMessage(msg: Message, conn: FramedConn): void {
    if (this.finished) return;
    if (msg.type === MsgType.Abort) {
      this.fail(new FcpError(codeFromWire(msg.code), msg.text || undefined, { fatal: true }), false);
      return;
    }
    this.handle(msg, conn);
  }

  onClose(err: FcpError | undefined, conn: FramedConn): void {
    this.conns.delete(conn);
    this.connectionLost(conn);
    if (this.finished) return;
    this.fail(
      err ?? new FcpError('FCP_ERR_NET_CLOSED', 'connection closed before the transfer finished'),
      false,
    );
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
    this.#settle.resolve();
  }

  /** A message for this engine's role; throw FcpError(FCP_ERR_PROTO_*) for anything out of place. */
  protected abstract handle(msg: Message, conn: FramedConn): void;
  protected abstract connectionAdded(conn: FramedConn): void;
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
