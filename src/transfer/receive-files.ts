/**
 * The files a receiver has asked for, from NEED or RESUME to their end, and what it asks of the sink for
 * them: a file is committed only when every piece is written and the sender's FILE_END checksum equals the
 * hash of what arrived; a file given up on is discarded (the previous version untouched) and the sender is
 * told; when the session dies, partials worth resuming are kept (spec/PROTOCOL.md §6–§7).
 */
import { codeFromWire, FcpError, type FileEndMsg, type FileInfoMsg, toFcpError } from '../protocol/index.js';
import type { Hasher } from './checksum.js';
import { MAX_DROPPED_IDS, RecentIds } from './receive-bounds.js';
import type { Answers } from './receive-answers.js';
import type { PathReservations } from './receive-reservations.js';
import type { TransferEvent } from './events.js';
import type { Sink, SinkFile } from './store/sink.js';
import { parentOf, type SafePath } from './wire-path.js';

export const PieceState = { Absent: 0, Writing: 1, Written: 2 } as const;

/** What the receiver's parts share of the engine (receiver.ts builds it). */
export interface ReceiveContext {
  readonly hasher: Hasher;
  readonly sink: Sink;
  readonly answers: Answers;
  readonly reservations: PathReservations;
  /** The session is over (succeeded or failed). */
  readonly finished: boolean;
  /** Ends the session with a fatal error. */
  fail(err: unknown): void;
  /** Reports what happened (events.ts); the engine's stats and its listeners take it. */
  emit(event: TransferEvent): void;
}

export interface RecvFile {
  id: number;
  rel: SafePath;
  /** The sink's paths beside `rel`, reserved with it. */
  workNames: readonly SafePath[];
  info: FileInfoMsg;
  size: number;
  pieces: number;
  state: Uint8Array;
  hashes: BigUint64Array;
  piecesWritten: number;
  /** Pieces kept from an interrupted run (verified). */
  resumedPieces: number;
  resumedBytes: number;
  /** Where its bytes go. */
  out: SinkFile;
  end: FileEndMsg | undefined;
  settled: boolean;
}

export class FilesInProgress {
  readonly #ctx: ReceiveContext;
  readonly #files = new Map<number, RecvFile>();
  /** Files given up on: their late DATA frames (overtaken by FILE_END on another socket) are dropped. */
  readonly #dropped = new RecentIds(MAX_DROPPED_IDS);

  constructor(ctx: ReceiveContext) {
    this.#ctx = ctx;
  }

  get size(): number {
    return this.#files.size;
  }

  get(id: number): RecvFile | undefined {
    return this.#files.get(id);
  }

  wasDropped(id: number): boolean {
    return this.#dropped.has(id);
  }

  add(file: RecvFile): void {
    this.#files.set(file.id, file);
  }

  /** The bytes of every file in progress: what the free-space check counts as taken. */
  bytesInProgress(): number {
    let n = 0;
    for (const f of this.#files.values()) n += f.size;
    return n;
  }

  onFileEnd(msg: FileEndMsg): void {
    const file = this.#files.get(msg.id);
    if (file === undefined) {
      // Late: the file was given up on, or this retracts one already committed (the sender found it changed
      // while re-reading a piece, but our copy was already verified against the first read).
      if (this.#dropped.has(msg.id) || msg.code !== 0) return;
      throw new FcpError(
        'FCP_ERR_PROTO_UNEXPECTED',
        `FILE_END for file id ${msg.id}, which was not requested`,
      );
    }
    if (file.end !== undefined && (file.end.code !== 0 || msg.code === 0)) {
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `second FILE_END for id ${msg.id}`);
    }
    file.end = msg;
    if (msg.code !== 0) {
      // The sender could not read it intact (unreadable, changed): say which file, as the sender would.
      if (!file.settled) {
        const error = new FcpError(codeFromWire(msg.code), undefined, { path: file.info.path });
        this.#ctx.emit({ type: 'failed', path: file.info.path, error });
        this.#settle(file, msg.code);
      }
      return;
    }
    this.maybeCommit(file);
  }

  /** Piece `seq` is stored. */
  pieceWritten(file: RecvFile, seq: number): void {
    file.state[seq] = PieceState.Written;
    file.piecesWritten++;
  }

  maybeCommit(file: RecvFile): void {
    if (file.settled || file.end === undefined || file.end.code !== 0 || file.piecesWritten < file.pieces) {
      return;
    }
    // A session that ended meanwhile commits nothing more: a write that failed with a session-ending
    // error (a full disk) leaves its file unsettled, and the caller that stored the piece goes on to here.
    if (this.#ctx.finished) return;
    if (file.pieces <= 1 && file.out.commitNow !== undefined) {
      this.#commitNow(file, file.end.checksum);
      return;
    }
    file.settled = true;
    this.#commit(file, file.end.checksum).catch((err) => {
      file.settled = false;
      this.failed(file, err);
    });
  }

