/**
 * The sending side of a transfer (the client on push, the daemon on pull).
 *
 * Three loops run at once: the list loop walks the sources and streams DIR_INFO/FILE_INFO on the control
 * connection; the read-ahead keeps a bounded number of pieces read and hashed; one pump per connection takes
 * ready pieces and writes them as DATA frames, waiting for 'drain' when the socket is full. The receiver's
 * FILE_READY answers feed the piece queue, so there is no round trip per file (spec/PROTOCOL.md §5).
 */
import { constants as fsConstants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { FramedConn } from '../net/framed-conn.js';
import {
  codeFromWire,
  FcpError,
  FileKind,
  type FileReadyMsg,
  MAX_DATA_BYTES,
  type Message,
  MsgType,
  PIECE_SIZE,
  ReadyAction,
  toFcpError,
} from '../protocol/index.js';
import { pieceCount, pieceLength, readFully } from './checksum.js';
import { type EngineOptions, Signal, TransferEngine, unexpected } from './engine.js';
import type { Selector } from './select.js';
import type { SourceRoot } from './source-spec.js';
import { type WalkEntry, walk } from './walk.js';

/** Entries announced but not yet answered; bounds memory on huge trees (the list streams). */
const MAX_UNRESOLVED = 8192;
/** Pieces read ahead of the sockets, by count and by bytes. */
const READ_AHEAD_PIECES = 64;
const READ_AHEAD_BYTES = 32 * PIECE_SIZE;
/** Bytes sent on one connection but not yet acknowledged as written by the receiver. */
const WINDOW_BYTES = 64 * PIECE_SIZE;

export interface SenderOptions extends EngineOptions {
  sources: readonly SourceRoot[];
  selector: Selector;
  /** Announce content hashes so the receiver compares by checksum (--checksum). */
  checksum: boolean;
}

interface SendFile {
  id: number;
  entry: WalkEntry;
  size: number;
  pieces: number;
  nextSeq: number;
  piecesRead: number;
  readsInFlight: number;
  hashes: BigUint64Array;
  handle: Promise<FileHandle> | undefined;
  /** Set once the file failed on our side; FILE_END carries it. */
  failure: FcpError | undefined;
  endSent: boolean;
}

interface ReadPiece {
  file: SendFile;
  seq: number;
  data: Buffer;
}

interface ConnState {
  unacked: Map<string, number>;
  unackedBytes: number;
  acked: Signal;
}

export class Sender extends TransferEngine {
  readonly #sources: readonly SourceRoot[];
  readonly #selector: Selector;
  readonly #checksum: boolean;
  /** Every announced entry not yet resolved by the receiver. */
  readonly #unresolved = new Map<number, SendFile>();
  /** Files with pieces still to read, oldest first: a big file's pieces spread over every connection. */
  readonly #queue: SendFile[] = [];
  readonly #ready: ReadPiece[] = [];
  readonly #connState = new Map<FramedConn, ConnState>();
  readonly #pieceReady = new Signal();
  readonly #resolved = new Signal();
  #readsInFlight = 0;
  #bytesAhead = 0;
  #nextId = 1;
  #listDone = false;
  #doneSent = false;

  constructor(opts: SenderOptions) {
    super(opts);
    this.#sources = opts.sources;
    this.#selector = opts.selector;
    this.#checksum = opts.checksum;
    this.addConnection(opts.control);
  }

  /** Starts the list loop; `done` settles when the receiver has confirmed everything. */
  start(): void {
    this.#listLoop().catch((err) => this.fail(err));
  }

  protected connectionAdded(conn: FramedConn): void {
    this.#connState.set(conn, { unacked: new Map(), unackedBytes: 0, acked: new Signal() });
    this.#pump(conn).catch((err) => {
      if (!conn.closed) this.fail(err);
    });
  }

  protected connectionLost(conn: FramedConn): void {
    this.#connState.get(conn)?.acked.wake();
    this.#connState.delete(conn);
  }

  protected cleanup(): void {
    this.#pieceReady.wake();
    this.#resolved.wake();
    for (const file of this.#unresolved.values()) this.#closeFile(file);
  }

  protected handle(msg: Message, conn: FramedConn): void {
    switch (msg.type) {
      case MsgType.FileReady:
        this.#onFileReady(msg);
        return;
      case MsgType.PieceAck:
        this.#onPieceAck(msg.pieces, conn);
        return;
      case MsgType.FileDone:
        for (const e of msg.entries) {
          const file = this.#take(e.id);
          if (e.code === 0) {
            if (file.entry.kind === 'dir') this.stats.dirs++;
            else this.stats.filesSent++;
          } else this.#failed(file, e.code);
        }
        this.#maybeDone();
        return;
      case MsgType.Done:
        if (!this.#doneSent) throw unexpected(msg, 'sender before its DONE');
        this.succeed();
        return;
      default:
        throw unexpected(msg, 'sender');
    }
  }

  async #listLoop(): Promise<void> {
    let entries = 0;
    let bytes = 0n;
    for (const source of this.#sources) {
      for await (const entry of walk(source.abs, source.topRel, this.#selector, this.warn)) {
        if (this.finished) return;
        if (entry.kind === 'other') {
          this.warn(new FcpError('FCP_ERR_PATH_UNSUPPORTED', undefined, { path: entry.rel }));
          continue;
        }
        while (this.#unresolved.size >= MAX_UNRESOLVED && !this.finished) await this.#resolved.wait();
        if (this.finished) return;
        await this.#announce(entry);
        entries++;
        if (entry.kind === 'file') bytes += entry.size;
      }
    }
    if (this.finished) return;
    this.control.send({ type: MsgType.FileCount, entries, bytes });
    this.#listDone = true;
    this.stats.listComplete = true;
    this.#maybeDone();
  }

  async #announce(entry: WalkEntry): Promise<void> {
    const id = this.#nextId++;
    const size = Number(entry.size);
    const pieces = entry.kind === 'file' ? pieceCount(size) : 0;
    const file: SendFile = {
      id,
      entry,
      size,
      pieces,
      nextSeq: 0,
      piecesRead: 0,
      readsInFlight: 0,
      hashes: new BigUint64Array(pieces),
      handle: undefined,
      failure: undefined,
      endSent: false,
    };
    let checksum: bigint | undefined;
    if (this.#checksum && entry.kind === 'file') {
      try {
        checksum = await this.#hashWhole(entry.abs, size);
      } catch (err) {
        this.warn(toFcpError(err, entry.rel));
        this.stats.filesFailed++;
        return;
      }
    }
    this.#unresolved.set(id, file);
    this.stats.filesTotal++;
    const ok =
      entry.kind === 'dir'
        ? this.control.send({
            type: MsgType.DirInfo,
            id,
            mode: entry.mode,
            mtimeNs: entry.mtimeNs,
            path: entry.rel,
          })
        : this.control.send({
            type: MsgType.FileInfo,
            id,
            kind: entry.kind === 'symlink' ? FileKind.Symlink : FileKind.File,
            mode: entry.mode,
            size: entry.kind === 'file' ? entry.size : 0n,
            mtimeNs: entry.mtimeNs,
            checksum,
            path: entry.rel,
            linkTarget: entry.linkTarget ?? '',
          });
    if (!ok) await this.control.drained();
  }

  async #hashWhole(abs: string, size: number): Promise<bigint> {
    const fh = await open(abs, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      return await this.hasher.hashOpenFile(fh, size);
    } finally {
      await fh.close();
    }
  }

  #onFileReady(msg: FileReadyMsg): void {
    for (const e of msg.entries) {
      const file = this.#unresolved.get(e.id);
      if (file === undefined)
        throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `FILE_READY for unknown id ${e.id}`);
      if (e.action === ReadyAction.Need) {
        if (file.entry.kind !== 'file') continue; // a link or directory is settled by FILE_DONE alone
        this.stats.bytesTotal += file.size;
        if (file.pieces === 0) this.#sendFileEnd(file);
        else this.#queue.push(file);
        continue;
      }
      this.#take(e.id);
      if (e.action === ReadyAction.Skip) {
        if (file.entry.kind === 'dir') this.stats.dirs++;
        else this.stats.filesSkipped++;
      } else this.#failed(file, e.code);
    }
    this.#fillReadAhead();
    this.#maybeDone();
  }

  #onPieceAck(pieces: readonly { id: number; seq: number }[], conn: FramedConn): void {
    const cs = this.#connState.get(conn);
    if (cs === undefined) return;
    for (const p of pieces) {
      const key = `${p.id}:${p.seq}`;
      const bytes = cs.unacked.get(key);
      if (bytes === undefined)
        throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `PIECE_ACK for a piece not sent here`);
      cs.unacked.delete(key);
      cs.unackedBytes -= bytes;
      this.stats.bytesDone += bytes;
    }
    cs.acked.wake();
  }

  #take(id: number): SendFile {
    const file = this.#unresolved.get(id);
    if (file === undefined)
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `answer for unknown or settled id ${id}`);
    this.#unresolved.delete(id);
    this.#closeFile(file);
    this.#resolved.wake();
    return file;
  }

  #failed(file: SendFile, wireCode: number): void {
    this.stats.filesFailed++;
    this.warn(new FcpError(codeFromWire(wireCode), undefined, { path: file.entry.rel }));
  }

  #maybeDone(): void {
    if (!this.#listDone || this.#unresolved.size > 0 || this.#doneSent || this.finished) return;
    this.#doneSent = true;
    this.control.send({
      type: MsgType.Done,
      filesSent: this.stats.filesSent,
      filesSkipped: this.stats.filesSkipped,
      filesFailed: this.stats.filesFailed,
      bytes: BigInt(this.stats.bytesDone),
    });
    this.#pieceReady.wake();
  }

  /** Starts reads while the read-ahead has room; each finished read wakes the pumps. */
  #fillReadAhead(): void {
    while (
      !this.finished &&
      this.#readsInFlight + this.#ready.length < READ_AHEAD_PIECES &&
      this.#bytesAhead < READ_AHEAD_BYTES
    ) {
      const next = this.#nextPieceToRead();
      if (next === undefined) return;
      const [file, seq] = next;
      const len = pieceLength(file.size, seq);
      this.#readsInFlight++;
      this.#bytesAhead += len;
      file.readsInFlight++;
      this.#readPiece(file, seq, len).then(
        (data) => {
          this.#readsInFlight--;
          file.readsInFlight--;
          if (data === undefined || this.finished) {
            this.#bytesAhead -= len;
          } else {
            this.#ready.push({ file, seq, data });
          }
          this.#afterRead(file);
          this.#pieceReady.wake();
          this.#fillReadAhead();
        },
        (err) => this.fail(err),
      );
    }
  }

  #nextPieceToRead(): [SendFile, number] | undefined {
    for (;;) {
      const file = this.#queue[0];
      if (file === undefined) return undefined;
      if (file.failure !== undefined || file.nextSeq >= file.pieces) {
        this.#queue.shift();
        continue;
      }
      const seq = file.nextSeq++;
      if (file.nextSeq >= file.pieces) this.#queue.shift();
      return [file, seq];
    }
  }

  /** Reads and hashes one piece; undefined when the file failed (the failure is recorded on it). */
  async #readPiece(file: SendFile, seq: number, len: number): Promise<Buffer | undefined> {
    if (file.failure !== undefined) return undefined;
    try {
      file.handle ??= this.#openChecked(file);
      const fh = await file.handle;
      const data = Buffer.allocUnsafe(len);
      await readFully(fh, data, seq * PIECE_SIZE);
      file.hashes[seq] = this.hasher.pieceHash(data);
      file.piecesRead++;
      return data;
    } catch (err) {
      file.failure ??= toFcpError(err, file.entry.rel);
      return undefined;
    }
  }

  /** Opens without following a link, and refuses a file that changed since it was listed. */
  async #openChecked(file: SendFile): Promise<FileHandle> {
    const fh = await open(file.entry.abs, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    const st = await fh.stat({ bigint: true });
    if (st.size !== file.entry.size || st.mtimeNs !== file.entry.mtimeNs) {
      await fh.close();
      throw new FcpError('FCP_ERR_FILE_CHANGED', undefined, { path: file.entry.rel });
    }
    return fh;
  }

  /** Once every piece is read (or the file failed and no read is left), FILE_END goes out. */
  #afterRead(file: SendFile): void {
    if (file.endSent || file.readsInFlight > 0) return;
    if (file.failure === undefined && file.piecesRead < file.pieces) return;
    if (file.failure === undefined && file.handle !== undefined) {
      // Re-check after the last read: a file modified while we read it must not be delivered as good.
      const handle = file.handle;
      file.handle = undefined;
      handle
        .then(async (fh) => {
          const st = await fh.stat({ bigint: true });
          await fh.close();
          if (st.size !== file.entry.size || st.mtimeNs !== file.entry.mtimeNs) {
            file.failure = new FcpError('FCP_ERR_FILE_CHANGED', undefined, { path: file.entry.rel });
          }
          this.#sendFileEnd(file);
        })
        .catch((err) => {
          file.failure ??= toFcpError(err, file.entry.rel);
          this.#sendFileEnd(file);
        });
      return;
    }
    this.#sendFileEnd(file);
  }

  #sendFileEnd(file: SendFile): void {
    if (file.endSent || this.finished) return;
    file.endSent = true;
    this.#closeFile(file);
    const code = file.failure === undefined ? 0 : file.failure.wireCode;
    const checksum = file.failure === undefined ? this.hasher.fileHash(file.hashes) : 0n;
    this.control.send({ type: MsgType.FileEnd, id: file.id, code, checksum });
  }

  #closeFile(file: SendFile): void {
    const handle = file.handle;
    if (handle === undefined) return;
    file.handle = undefined;
    handle.then((fh) => fh.close()).catch(() => {});
  }

  async #nextReadyPiece(): Promise<ReadPiece | undefined> {
    for (;;) {
      if (this.finished) return undefined;
      const piece = this.#ready.shift();
      if (piece !== undefined) {
        this.#bytesAhead -= piece.data.length;
        this.#fillReadAhead();
        return piece;
      }
      if (this.#doneSent) return undefined;
      this.#fillReadAhead();
      await this.#pieceReady.wait();
    }
  }

  async #pump(conn: FramedConn): Promise<void> {
    const cs = this.#connState.get(conn);
    if (cs === undefined) return;
    for (;;) {
      const piece = await this.#nextReadyPiece();
      if (piece === undefined || conn.closed) return;
      while (cs.unackedBytes > 0 && cs.unackedBytes + piece.data.length > WINDOW_BYTES) {
        await cs.acked.wait();
        if (conn.closed || this.finished) return;
      }
      cs.unacked.set(`${piece.file.id}:${piece.seq}`, piece.data.length);
      cs.unackedBytes += piece.data.length;
      await this.#writePiece(conn, piece);
    }
  }

  async #writePiece(conn: FramedConn, piece: ReadPiece): Promise<void> {
    const { data } = piece;
    for (let offset = 0; offset < data.length; offset += MAX_DATA_BYTES) {
      const chunk = data.subarray(offset, Math.min(offset + MAX_DATA_BYTES, data.length));
      if (!conn.sendData(piece.file.id, piece.seq, offset, chunk)) await conn.drained();
    }
  }
}
