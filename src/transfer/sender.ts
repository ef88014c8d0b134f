/**
 * The sending side of a transfer (the client on push, the daemon on pull).
 *
 * Three loops run at once: the list loop walks the sources and streams DIR_INFO/FILE_INFO on the control
 * connection (sender-announce.ts); the read-ahead keeps a bounded number of pieces read and hashed
 * (sender-read-ahead.ts); one pump per connection takes ready pieces and writes them as DATA frames, waiting
 * for 'drain' when the socket is full (sender-pump.ts). The receiver's FILE_READY answers feed the piece
 * queue, so there is no round trip per file (spec/PROTOCOL.md §5). This engine wires them: it routes the
 * receiver's messages and connection events to the loop they concern, and sends DONE at the end. The bytes
 * come from a Source (store/source.ts): the local file system unless told otherwise.
 *
 * Every piece stays "unacknowledged" on the connection that carried it until the receiver has written it;
 * if that connection dies, its unacknowledged pieces are read again and re-sent over the others (§7.2).
 */
import type { FramedConn } from '../transport/framed-conn.js';
import { type Message, MsgType } from '../protocol/index.js';
import { type EngineOptions, TransferEngine, unexpected } from './engine.js';
import type { Selector } from './select.js';
import { Announcer } from './sender-announce.js';
import { heldBytes, type SendContext, type SendFile } from './sender-file.js';
import { Pumps } from './sender-pump.js';
import { ReadAhead } from './sender-read-ahead.js';
import { SendLimit } from './send-limit.js';
import type { SourceRoot } from './store/source-spec.js';
import { PosixSource } from './store/posix-source.js';
import type { Source } from './store/source.js';

export interface SenderOptions extends EngineOptions {
  sources: readonly SourceRoot[];
  selector: Selector;
  /** Announce content hashes so the receiver compares by checksum (--checksum). */
  checksum: boolean;
  /**
   * Set on a push started before its SESSION: at most this many entries, and no further one once
   * MAX_LIST_BYTES_BEFORE_SESSION have been sent (plus FILE_COUNT, if that is the whole list), go out
   * until sessionGranted(); 0 holds the whole list back (a daemon without ListBeforeSession).
   */
  preSessionEntries?: number;
  /** --limit N: at most N files get their data sent, the first that need it (send-limit.ts). */
  limit?: number | undefined;
  /** A dry run (spec/PROTOCOL.md §5.6): a needed file is only counted; the receiver settles it, no data. */
  dryRun?: boolean;
  /** Where the sources are read from; the local file system (PosixSource) when absent. */
  store?: Source;
}

export class Sender extends TransferEngine {
  readonly #list: Announcer;
  readonly #readAhead: ReadAhead;
  readonly #pumps: Pumps;
  readonly #dryRun: boolean;
  #doneSent = false;

  constructor(opts: SenderOptions) {
    super(opts);
    this.#dryRun = opts.dryRun === true;
    const ctx: SendContext = {
      control: this.control,
      hasher: this.hasher,
      source: opts.store ?? new PosixSource(),
      rateLimit: opts.rateLimit,
      emit: (event) => this.emit(event),
      warn: (error) => this.emit({ type: 'warning', error }),
      finished: () => this.finished,
      fail: (err) => this.fail(err),
    };
    this.#list = new Announcer(ctx, {
      sources: opts.sources,
      selector: opts.selector,
      checksum: opts.checksum,
      preSessionEntries: opts.preSessionEntries,
      onWanted: (file) => this.#onWanted(file),
      onSettled: (file) => this.#readAhead.closeFile(file),
      onChange: () => this.#maybeDone(),
      limit: opts.limit === undefined ? undefined : new SendLimit(opts.limit),
    });
    this.#readAhead = new ReadAhead(ctx, (file) => this.#list.isUnresolved(file));
    this.#pumps = new Pumps(ctx, this.#readAhead);
    this.addConnection(opts.control);
  }

  /** Starts the list loop; `done` settles when the receiver has confirmed everything. */
  start(): void {
    this.#list.run().catch((err) => this.fail(err));
  }

  /** SESSION arrived (preSessionEntries): the list may run the whole window ahead now. */
  sessionGranted(): void {
    this.#list.grant();
    this.#maybeDone();
  }

  protected connectionAdded(conn: FramedConn): void {
    this.#pumps.add(conn);
  }

  protected override stopSending(conn: FramedConn): boolean {
    this.#pumps.retire(conn, () => conn.end());
    return true;
  }

  protected connectionLost(conn: FramedConn): void {
    const unacked = this.#pumps.lost(conn);
    if (unacked !== undefined) this.#readAhead.sendAgain(unacked);
  }

  protected cleanup(): void {
    this.#readAhead.wake();
    this.#list.wake();
    this.#pumps.wake();
    for (const file of this.#list.unresolvedFiles()) this.#readAhead.closeFile(file);
  }

  protected handle(msg: Message, conn: FramedConn): void {
    switch (msg.type) {
      case MsgType.FileReady:
        this.#list.onFileReady(msg);
        this.#readAhead.fill();
        this.#maybeDone();
        return;
      case MsgType.FileHave:
        this.#list.onFileHave(msg);
        return;
      case MsgType.PieceAck:
        this.#pumps.onPieceAck(msg.pieces, conn);
        return;
      case MsgType.FileDone:
        for (const e of msg.entries) this.#list.onFileDone(e.id, e.code);
        this.#maybeDone();
        return;
      case MsgType.Done:
        if (!this.#doneSent) throw unexpected(msg, 'sender before its DONE');
        this.#pumps.creditUnacked();
        this.succeed();
        return;
      default:
        throw unexpected(msg, 'sender');
    }
  }

  /** The receiver asked for the file's data: what must cross counts now, and its pieces queue for reading. */
  #onWanted(file: SendFile): void {
    const held = heldBytes(file);
    this.emit({ type: 'needed', path: file.entry.rel, bytes: file.size - held, held });
    if (!this.#dryRun) this.#readAhead.want(file);
  }

  #maybeDone(): void {
    if (!this.#list.complete || this.#doneSent || this.finished) return;
    this.#doneSent = true;
    this.control.send({
      type: MsgType.Done,
      filesSent: this.stats.filesSent,
      filesSkipped: this.stats.filesSkipped,
      filesFailed: this.stats.filesFailed,
      bytes: BigInt(this.stats.bytesDone),
    });
    this.#readAhead.allSent();
  }
}
