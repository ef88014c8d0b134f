/**
 * The receiving side of a transfer (the daemon on push, the client on pull): the engine that wires its parts.
 *
 *   receive-decide.ts        what to fetch: each announced entry answered (need, resume, skip or fail)
 *   receive-assemble.ts      DATA gathered into whole pieces, hashed, stored, acknowledged
 *   receive-files.ts         the files in progress: commit after verify, give up, keep a partial
 *   receive-answers.ts       FILE_READY / FILE_DONE / PIECE_ACK batching, the control backlog pause
 *   receive-reservations.ts  two entries never write one path at once
 *   store/sink.ts            where the bytes go (store/posix-sink.ts: a directory tree)
 *
 * A file is committed only when every piece is written and the sender's FILE_END checksum equals the hash
 * of what arrived; until then the previous version is untouched. Directory modes and times are applied
 * last, deepest first. When the session dies, partial files stay with their piece index so that the same
 * command run again resumes them (spec/PROTOCOL.md §6–§7).
 */
import { FcpError, FileKind, type Message, MsgType, toFcpError } from '../protocol/index.js';
import type { FramedConn } from '../transport/framed-conn.js';
import { peerDetaches } from '../transport/hello.js';
import type { ConfinedRoot } from './store/confined-root.js';
import { type DirMeta, DirMetaLog } from './dir-meta-log.js';
import { type EngineOptions, TransferEngine, unexpected } from './engine.js';
import { Answers } from './receive-answers.js';
import { Assembler } from './receive-assemble.js';
import { OpenEntries } from './receive-bounds.js';
import { Decider } from './receive-decide.js';
import { FilesInProgress, type ReceiveContext } from './receive-files.js';
import { PathReservations } from './receive-reservations.js';
import { PosixSink } from './store/posix-sink.js';
import { SendLimit } from './send-limit.js';
import { SingleFileList } from './single-file-list.js';
import { DryRunSink } from './store/dry-run-sink.js';
import type { Sink } from './store/sink.js';

/** Directory metadata calls made before letting the event loop turn (they are synchronous). */
const DIR_META_SLICE = 1024;

export interface ReceiverOptions extends EngineOptions {
  /** The destination directory; every entry path is confined to it. Undefined: a dry run's missing one. */
  root: ConfinedRoot | undefined;
  /**
   * The existing directory the destination was made in by this run (--fsync syncs it too), or would be
   * made in by a dry run (whose free space it then answers): Destination.madeIn.
   */
  madeIn?: string | undefined;
  /** Decide every entry, write nothing, and settle needed files without data (spec/PROTOCOL.md §5.6). */
  dryRun?: boolean;
  /** Set when the single top-level file of the list is to be written under this name instead of its own. */
  singleName: string | undefined;
  /** The session's SINGLE_FILE flag: the list must be one top-level file or link (single-file-list.ts). */
  singleFile?: boolean;
  /** Compare existing files by content hash (the sender announces hashes). */
  checksum: boolean;
  /** A file or link this returns false for is declined without counting (pull's --regex). */
  wantsFile?: (path: string) => boolean;
  /** --limit N: at most N files get their data sent, the first that need it (send-limit.ts). */
  limit?: number | undefined;
  /** Told about every partial file kept for resume when the session fails (the daemon sweeps stale ones). */
  onPartialKept?: (tempAbs: string, sidecarAbs: string) => void;
  /** --fsync: every file on disk before its rename, every changed directory before DONE (PROTOCOL.md §6.3). */
  fsync?: boolean;
}

export class Receiver extends TransferEngine {
  readonly #sink: Sink;
  /** Entries taken and not yet settled: the protocol's window, enforced (receive-bounds.ts). */
  readonly #open = new OpenEntries();
  readonly #dirs = new DirMetaLog();
  readonly #answers: Answers;
  readonly #files: FilesInProgress;
  readonly #assembler: Assembler;
  readonly #decider: Decider;
  /** Ids must increase: one number of state instead of a set of every id ever seen. */
  #lastId = 0;
  #senderDone = false;
  /** Set in a SINGLE_FILE session: refuses every entry but the one file. */
  readonly #single: SingleFileList | undefined;
  /** Set by a --discard cancel: resolves once the partial files are gone (see cleanedUp()). */
  #discarded: Promise<void> | undefined;

