/**
 * The sending side of a transfer (the client on push, the daemon on pull).
 *
 * Three loops run at once: the list loop walks the sources and streams DIR_INFO/FILE_INFO on the control
 * connection; the read-ahead keeps a bounded number of pieces read and hashed; one pump per connection takes
 * ready pieces and writes them as DATA frames, waiting for 'drain' when the socket is full. The receiver's
 * FILE_READY answers feed the piece queue, so there is no round trip per file (spec/PROTOCOL.md §5).
 *
 * Every piece stays "unacknowledged" on the connection that carried it until the receiver has written it;
 * if that connection dies, its unacknowledged pieces are read again and re-sent over the others (§7.2).
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from 'node:fs';
import { type FileHandle, lstat, open } from 'node:fs/promises';
import type { FramedConn } from '../transport/framed-conn.js';
import {
  codeFromWire,
  FcpError,
  type FileHaveMsg,
  FileKind,
  type FileReadyMsg,
  MAX_DATA_BYTES,
  MAX_LIST_BYTES_BEFORE_SESSION,
  type Message,
  MsgType,
  LIST_WINDOW,
  PIECE_SIZE,
  ReadyAction,
  toFcpError,
  wireCodeOf,
} from '../protocol/index.js';
import { sharedPool } from './buffer-pool.js';
import { pieceCount, pieceLength } from './checksum.js';
import { type EngineOptions, Signal, TransferEngine, unexpected } from './engine.js';
import type { Selector } from './select.js';
import type { SourceRoot } from './source-spec.js';
import { readvFully } from './vector-io.js';
import { type WalkEntry, walkBatches } from './walk.js';

/** Pieces read ahead of the sockets, by count and by bytes. */
const READ_AHEAD_PIECES = 64;
const READ_AHEAD_BYTES = 24 * PIECE_SIZE;
/** Consecutive pieces of one file read with one readv: fewer thread-pool round trips, same bytes. */
const READ_RUN_PIECES = 4;
/** Bytes sent on one connection but not yet acknowledged as written by the receiver. */
const WINDOW_BYTES = 64 * PIECE_SIZE;
/** A pump queues what is ready under one cork up to this many bytes (see #pump). */
const CORK_BYTES = 256 * 1024;
/** A file that arrives damaged or changes while it is read is sent again, up to this many times in all. */
const MAX_FILE_ATTEMPTS = 3;
/** What a file's piece hashes are until the receiver asks for its data (see #onFileReady). */
const NO_PIECES_HASHED = new Uint8Array(0);
const NO_PIECE_HASHES = new BigUint64Array(0);
const RETRYABLE_FILE_CODES = new Set([
  wireCodeOf('FCP_ERR_FILE_CHECKSUM'),
  wireCodeOf('FCP_ERR_FILE_CHANGED'),
]);

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
}

interface SendFile {
  id: number;
  entry: WalkEntry;
  size: number;
  pieces: number;
  /** Announcements of this path so far (a damaged file is announced again under a new id). */
  attempt: number;
  /** Next piece never scheduled yet. */
  nextSeq: number;
  /** Pieces whose hash is known (read at least once). */
  hashedCount: number;
  /** Per piece, 1 once hashed; allocated when the receiver asks for the data (empty until then). */
  hashed: Uint8Array;
  hashes: BigUint64Array;
  /** Pieces the receiver already holds from an interrupted run (FILE_HAVE): read for the hash, not sent. */
  have: Uint8Array | undefined;
  resumed: boolean;
  readsInFlight: number;
  handle: Promise<FileHandle> | undefined;
  /** Set once the file failed on our side; FILE_END carries it. */
  failure: FcpError | undefined;
  endSent: boolean;
  failureSent: boolean;
}

interface ReadPiece {
  file: SendFile;
  seq: number;
  data: Buffer;
}

interface Unacked {
  file: SendFile;
  seq: number;
  bytes: number;
}