  /** Verify, then the sink's commit (metadata, then the atomic rename on POSIX). */
  async #commit(file: RecvFile, expected: bigint): Promise<void> {
    if (this.#ctx.hasher.fileHash(file.hashes) !== expected) {
      file.settled = false;
      this.failed(file, new FcpError('FCP_ERR_FILE_CHECKSUM', undefined, { path: file.info.path }));
      return;
    }
    await file.out.commit();
    this.#committed(file, file.resumedBytes);
  }

  #commitNow(file: RecvFile, expected: bigint): void {
    if (this.#ctx.hasher.fileHash(file.hashes) !== expected) {
      this.failed(file, new FcpError('FCP_ERR_FILE_CHECKSUM', undefined, { path: file.info.path }));
      return;
    }
    try {
      file.out.commitNow!();
    } catch (err) {
      this.failed(file, err);
      return;
    }
    file.settled = true;
    this.#committed(file, 0);
  }

  /** A file now under its final name: forget it, free its slot, report it, and answer DONE. */
  #committed(file: RecvFile, resumedBytes: number): void {
    this.#files.delete(file.id);
    this.#release(file);
    this.#ctx.emit({ type: 'finished', path: file.info.path, kind: 'file', size: file.size, resumedBytes });
    this.#ctx.answers.done(file.id, 0);
  }

  /** A write or commit failed: the file is given up on, or the session when no later file could fare better. */
  failed(file: RecvFile, err: unknown): void {
    // After the session ended, a write still under way may fail (its descriptor was closed): the partial was
    // already kept or discarded by cleanup(), and must not be discarded now.
    if (file.settled || this.#ctx.finished) return;
    const e = toFcpError(err, file.info.path);
    const ended = this.#ctx.sink.sessionEndingFailure(e, file.info.path, parentOf(file.rel), file.size);
    if (ended !== undefined) {
      this.#ctx.fail(ended);
      return;
    }
    this.#ctx.emit({ type: 'failed', path: file.info.path, error: e });
    this.#settle(file, e.wireCode);
  }

  /** Gives up on a file: what the sink stored is discarded, previous version untouched, the sender told. */
  #settle(file: RecvFile, code: number): void {
    file.settled = true;
    this.#files.delete(file.id);
    this.#dropped.add(file.id);
    // In the background: the file's failure is what matters, and the removal cannot fail (see discard()).
    void file.out.discard();
    this.#release(file);
    this.#ctx.answers.done(file.id, code);
  }

  #release(file: RecvFile): void {
    this.#ctx.reservations.release(file.rel);
    this.#ctx.reservations.releaseAll(file.workNames);
  }

  /**
   * The session died: a partial worth resuming (some piece of a multi-piece file written) is kept by the
   * sink; anything else is discarded.
   */
  cleanup(): void {
    for (const file of this.#unsettled()) {
      // In the background, as in #settle.
      if (file.piecesWritten === 0 || !file.out.keepPartial()) void file.out.discard();
    }
    this.#files.clear();
  }

  /** The session was cancelled with --discard: every partial goes, verified pieces too; resolves when gone. */
  discardAll(): Promise<void> {
    const removed = [...this.#unsettled()].map((file) => file.out.discard());
    this.#files.clear();
    return Promise.all(removed).then(() => {});
  }

  /** A file being committed finishes on its own (its rename and index removal are under way). */
  *#unsettled(): Iterable<RecvFile> {
    for (const file of this.#files.values()) if (!file.settled) yield file;
  }
}