  constructor(opts: ReceiverOptions) {
    super(opts);
    this.#single =
      opts.singleFile === true || opts.singleName !== undefined ? new SingleFileList() : undefined;
    this.#sink = this.#sinkFor(opts);
    this.#answers = new Answers(this.control, this.#open, () => this.finished);
    const ctx = this.#context();
    this.#files = new FilesInProgress(ctx);
    this.#assembler = new Assembler(ctx, this.#files);
    this.#decider = new Decider(ctx, this.#files, this.#dirs, this.control, {
      singleName: opts.singleName,
      checksum: opts.checksum,
      wantsFile: opts.wantsFile,
      limit: opts.limit === undefined ? undefined : new SendLimit(opts.limit),
      dryRun: opts.dryRun === true,
    });
    this.addConnection(opts.control);
  }

  /** The POSIX tree at `root`; a dry run reads it through a sink that writes nothing. */
  #sinkFor(opts: ReceiverOptions): Sink {
    const posix = (root: ConfinedRoot) =>
      new PosixSink(root, {
        sessionOver: () => this.finished,
        onPartialKept: opts.onPartialKept,
        fsync: opts.fsync,
        rootMadeIn: opts.madeIn,
      });
    if (opts.dryRun === true) return new DryRunSink(opts.root && posix(opts.root), opts.madeIn);
    if (opts.root === undefined) throw new FcpError('FCP_ERR_INTERNAL', 'a receiver needs its destination');
    return posix(opts.root);
  }

  /** What the parts share of this engine. */
  #context(): ReceiveContext {
    const over = (): boolean => this.finished;
    return {
      hasher: this.hasher,
      sink: this.#sink,
      answers: this.#answers,
      reservations: new PathReservations(),
      get finished() {
        return over();
      },
      fail: (err) => this.fail(err),
      emit: (event) => this.emit(event),
    };
  }

  protected connectionAdded(conn: FramedConn): void {
    if (this.rateLimit !== undefined) conn.limitReading(this.rateLimit);
    this.#assembler.connectionAdded(conn);
  }

  override cleanedUp(): Promise<void> {
    return this.#discarded ?? Promise.resolve();
  }

  protected connectionLost(conn: FramedConn): void {
    this.#assembler.connectionLost(conn);
  }

  /**
   * DETACH (spec/PROTOCOL.md §3.2): the sender puts no new piece on `conn` and closes it once every piece it
   * sent there is acknowledged. A sender that did not offer Detach would take it for an unknown message.
   */
  protected override retireConnection(conn: FramedConn): boolean {
    if (!peerDetaches(conn)) return false;
    conn.send({ type: MsgType.Detach });
    return true;
  }

  protected cleanup(): void {
    // fcp cancel --discard, from either end: nothing is kept for a resume.
    if (this.failure?.code === 'FCP_ERR_SESSION_DISCARDED') this.#discarded = this.#files.discardAll();
    else this.#files.cleanup();
    this.#dirs.clear();
    this.#sink.release();
  }

  protected handle(msg: Message, conn: FramedConn): void {
    switch (msg.type) {
      case MsgType.Data:
        this.#assembler.onData(msg, conn);
        return;
      case MsgType.DirInfo:
        this.#single?.admit('dir', msg.path);
        this.#admit(msg.id, conn);
        this.emit({ type: 'listed', path: msg.path, kind: 'dir' });
        this.#decider.onDirInfo(msg);
        return;
      case MsgType.FileInfo:
        this.#single?.admit('file', msg.path);
        this.#admit(msg.id, conn);
        this.emit({
          type: 'listed',
          path: msg.path,
          kind: msg.kind === FileKind.Symlink ? 'symlink' : 'file',
        });
        this.#decider.onFileInfo(msg);
        return;
      case MsgType.FileEnd:
        this.#files.onFileEnd(msg);
        return;
      case MsgType.FileCount:
        this.emit({ type: 'list-complete' });
        return;
      case MsgType.Done:
        if (this.#files.size > 0 || this.#decider.pending > 0) {
          throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'DONE while files are still in progress');
        }
        this.#senderDone = true;
        this.#finish().catch((err) => this.fail(err));
        return;
      default:
        throw unexpected(msg, 'receiver');
    }
  }

  /** List messages come on the control connection only, with increasing ids. */
  #admit(id: number, conn: FramedConn): void {
    if (conn !== this.control)
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'file list on a data connection');
    if (this.#senderDone) throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'file list after DONE');
    if (id <= this.#lastId)
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `entry id ${id} does not increase`);
    this.#lastId = id;
    this.#open.admit(id);
  }

  /**
   * DATA arrives in place (ConnHandler.dataTarget): the frame's data is copied by the decoder straight into
   * the piece being assembled. Undefined sends the frame the ordinary way (as a Data message), which handles
   * the odd cases: a file given up on, a finished session.
   */
  dataTarget(
    conn: FramedConn,
    id: number,
    seq: number,
    offset: number,
    length: number,
  ): Uint8Array | undefined {
    if (this.finished) return undefined;
    return this.#assembler.dataTarget(conn, id, seq, offset, length);
  }

  dataLanded(conn: FramedConn, id: number, seq: number, offset: number, data: Uint8Array): void {
    if (this.finished) return;
    this.#assembler.dataLanded(conn, id, seq, offset, data);
  }

  async #finish(): Promise<void> {
    // Deepest first, so that a parent's mode cannot refuse what is done inside it.
    let i = 0;
    for (const dir of this.#dirs.newestFirst()) {
      // Synchronous calls, microseconds each where a thread-pool round trip per call cost the session's
      // last tens of milliseconds; a huge tree still lets the event loop (pings, aborts) turn now and then.
      if (i > 0 && i % DIR_META_SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.finished) return;
      this.#applyDirMeta(dir);
      i++;
    }
    this.#dirs.clear();
    // Success is reported only once the renames and directories are on disk (--fsync).
    if (this.#sink.flush !== undefined) await this.#sink.flush();
    if (this.finished) return;
    // DONE is our last word, and the client closes every connection right after it: acks still waiting
    // for their timer would be lost, and a sender that sees a connection close before our DONE would drop
    // those pieces from its count (a pull's daemon logged 4 MiB short of what it delivered).
    this.#assembler.flushAcks();
    this.control.send({
      type: MsgType.Done,
      filesSent: this.stats.filesSent,
      filesSkipped: this.stats.filesSkipped,
      filesFailed: this.stats.filesFailed,
      bytes: BigInt(this.stats.bytesDone),
    });
    this.succeed();
    // A failure lets go in cleanup(); success has no cleanup: every file is committed, nothing in flight.
    this.#sink.release();
  }

  #applyDirMeta(dir: DirMeta): void {
    try {
      this.#sink.setDirMeta(dir.rel, dir.mode, dir.mtimeNs);
    } catch (err) {
      this.emit({ type: 'warning', error: toFcpError(err, dir.rel) });
    }
  }
}