interface ConnState {
  unacked: Map<string, Unacked>;
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
  /** Pieces to send again because the connection that carried them died: they go first. */
  readonly #resend: Array<{ file: SendFile; seq: number }> = [];
  readonly #ready: ReadPiece[] = [];
  readonly #connState = new Map<FramedConn, ConnState>();
  readonly #pool = sharedPool;
  readonly #pieceReady = new Signal();
  readonly #resolved = new Signal();
  #readsInFlight = 0;
  #bytesAhead = 0;
  #nextId = 1;
  #announcing = 0;
  #listDone = false;
  #doneSent = false;
  /** Entries that may wait unanswered before SESSION (LIST_WINDOW after it). */
  readonly #preSessionEntries: number;
  #granted: boolean;
  /** The control connection's messageBytesSent when the list started (bytes before SESSION are bounded). */
  readonly #listBytesBase: number;

  constructor(opts: SenderOptions) {
    super(opts);
    this.#sources = opts.sources;
    this.#selector = opts.selector;
    this.#checksum = opts.checksum;
    this.#granted = opts.preSessionEntries === undefined;
    this.#preSessionEntries = opts.preSessionEntries ?? LIST_WINDOW;
    this.#listBytesBase = opts.control.messageBytesSent;
    this.addConnection(opts.control);
  }

  /** Starts the list loop; `done` settles when the receiver has confirmed everything. */
  start(): void {
    this.#listLoop().catch((err) => this.fail(err));
  }

  /** SESSION arrived (preSessionEntries): the list may run the whole window ahead now. */
  sessionGranted(): void {
    this.#granted = true;
    this.#resolved.wake();
    this.#maybeDone();
  }

