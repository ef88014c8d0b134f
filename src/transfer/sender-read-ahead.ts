/**
 * The sender's read-ahead: keeps a bounded number of pieces read from the Source and hashed ahead of the
 * sockets (READ_AHEAD_PIECES, READ_AHEAD_BYTES), pieces to re-send first, then the files the receiver asked
 * for, oldest first, so a big file's pieces spread over every connection. Once every piece of a file is
 * hashed (or it failed), its FILE_END goes out on the control connection.
 */
import {
  dataFrameViews,
  FcpError,
  firstDataView,
  MAX_DATA_BYTES,
  MsgType,
  PIECE_SIZE,
  toFcpError,
} from '../protocol/index.js';
import { sharedPool } from './buffer-pool.js';
import { pieceLength } from './checksum.js';
import { Signal } from './engine.js';
import type { ReadPiece, SendContext, SendFile } from './sender-file.js';
import type { SourceFeatures } from './store/source.js';

type ReadWholeSync = NonNullable<SourceFeatures['readWholeSync']>;

/**
 * Pieces read ahead of the sockets, by count and by bytes. Two readv runs of bytes are enough to keep the
 * sockets fed from the page cache; 24 MiB ahead meant a piece was encrypted long after it was read and
 * hashed, out of the CPU caches, and cost 20 MiB of RSS (see the commit that set 8).
 */
const READ_AHEAD_PIECES = 64;
const READ_AHEAD_BYTES = 8 * PIECE_SIZE;
/** Consecutive pieces of one file read with one readv: fewer thread-pool round trips, same bytes. */
const READ_RUN_PIECES = 4;

export class ReadAhead {
  readonly #ctx: SendContext;
  readonly #isUnresolved: (file: SendFile) => boolean;
  /** The source's synchronous whole-file read, when it has one: the small-file fast path. */
  readonly #readWholeSync: SourceFeatures['readWholeSync'];
  /** Files with pieces still to read, oldest first: a big file's pieces spread over every connection. */
  readonly #queue: SendFile[] = [];
  /** Pieces to send again because the connection that carried them died: they go first. */
  readonly #resend: Array<{ file: SendFile; seq: number }> = [];
  readonly #ready: ReadPiece[] = [];
  readonly #pool = sharedPool;
  readonly #pieceReady = new Signal();
  #readsInFlight = 0;
  #bytesAhead = 0;
  /** DONE went out: nothing more will be read, and a pump with nothing ready ends. */
  #allSent = false;

  constructor(ctx: SendContext, isUnresolved: (file: SendFile) => boolean) {
    this.#ctx = ctx;
    this.#isUnresolved = isUnresolved;
    this.#readWholeSync = ctx.source.features.readWholeSync;
  }

  /** The receiver asked for the file's data (NEED or RESUME): its pieces join the queue. */
  want(file: SendFile): void {
    // Only now: on a re-run most entries are skipped, and two typed arrays per entry were a third of
    // what announcing one allocated.
    file.hashed = new Uint8Array(file.pieces);
    file.hashes = new BigUint64Array(file.pieces);
    if (file.pieces === 0) this.#sendFileEnd(file);
    else this.#queue.push(file);
  }

  /** Pieces a lost connection carried unacknowledged: read and sent again first, if still unresolved. */
  sendAgain(pieces: Iterable<{ file: SendFile; seq: number }>): void {
    for (const u of pieces) {
      if (this.#isUnresolved(u.file)) this.#resend.push({ file: u.file, seq: u.seq });
    }
    this.fill();
    this.#pieceReady.wake();
  }

  /** DONE went out: pumps waiting for a piece end. */
  allSent(): void {
    this.#allSent = true;
    this.#pieceReady.wake();
  }

  /** Wakes every pump waiting for a piece (the session ended). */
  wake(): void {
    this.#pieceReady.wake();
  }

  /**
   * Starts reads while the read-ahead has room; each finished read wakes the pumps. A one-piece file is read
   * here and now (readWholeSync): at most READ_AHEAD_PIECES of them per call, so the loop stays short.
   */
  fill(): void {
    let readNow = false;
    while (
      !this.#ctx.finished() &&
      this.#readsInFlight + this.#ready.length < READ_AHEAD_PIECES &&
      this.#bytesAhead < READ_AHEAD_BYTES
    ) {
      const next = this.#nextPieceToRead();
      if (next === undefined) break;
      const { file, seq, resend } = next;
      if (file.pieces === 1 && this.#readWholeSync !== undefined) {
        this.#readSmallNow(file, this.#readWholeSync, resend);
        readNow = true;
        continue;
      }
      this.#startRead(file, seq, resend);
    }
    if (readNow) this.#pieceReady.wake();
  }

  /**
   * A one-piece file, read, hashed and queued for the pumps without a promise, a closure or a thread-pool
   * hop: on a tree of small files those cost more than the open, read, fstat and close themselves. Up to
   * MAX_DATA_BYTES it is read straight into its DATA frame, so the pump sends that buffer as it is
   * (sendDataFrames) instead of copying the file beside a header: one allocation and one copy less.
   */
  #readSmallNow(file: SendFile, readWhole: ReadWholeSync, resend: boolean): void {
    const size = file.size;
    this.#bytesAhead += size;
    const framed = size > 0 && size <= MAX_DATA_BYTES;
    const data = framed ? this.#pool.takeFramed(size) : this.#pool.take(size);
    let piece: ReadPiece | undefined;
    try {
      const body = framed ? firstDataView(data, size) : data;
      readWhole(file.entry, body);
      this.#recordHash(file, 0, this.#ctx.hasher.pieceHash(body));
      // Only once nothing can throw: a buffer must go back to the pool exactly once.
      piece = this.#toSend({ file, seq: 0, data, framed, bytes: size }, resend);
    } catch (err) {
      this.#pool.give(data);
      file.failure ??= toFcpError(err, file.entry.rel);
    }
    this.#queueOne(file, 0, piece);
    this.#afterRead(file);
  }

