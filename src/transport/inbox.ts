/**
 * A connection handler for the handshake phase: messages queue up until someone asks for them, and when
 * the connection moves on to a transfer engine the ones that arrived early are replayed to it in order,
 * so nothing the peer sent right after the handshake is lost.
 */
import { codeFromWire, FcpError, type Message, MsgType } from '../protocol/index.js';
import type { ConnHandler, FramedConn } from './framed-conn.js';

/**
 * Messages, and their frame bytes, held before someone asks for them. Past either the socket is paused, so
 * a peer that writes faster than the handshake reads (before authentication it may be anyone) fills its own
 * send buffer, not our memory; a paused socket still delivers the frames of the chunk already read, so the
 * queue stays within one chunk of these. The bytes matter as much as the count: 1024 frames of 64 KiB would
 * be 64 MiB per connection, and a daemon admits 128 unauthenticated connections.
 */
export const MAX_QUEUED_MESSAGES = 1024;
export const MAX_QUEUED_BYTES = 512 * 1024;

export class Inbox implements ConnHandler {
  readonly #conn: FramedConn;
  #queue: Message[] = [];
  /** Frame bytes of each queued message, in step with #queue. */
  #sizes: number[] = [];
  #queuedBytes = 0;
  #closed: FcpError | undefined;
  #waiter:
    { resolve: (m: Message) => void; reject: (e: FcpError) => void; timer: NodeJS.Timeout } | undefined;
  #handedOver = false;
  /** The socket is paused because the queue is full (and only then: the engine owns pausing afterwards). */
  #pausedFull = false;

  constructor(conn: FramedConn) {
    this.#conn = conn;
    conn.setHandler(this);
  }

  onMessage(msg: Message, _conn: FramedConn, frameBytes: number): void {
    if (this.#waiter !== undefined) {
      const w = this.#waiter;
      this.#waiter = undefined;
      clearTimeout(w.timer);
      w.resolve(msg);
      return;
    }
    this.#queue.push(msg);
    this.#sizes.push(frameBytes);
    this.#queuedBytes += frameBytes;
    if (this.#full() && !this.#handedOver && !this.#pausedFull) {
      this.#pausedFull = true;
      this.#conn.pause('inbox');
    }
  }

  /** Messages received and not yet taken: at most MAX_QUEUED_MESSAGES plus one socket chunk's worth. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Their frame bytes: at most MAX_QUEUED_BYTES plus one socket chunk's worth. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  #full(): boolean {
    return this.#queue.length >= MAX_QUEUED_MESSAGES || this.#queuedBytes >= MAX_QUEUED_BYTES;
  }

  onClose(err: FcpError | undefined): void {
    this.#closed = err ?? new FcpError('FCP_ERR_NET_CLOSED', 'connection closed during the handshake');
    if (this.#waiter !== undefined) {
      const w = this.#waiter;
      this.#waiter = undefined;
      clearTimeout(w.timer);
      w.reject(this.#closed);
    }
  }

  /** The next message; an ABORT from the peer becomes a rejection carrying its code and text. */
  async next(timeoutMs: number, what: string): Promise<Message> {
    const msg = await this.#nextRaw(timeoutMs, what);
    if (msg.type === MsgType.Abort) {
      throw new FcpError(codeFromWire(msg.code), msg.text || undefined, { fatal: true });
    }
    return msg;
  }

  #nextRaw(timeoutMs: number, what: string): Promise<Message> {
    const queued = this.#queue.shift();
    this.#queuedBytes -= this.#sizes.shift() ?? 0;
    if (
      this.#pausedFull &&
      this.#queue.length < MAX_QUEUED_MESSAGES / 2 &&
      this.#queuedBytes < MAX_QUEUED_BYTES / 2
    ) {
      this.#resumeReading();
    }
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        const err = new FcpError(
          'FCP_ERR_NET_TIMEOUT',
          `no ${what} from ${this.#conn.remote} within ${timeoutMs} ms`,
        );
        reject(err);
        this.#conn.abort(err);
      }, timeoutMs);
      this.#waiter = { resolve, reject, timer };
    });
  }

  #resumeReading(): void {
    this.#pausedFull = false;
    this.#conn.resume('inbox');
  }

  /**
   * Puts messages taken with next() back in front of the queue, in their order, for handOver() to replay.
   * They count as messages but not as bytes: the caller bounded the bytes of what it set aside.
   */
  putBack(messages: readonly Message[]): void {
    if (this.#handedOver) throw new Error('Inbox.putBack after handOver');
    if (messages.length === 0) return;
    this.#queue.unshift(...messages);
    this.#sizes.unshift(...messages.map(() => 0));
  }

  /** Passes the connection, and whatever arrived early, to the handler that owns it from now on. */
  handOver(handler: ConnHandler): void {
    if (this.#handedOver) throw new Error('Inbox.handOver called twice');
    this.#handedOver = true;
    this.#conn.setHandler(handler);
    // The engine starts with a reading socket; it pauses again itself if what arrived early is too much.
    if (this.#pausedFull) this.#resumeReading();
    const early = this.#queue;
    const sizes = this.#sizes;
    this.#queue = [];
    this.#sizes = [];
    this.#queuedBytes = 0;
    for (let i = 0; i < early.length; i++) {
      if (this.#conn.closed) return;
      try {
        handler.onMessage(early[i]!, this.#conn, sizes[i]!);
      } catch (err) {
        this.#conn.abort(err instanceof FcpError ? err : new FcpError('FCP_ERR_INTERNAL', String(err)));
        return;
      }
    }
    if (this.#closed !== undefined) handler.onClose(this.#closed, this.#conn);
  }
}
