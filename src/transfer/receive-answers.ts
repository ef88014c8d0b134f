/**
 * The receiver's answers, batched: FILE_READY and FILE_DONE entries queued during one event-loop turn go
 * out as one message each (or sooner, at the message's entry limit), PIECE_ACKs per connection a few ms
 * later, and the control connection stops being read while too much of our answers is queued unsent.
 */
import {
  type DoneEntry,
  MAX_ACK_ENTRIES,
  MAX_DONE_ENTRIES,
  MAX_READY_ENTRIES,
  MsgType,
  type PieceRef,
  ReadyAction,
  type ReadyActionValue,
  type ReadyEntry,
} from '../protocol/index.js';
import type { FramedConn } from '../transport/framed-conn.js';
import type { OpenEntries } from './receive-bounds.js';

/** Stop reading the control connection while this much of our answers is queued unsent. */
const CONTROL_BACKLOG = 1 << 20;
/**
 * PIECE_ACKs wait this long to share a frame. Flushed every event-loop turn, a big file's acks went one per
 * frame: ~2,000 tiny TLS records and loopback sends per 2 GiB, 176 ms of the daemon's CPU and as much on the
 * sender to read them. The sender's window (64 MiB a connection) does not notice a few ms.
 */
const ACK_DELAY_MS = 5;

/** FILE_READY, FILE_HAVE and FILE_DONE on the control connection. */
export class Answers {
  readonly #control: FramedConn;
  /** Entries taken and not yet settled: a final answer settles one. */
  readonly #open: OpenEntries;
  readonly #sessionOver: () => boolean;
  #readyBatch: ReadyEntry[] = [];
  #doneBatch: DoneEntry[] = [];
  #flushScheduled = false;

  constructor(control: FramedConn, open: OpenEntries, sessionOver: () => boolean) {
    this.#control = control;
    this.#open = open;
    this.#sessionOver = sessionOver;
  }

  /** FILE_READY for entry `id`; SKIP and FAIL are its final answer. */
  ready(id: number, action: ReadyActionValue, code = 0): void {
    if (action === ReadyAction.Skip || action === ReadyAction.Fail) this.#open.settle(id);
    this.#readyBatch.push({ id, action, code });
    if (this.#readyBatch.length >= MAX_READY_ENTRIES) this.flush();
    else this.#scheduleFlush();
  }

  /** FILE_DONE for entry `id`: its final answer. */
  done(id: number, code: number): void {
    this.#open.settle(id);
    this.#doneBatch.push({ id, code });
    if (this.#doneBatch.length >= MAX_DONE_ENTRIES) this.flush();
    else this.#scheduleFlush();
  }

  /** FILE_HAVE, which must precede the FILE_READY that says RESUME: queued answers go first to keep order. */
  have(id: number, firstSeq: number, bitmap: Uint8Array): void {
    this.flush();
    this.#control.send({ type: MsgType.FileHave, id, firstSeq, bitmap });
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.#flushScheduled = false;
    if (this.#sessionOver()) return;
    const control = this.#control;
    if (this.#readyBatch.length > 0) {
      control.send({ type: MsgType.FileReady, entries: this.#readyBatch });
      this.#readyBatch = [];
    }
    if (this.#doneBatch.length > 0) {
      control.send({ type: MsgType.FileDone, entries: this.#doneBatch });
      this.#doneBatch = [];
    }
    // A sender that never reads our answers must not make us buffer them without bound.
    if (control.queuedBytes > CONTROL_BACKLOG) {
      control.pause('backlog');
      control.drained().then(
        () => control.resume('backlog'),
        () => {},
      );
    }
  }
}

/** The PIECE_ACKs of one connection: sent on the connection that carried the pieces. */
export class PieceAcks {
  readonly #conn: FramedConn;
  #acks: PieceRef[] = [];
  #scheduled = false;

  constructor(conn: FramedConn) {
    this.#conn = conn;
  }

  add(piece: PieceRef): void {
    this.#acks.push(piece);
    if (this.#acks.length >= MAX_ACK_ENTRIES) this.flush();
    if (this.#scheduled) return;
    this.#scheduled = true;
    setTimeout(() => this.flush(), ACK_DELAY_MS).unref();
  }

  flush(): void {
    this.#scheduled = false;
    if (this.#acks.length === 0 || this.#conn.closed) return;
    this.#conn.send({ type: MsgType.PieceAck, pieces: this.#acks });
    this.#acks = [];
  }
}