  /** Reads `seq` and, while they fit, the following pieces of the same file, in the background. */
  #startRead(file: SendFile, seq: number, resend: boolean): void {
    // Take the following pieces of the same file along (one readv, one thread-pool trip) while they fit.
    let count = 1;
    let len = pieceLength(file.size, seq);
    while (
      !resend &&
      count < READ_RUN_PIECES &&
      this.#queue[0] === file &&
      file.nextSeq === seq + count &&
      this.#bytesAhead + len + pieceLength(file.size, seq + count) <= READ_AHEAD_BYTES
    ) {
      len += pieceLength(file.size, file.nextSeq++);
      count++;
      if (file.nextSeq >= file.pieces) this.#queue.shift();
    }
    this.#readsInFlight += count;
    this.#bytesAhead += len;
    file.readsInFlight++;
    this.#readPieces(file, seq, count, resend).then(
      (pieces) => {
        this.#readsInFlight -= count;
        file.readsInFlight--;
        this.#queueRead(file, seq, pieces);
        this.#afterRead(file);
        this.#pieceReady.wake();
        this.fill();
      },
      (err) => this.#ctx.fail(err),
    );
  }

  /** The pieces read from `first` join the ready ones; those with nothing to send leave the byte count. */
  #queueRead(file: SendFile, first: number, pieces: Array<ReadPiece | undefined>): void {
    for (let i = 0; i < pieces.length; i++) this.#queueOne(file, first + i, pieces[i]);
  }

  /** Queues piece `seq` for the pumps; one not to send (undefined), or read once the session ended, is let go. */
  #queueOne(file: SendFile, seq: number, piece: ReadPiece | undefined): void {
    if (piece === undefined || this.#ctx.finished()) {
      this.#bytesAhead -= pieceLength(file.size, seq);
      if (piece !== undefined) this.#pool.give(piece.data);
    } else {
      this.#ready.push(piece);
    }
  }

  #nextPieceToRead(): { file: SendFile; seq: number; resend: boolean } | undefined {
    for (;;) {
      const again = this.#resend.shift();
      if (again === undefined) break;
      if (again.file.failure === undefined && this.#isUnresolved(again.file)) {
        return { ...again, resend: true };
      }
    }
    for (;;) {
      const file = this.#queue[0];
      if (file === undefined) return undefined;
      if (file.failure !== undefined || file.nextSeq >= file.pieces) {
        this.#queue.shift();
        continue;
      }
      const seq = file.nextSeq++;
      if (file.nextSeq >= file.pieces) this.#queue.shift();
      return { file, seq, resend: false };
    }
  }

  /**
   * Reads and hashes `count` consecutive pieces from `first`. An entry is undefined when there is nothing to
   * send: the file failed (recorded on it), or the receiver already holds the piece and only its hash was
   * needed.
   */
  async #readPieces(
    file: SendFile,
    first: number,
    count: number,
    resend: boolean,
  ): Promise<Array<ReadPiece | undefined>> {
    const none = (): undefined[] => new Array<undefined>(count).fill(undefined);
    if (file.failure !== undefined) return none();
    const pieces = this.#takeFramed(file, first, count);
    try {
      const views = pieces.map((p) => dataFrameViews(p.data, p.bytes));
      file.handle ??= this.#ctx.source.open(file.entry);
      const source = await file.handle;
      await source.read(views.flat(), first * PIECE_SIZE);
      return this.#hashed(file, first, pieces, views, resend);
    } catch (err) {
      for (const p of pieces) this.#pool.give(p.data);
      file.failure ??= toFcpError(err, file.entry.rel);
      return none();
    }
  }

  /**
   * Buffers for `count` pieces from `first`, each with room for its DATA frames' headers between the data
   * (protocol/data-frames.ts), so that it goes to the socket as one buffer, which TLS encrypts without first
   * copying it.
   */
  #takeFramed(file: SendFile, first: number, count: number): ReadPiece[] {
    const pieces: ReadPiece[] = [];
    for (let i = 0; i < count; i++) {
      const bytes = pieceLength(file.size, first + i);
      pieces.push({ file, seq: first + i, data: this.#pool.takeFramed(bytes), framed: true, bytes });
    }
    return pieces;
  }

  /**
   * Records the hashes of the pieces just read from `first` (`views[i]`: piece i's file bytes) and returns
   * what to send of them: a piece the receiver already holds goes back to the pool (undefined). Throws
   * FCP_ERR_FILE_CHANGED, touching no buffer, when a piece read again for a re-send hashes differently.
   */
  #hashed(
    file: SendFile,
    first: number,
    pieces: ReadPiece[],
    views: Buffer[][],
    resend: boolean,
  ): Array<ReadPiece | undefined> {
    for (let i = 0; i < pieces.length; i++) {
      this.#recordHash(file, first + i, this.#ctx.hasher.pieceHashViews(views[i]!));
    }
    // Only once nothing can throw: a buffer must go back to the pool exactly once.
    return pieces.map((piece) => this.#toSend(piece, resend));
  }

  /** `piece`, unless the receiver already holds it (and this is no re-send): then its buffer goes back. */
  #toSend(piece: ReadPiece, resend: boolean): ReadPiece | undefined {
    if (resend || piece.file.have?.[piece.seq] !== 1) return piece;
    this.#pool.give(piece.data);
    return undefined;
  }

  /**
   * Records the hash of piece `seq`, read for the first time; throws FCP_ERR_FILE_CHANGED when the piece,
   * read again for a re-send, hashes differently (the file changed under us after FILE_END went out).
   */
  #recordHash(file: SendFile, seq: number, hash: bigint): void {
    if (file.hashed[seq] === 0) {
      file.hashed[seq] = 1;
      file.hashes[seq] = hash;
      file.hashedCount++;
    } else if (file.hashes[seq] !== hash) {
      throw new FcpError('FCP_ERR_FILE_CHANGED', undefined, { path: file.entry.rel });
    }
  }

  /** Once every piece is hashed (or the file failed and no read is left), FILE_END goes out. */
  #afterRead(file: SendFile): void {
    if (file.readsInFlight > 0) return;
    if (file.endSent) {
      // A re-send found the file changed after FILE_END said it was intact: take that back.
      if (file.failure !== undefined && !file.failureSent && !this.#ctx.finished()) {
        file.failureSent = true;
        this.#ctx.control.send({
          type: MsgType.FileEnd,
          id: file.id,
          code: file.failure.wireCode,
          checksum: 0n,
        });
      }
      if (this.#isIdle(file)) this.closeFile(file);
      return;
    }
    if (file.failure === undefined && file.hashedCount < file.pieces) return;
    const handle = file.handle;
    if (file.failure !== undefined || handle === undefined) {
      this.#sendFileEnd(file);
      return;
    }
    // Re-check after the last read: a file modified while we read it must not be delivered as good.
    handle
      .then((source) => source.checkUnchanged())
      .catch((err) => {
        file.failure ??= toFcpError(err, file.entry.rel);
      })
      .finally(() => this.#sendFileEnd(file));
  }

  #isIdle(file: SendFile): boolean {
    // Nothing to re-send is the rule: no closure per file for it.
    if (file.readsInFlight !== 0) return false;
    return this.#resend.length === 0 || !this.#resend.some((r) => r.file === file);
  }

  #sendFileEnd(file: SendFile): void {
    if (file.endSent || this.#ctx.finished()) return;
    file.endSent = true;
    file.failureSent = file.failure !== undefined;
    if (this.#isIdle(file)) this.closeFile(file);
    const code = file.failure === undefined ? 0 : file.failure.wireCode;
    const checksum = file.failure === undefined ? this.#ctx.hasher.fileHash(file.hashes) : 0n;
    // Small files end one per read: corked, a burst of FILE_ENDs is one write instead of a syscall and a TLS
    // record each.
    this.#ctx.control.sendCorked({ type: MsgType.FileEnd, id: file.id, code, checksum });
  }

  /** Closes what the file holds open, if anything (it is settled, or the session ended). */
  closeFile(file: SendFile): void {
    const handle = file.handle;
    if (handle === undefined) return;
    file.handle = undefined;
    // A read-only handle: closing loses nothing, and a failed open was reported as the file's failure.
    handle.then((source) => source.close()).catch(() => {});
  }

  /** The next piece read for sending; undefined once there will be none (DONE went out, or the end). */
  async next(): Promise<ReadPiece | undefined> {
    for (;;) {
      if (this.#ctx.finished()) return undefined;
      const piece = this.take();
      if (piece !== undefined) return piece;
      if (this.#allSent) return undefined;
      this.fill();
      await this.#pieceReady.wait();
    }
  }

  /** A piece already read, if there is one, without waiting. */
  take(): ReadPiece | undefined {
    const piece = this.#ready.shift();
    if (piece === undefined) return undefined;
    this.#bytesAhead -= piece.bytes;
    this.fill();
    return piece;
  }

  /** A piece taken for a connection that died before sending it: first in line for another one. */
  putBack(piece: ReadPiece): void {
    this.#ready.unshift(piece);
    this.#bytesAhead += piece.bytes;
    this.#pieceReady.wake();
  }
}