  protected connectionAdded(conn: FramedConn): void {
    this.#connState.set(conn, { unacked: new Map(), unackedBytes: 0, acked: new Signal() });
    this.#pump(conn).catch((err) => {
      if (!conn.closed) this.fail(err);
    });
  }

  protected connectionLost(conn: FramedConn): void {
    const cs = this.#connState.get(conn);
    this.#connState.delete(conn);
    if (cs === undefined) return;
    cs.acked.wake();
    for (const u of cs.unacked.values()) {
      if (this.#unresolved.get(u.file.id) === u.file) this.#resend.push({ file: u.file, seq: u.seq });
    }
    this.#fillReadAhead();
    this.#pieceReady.wake();
  }

  protected cleanup(): void {
    this.#pieceReady.wake();
    this.#resolved.wake();
    for (const cs of this.#connState.values()) cs.acked.wake();
    for (const file of this.#unresolved.values()) this.#closeFile(file);
  }

  protected handle(msg: Message, conn: FramedConn): void {
    switch (msg.type) {
      case MsgType.FileReady:
        this.#onFileReady(msg);
        return;
      case MsgType.FileHave:
        this.#onFileHave(msg);
        return;
      case MsgType.PieceAck:
        this.#onPieceAck(msg.pieces, conn);
        return;
      case MsgType.FileDone:
        for (const e of msg.entries) this.#onFileDone(e.id, e.code);
        this.#maybeDone();
        return;
      case MsgType.Done:
        if (!this.#doneSent) throw unexpected(msg, 'sender before its DONE');
        this.#creditUnacked();
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
      for await (const batch of walkBatches(source.abs, source.topRel, this.#selector, this.warn)) {
        const listable = batch.filter((entry) => this.#listable(entry));
        for (const entry of listable) {
          entries++;
          if (entry.kind === 'file') bytes += entry.size;
        }
        await this.#announceAll(listable);
        if (this.finished) return;
      }
    }
    // An empty window before SESSION holds back FILE_COUNT too: the daemon expects no list at all then.
    while (!this.#granted && this.#preSessionEntries === 0 && !this.finished) await this.#resolved.wait();
    if (this.finished) return;
    this.control.send({ type: MsgType.FileCount, entries, bytes });
    this.#listDone = true;
    this.stats.listComplete = true;
    this.#maybeDone();
  }

  /**
   * Announces `entries` in order, waiting only while the unanswered window or the socket is full. Without
   * --checksum a run of them goes under one cork: one write (and with TLS, full records) for many entries,
   * never held across an await (a corked socket would not drain). With it, each file is hashed first, one
   * at a time.
   */
  async #announceAll(entries: readonly WalkEntry[]): Promise<void> {
    let next = 0;
    while (next < entries.length) {
      while (!this.#mayAnnounce() && !this.finished) await this.#resolved.wait();
      if (this.finished) return;
      if (this.#checksum) {
        await this.#announce(entries[next++]!, 1);
        continue;
      }
      const ok = this.control.corked(() => {
        let written = true;
        while (written && next < entries.length && this.#mayAnnounce()) {
          written = this.#announceNow(entries[next++]!, 1, undefined);
        }
        return written;
      });
      if (!ok) await this.control.drained();
    }
  }

  /** Whether one more entry may go out now: the unanswered window, and before SESSION its byte bound. */
  #mayAnnounce(): boolean {
    // A file being announced again holds the slot its first id left (the receiver counts it open from the
    // moment its new FILE_INFO arrives), so a re-announce can never take the window past LIST_WINDOW.
    const open = this.#unresolved.size + this.#announcing;
    if (this.#granted) return open < LIST_WINDOW;
    return (
      open < this.#preSessionEntries &&
      this.control.messageBytesSent - this.#listBytesBase < MAX_LIST_BYTES_BEFORE_SESSION
    );
  }

  /** False (after a warning) for what cannot be sent: FIFOs, sockets, devices. */
  #listable(entry: WalkEntry): boolean {
    if (entry.kind !== 'other') return true;
    this.warn(new FcpError('FCP_ERR_PATH_UNSUPPORTED', undefined, { path: entry.rel }));
    return false;
  }

  /** Announces an entry, with its content hash under --checksum; waits while the socket is full. */
  async #announce(entry: WalkEntry, attempt: number): Promise<void> {
    let checksum: bigint | undefined;
    if (this.#checksum && entry.kind === 'file') {
      try {
        checksum = await this.#hashWhole(entry.abs, Number(entry.size));
      } catch (err) {
        this.warn(toFcpError(err, entry.rel));
        this.stats.filesFailed++;
        return;
      }
    }
    if (this.finished) return;
    if (!this.#announceNow(entry, attempt, checksum)) await this.control.drained();
  }

  /** Sends DIR_INFO or FILE_INFO for a new id; false when the caller should wait for drained(). */
  #announceNow(entry: WalkEntry, attempt: number, checksum: bigint | undefined): boolean {
    const id = this.#nextId++;
    const size = Number(entry.size);
    const pieces = entry.kind === 'file' ? pieceCount(size) : 0;
    const file: SendFile = {
      id,
      entry,
      size,
      pieces,
      attempt,
      nextSeq: 0,
      hashedCount: 0,
      hashed: NO_PIECES_HASHED,
      hashes: NO_PIECE_HASHES,
      have: undefined,
      resumed: false,
      readsInFlight: 0,
      handle: undefined,
      failure: undefined,
      endSent: false,
      failureSent: false,
    };
    this.#unresolved.set(id, file);
    if (attempt === 1) {
      this.stats.filesTotal++;
    }
    return entry.kind === 'dir'
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
  }

  /** Announces a file again under a new id, from a fresh lstat (it may have changed). */
  #reannounce(file: SendFile): void {
    this.#announcing++;
    lstat(file.entry.abs, { bigint: true })
      .then(async (st) => {
        if (!st.isFile()) throw new FcpError('FCP_ERR_FILE_CHANGED', 'no longer a regular file');
        const entry: WalkEntry = {
          ...file.entry,
          size: st.size,
          mtimeNs: st.mtimeNs,
          mode: Number(st.mode) & 0o7777,
        };
        await this.#announce(entry, file.attempt + 1);
      })
      .catch((err) => {
        this.stats.filesFailed++;
        this.warn(toFcpError(err, file.entry.rel));
      })
      .finally(() => {
        this.#announcing--;
        this.#resolved.wake();
        this.#maybeDone();
      });
  }

  async #hashWhole(abs: string, size: number): Promise<bigint> {
    const fh = await open(abs, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      return await this.hasher.hashOpenFile(fh, size);
    } finally {
      await fh.close();
    }
  }

  #onFileHave(msg: FileHaveMsg): void {
    const file = this.#unresolved.get(msg.id);
    if (file === undefined || file.entry.kind !== 'file') {
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `FILE_HAVE for id ${msg.id}, which is not an open file`);
    }
    file.have ??= new Uint8Array(file.pieces);
    for (let i = 0; i < msg.bitmap.length * 8; i++) {
      if ((msg.bitmap[i >> 3]! & (0x80 >> (i & 7))) === 0) continue;
      const seq = msg.firstSeq + i;
      if (seq >= file.pieces)
        throw new FcpError('FCP_ERR_PROTO_MALFORMED', `FILE_HAVE piece ${seq} past the end`);
      file.have[seq] = 1;
    }
  }

  #onFileReady(msg: FileReadyMsg): void {
    for (const e of msg.entries) {
      const file = this.#unresolved.get(e.id);
      if (file === undefined)
        throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `FILE_READY for unknown id ${e.id}`);
      if (e.action === ReadyAction.Need || e.action === ReadyAction.Resume) {
        if (file.entry.kind !== 'file') continue; // a link or directory is settled by FILE_DONE alone
        if (e.action === ReadyAction.Need) file.have = undefined;
        file.resumed = file.have !== undefined;
        // Only now: on a re-run most entries are skipped, and two typed arrays per entry were a third of
        // what announcing one allocated.
        file.hashed = new Uint8Array(file.pieces);
        file.hashes = new BigUint64Array(file.pieces);
        this.stats.bytesTotal += file.size - this.#heldBytes(file);
        this.needed(file.size - this.#heldBytes(file));
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

  #heldBytes(file: SendFile): number {
    if (file.have === undefined) return 0;
    let n = 0;
    for (let seq = 0; seq < file.pieces; seq++) if (file.have[seq]) n += pieceLength(file.size, seq);
    return n;
  }

  #onFileDone(id: number, code: number): void {
    const file = this.#take(id);
    if (code === 0) {
      if (file.entry.kind === 'dir') this.stats.dirs++;
      else this.stats.filesSent++;
      if (file.resumed) this.stats.bytesResumed += this.#heldBytes(file);
      return;
    }
    if (RETRYABLE_FILE_CODES.has(code) && file.attempt < MAX_FILE_ATTEMPTS && !this.finished) {
      const why = new FcpError(codeFromWire(code), undefined, { path: file.entry.rel });
      this.warn(new FcpError(why.code, `${why.message}; sending it again`, { path: file.entry.rel }));
      this.#reannounce(file);
      return;
    }
    this.#failed(file, code);
  }

  /**
   * The receiver answers DONE only once every file is settled, so pieces still unacknowledged were written:
   * their PIECE_ACKs wait a few ms to share a frame, on connections DONE may overtake. Counted here, the
   * summary's bytes are exact.
   */
  #creditUnacked(): void {
    for (const cs of this.#connState.values()) {
      this.stats.bytesDone += cs.unackedBytes;
      cs.unacked.clear();
      cs.unackedBytes = 0;
    }
  }

  #onPieceAck(pieces: readonly { id: number; seq: number }[], conn: FramedConn): void {
    const cs = this.#connState.get(conn);
    if (cs === undefined) return;
    for (const p of pieces) {
      const key = `${p.id}:${p.seq}`;
      const u = cs.unacked.get(key);
      if (u === undefined)
        throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'PIECE_ACK for a piece not sent here');
      cs.unacked.delete(key);
      cs.unackedBytes -= u.bytes;
      this.stats.bytesDone += u.bytes;
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
    if (
      !this.#granted ||
      !this.#listDone ||
      this.#unresolved.size > 0 ||
      this.#announcing > 0 ||
      this.#doneSent ||
      this.finished
    ) {
      return;
    }
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
      const { file, seq, resend } = next;
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
          for (let i = 0; i < count; i++) {
            const data = pieces[i];
            if (data === undefined || this.finished) {
              this.#bytesAhead -= pieceLength(file.size, seq + i);
              if (data !== undefined) this.#pool.give(data);
            } else {
              this.#ready.push({ file, seq: seq + i, data });
            }
          }
          this.#afterRead(file);
          this.#pieceReady.wake();
          this.#fillReadAhead();
        },
        (err) => this.fail(err),
      );
    }
  }

  #nextPieceToRead(): { file: SendFile; seq: number; resend: boolean } | undefined {
    for (;;) {
      const again = this.#resend.shift();
      if (again === undefined) break;
      if (again.file.failure === undefined && this.#unresolved.get(again.file.id) === again.file) {
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
  ): Promise<Array<Buffer | undefined>> {
    const none = (): undefined[] => new Array<undefined>(count).fill(undefined);
    if (file.failure !== undefined) return none();
    const buffers: Buffer[] = [];
    for (let i = 0; i < count; i++) buffers.push(this.#pool.take(pieceLength(file.size, first + i)));
    try {
      if (file.pieces === 1) {
        this.#readSmallSync(file, buffers[0]!);
      } else {
        file.handle ??= this.#openChecked(file);
        const fh = await file.handle;
        await readvFully(fh, buffers, first * PIECE_SIZE);
      }
      for (let i = 0; i < count; i++) {
        const seq = first + i;
        const hash = this.hasher.pieceHash(buffers[i]!);
        if (file.hashed[seq] === 0) {
          file.hashed[seq] = 1;
          file.hashes[seq] = hash;
          file.hashedCount++;
        } else if (file.hashes[seq] !== hash) {
          // Read again for a re-send and it differs: the file changed under us after FILE_END went out.
          throw new FcpError('FCP_ERR_FILE_CHANGED', undefined, { path: file.entry.rel });
        }
      }
      // Only once nothing can throw: a buffer must go back to the pool exactly once.
      return buffers.map((data, i) => {
        if (resend || file.have?.[first + i] !== 1) return data;
        this.#pool.give(data);
        return undefined;
      });
    } catch (err) {
      for (const b of buffers) this.#pool.give(b);
      file.failure ??= toFcpError(err, file.entry.rel);
      return none();
    }
  }

  /**
   * A file of one piece, read with synchronous calls: open, read, fstat, close take a few
   * microseconds each on cached data, and the thread-pool round trip of each async call would cost ten
   * times that — which is what limits a tree of small files. One fstat after the read compares the file with
   * its listing: a file changed (or replaced) since, before or during the read, fails there.
   */
  #readSmallSync(file: SendFile, data: Buffer): void {
    // O_NONBLOCK: a FIFO swapped in since the listing must not block this (synchronous) open.
    const fd = openSync(
      file.entry.abs,
      fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK,
    );
    try {
      let filled = 0;
      while (filled < data.length) {
        const n = readSync(fd, data, filled, data.length - filled, filled);
        if (n === 0) throw new FcpError('FCP_ERR_FILE_CHANGED', undefined, { path: file.entry.rel });
        filled += n;
      }
      this.#checkUnchanged(file, fstatSync(fd, { bigint: true }));
    } finally {
      closeSync(fd);
    }
  }

  #checkUnchanged(file: SendFile, st: { size: bigint; mtimeNs: bigint }): void {
    if (st.size !== file.entry.size || st.mtimeNs !== file.entry.mtimeNs) {
      throw new FcpError('FCP_ERR_FILE_CHANGED', undefined, { path: file.entry.rel });
    }
  }

  /** Opens without following a link, and refuses a file that changed since it was listed. */
  async #openChecked(file: SendFile): Promise<FileHandle> {
    const fh = await open(
      file.entry.abs,
      fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK,
    );
    try {
      this.#checkUnchanged(file, await fh.stat({ bigint: true }));
    } catch (err) {
      await fh.close();
      throw err;
    }
    return fh;
  }

  /** Once every piece is hashed (or the file failed and no read is left), FILE_END goes out. */
  #afterRead(file: SendFile): void {
    if (file.readsInFlight > 0) return;
    if (file.endSent) {
      // A re-send found the file changed after FILE_END said it was intact: take that back.
      if (file.failure !== undefined && !file.failureSent && !this.finished) {
        file.failureSent = true;
        this.control.send({ type: MsgType.FileEnd, id: file.id, code: file.failure.wireCode, checksum: 0n });
      }
      if (this.#isIdle(file)) this.#closeFile(file);
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
      .then((fh) => fh.stat({ bigint: true }))
      .then((st) => {
        if (st.size !== file.entry.size || st.mtimeNs !== file.entry.mtimeNs) {
          file.failure ??= new FcpError('FCP_ERR_FILE_CHANGED', undefined, { path: file.entry.rel });
        }
      })
      .catch((err) => {
        file.failure ??= toFcpError(err, file.entry.rel);
      })
      .finally(() => this.#sendFileEnd(file));
  }

  #isIdle(file: SendFile): boolean {
    return file.readsInFlight === 0 && !this.#resend.some((r) => r.file === file);
  }

  #sendFileEnd(file: SendFile): void {
    if (file.endSent || this.finished) return;
    file.endSent = true;
    file.failureSent = file.failure !== undefined;
    if (this.#isIdle(file)) this.#closeFile(file);
    const code = file.failure === undefined ? 0 : file.failure.wireCode;
    const checksum = file.failure === undefined ? this.hasher.fileHash(file.hashes) : 0n;
    // Small files end one per read: corked, a burst of FILE_ENDs is one write instead of a syscall and a TLS
    // record each.
    this.control.sendCorked({ type: MsgType.FileEnd, id: file.id, code, checksum });
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
      const piece = this.#takeReadyPiece();
      if (piece !== undefined) return piece;
      if (this.#doneSent) return undefined;
      this.#fillReadAhead();
      await this.#pieceReady.wait();
    }
  }

  /** A piece already read, if there is one, without waiting. */
  #takeReadyPiece(): ReadPiece | undefined {
    const piece = this.#ready.shift();
    if (piece === undefined) return undefined;
    this.#bytesAhead -= piece.data.length;
    this.#fillReadAhead();
    return piece;
  }

  /**
   * One per connection: takes read pieces and queues them on the socket. Whatever is ready at once goes
   * under one cork, up to CORK_BYTES: a big piece's 17 frames leave in one writev, and so do dozens of
   * small files (one syscall and, with TLS, full records instead of one of each per file). The socket may
   * hold up to one batch beyond its high-water mark; the pump waits for 'drain' after the batch.
   */
  async #pump(conn: FramedConn): Promise<void> {
    const cs = this.#connState.get(conn);
    if (cs === undefined) return;
    for (;;) {
      const piece = await this.#nextReadyPiece();
      if (piece === undefined) return;
      if (conn.closed) {
        // Died while we waited: put the piece back for another connection.
        this.#ready.unshift(piece);
        this.#bytesAhead += piece.data.length;
        this.#pieceReady.wake();
        return;
      }
      const ok = conn.corked(() => this.#queueBatch(conn, cs, piece));
      // The connection may die while we wait; connectionLost() then re-sends its pieces elsewhere.
      if (!ok && !conn.closed) await conn.drained().catch(() => {});
      while (cs.unackedBytes >= WINDOW_BYTES && !conn.closed && !this.finished) await cs.acked.wait();
      if (conn.closed) return;
    }
  }

  /**
   * Queues `first` and whatever else is ready, up to CORK_BYTES or the window; false when the connection
   * wants 'drain' before more.
   */
  #queueBatch(conn: FramedConn, cs: ConnState, first: ReadPiece): boolean {
    let ok = true;
    let batched = 0;
    for (let piece: ReadPiece | undefined = first; piece !== undefined; piece = this.#takeReadyPiece()) {
      const key = `${piece.file.id}:${piece.seq}`;
      cs.unacked.set(key, { file: piece.file, seq: piece.seq, bytes: piece.data.length });
      cs.unackedBytes += piece.data.length;
      // Past this point a dying connection hands the piece to connectionLost(), which re-sends it.
      ok = this.#queuePiece(conn, piece) && ok;
      batched += piece.data.length;
      if (conn.closed || batched >= CORK_BYTES || cs.unackedBytes >= WINDOW_BYTES) break;
    }
    return ok;
  }

  /** Queues a piece's DATA frames (by reference); its buffer returns to the pool once the socket wrote it. */
  #queuePiece(conn: FramedConn, piece: ReadPiece): boolean {
    const { data } = piece;
    let release: (() => void) | undefined = () => this.#pool.give(data);
    let ok = true;
    try {
      for (let offset = 0; offset < data.length; offset += MAX_DATA_BYTES) {
        const end = Math.min(offset + MAX_DATA_BYTES, data.length);
        const last = end === data.length;
        const onWritten = last ? release : undefined;
        if (last) release = undefined;
        ok = conn.sendData(piece.file.id, piece.seq, offset, data.subarray(offset, end), onWritten) && ok;
        if (conn.closed) break;
      }
    } finally {
      // Never handed to the socket (it died first): nothing references the buffer any more.
      if (release !== undefined && conn.closed) release();
    }
    return ok;
  }
}
