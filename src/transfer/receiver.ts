/**
 * The receiving side of a transfer (the daemon on push, the client on pull).
 *
 * Each announced entry is checked and answered (FILE_READY: need, skip or fail) without waiting for the
 * rest of the list. Pieces arrive whole on one connection each; a piece is assembled in memory, hashed,
 * written at its offset into the temporary file and acknowledged. A file is committed only when every piece
 * is written and the sender's FILE_END checksum equals the hash of what arrived: mode and mtime go on through
 * the descriptor, then rename() puts it in place atomically. Until then the previous version is untouched.
 * Directory modes and times are applied last, deepest first (spec/PROTOCOL.md §6).
 */
import { constants as fsConstants } from 'node:fs';
import { type FileHandle, lutimes, readlink, rename, symlink, unlink } from 'node:fs/promises';
import type { FramedConn } from '../net/framed-conn.js';
import {
  type DataMsg,
  type DirInfoMsg,
  type DoneEntry,
  FcpError,
  type FileEndMsg,
  type FileInfoMsg,
  FileKind,
  MAX_ACK_ENTRIES,
  MAX_DONE_ENTRIES,
  MAX_READY_ENTRIES,
  type Message,
  MsgType,
  PIECE_SIZE,
  type PieceRef,
  ReadyAction,
  type ReadyActionValue,
  type ReadyEntry,
  toFcpError,
} from '../protocol/index.js';
import { pieceCount, pieceLength } from './checksum.js';
import { type ConfinedRoot, tempNameFor } from './confined-root.js';
import { type EngineOptions, Limiter, TransferEngine, unexpected } from './engine.js';
import { checkWirePath, ROOT_ENTRY } from './wire-path.js';

/** Pieces written but not yet on disk, per connection, before that connection stops being read. */
const MAX_PENDING_WRITES = 4;
/** Entries checked against the disk at once. */
const DECISION_CONCURRENCY = 32;
/** Stop reading the control connection while this much of our answers is queued unsent. */
const CONTROL_BACKLOG = 1 << 20;
/** Two mtimes within this many nanoseconds are equal: futimes() takes microseconds. */
const MTIME_TOLERANCE_NS = 1000n;
/** Errors that will fail every following file too: end the session with one clear message instead. */
const SESSION_FATAL_ERRNO = new Set(['ENOSPC', 'EDQUOT', 'EROFS']);

export interface ReceiverOptions extends EngineOptions {
  /** The destination directory; every entry path is confined to it. */
  root: ConfinedRoot;
  /** Set when the single top-level file of the list is to be written under this name instead of its own. */
  singleName: string | undefined;
  /** Compare existing files by content hash (the sender announces hashes). */
  checksum: boolean;
  /** A file or link this returns false for is declined without counting (pull's --regex). */
  wantsFile?: (path: string) => boolean;
}

interface RecvFile {
  id: number;
  rel: string;
  tempRel: string;
  info: FileInfoMsg;
  size: number;
  pieces: number;
  received: Uint8Array;
  hashes: BigUint64Array;
  piecesWritten: number;
  handle: Promise<FileHandle> | undefined;
  end: FileEndMsg | undefined;
  settled: boolean;
}

interface Assembly {
  file: RecvFile;
  seq: number;
  data: Buffer;
  filled: number;
}

interface ConnState {
  current: Assembly | undefined;
  pendingWrites: number;
  acks: PieceRef[];
  ackScheduled: boolean;
}

interface DirMeta {
  rel: string;
  mode: number;
  mtimeNs: bigint;
}

export class Receiver extends TransferEngine {
  readonly #root: ConfinedRoot;
  readonly #singleName: string | undefined;
  readonly #checksum: boolean;
  readonly #wantsFile: ((path: string) => boolean) | undefined;
  readonly #files = new Map<number, RecvFile>();
  /** Files given up on: their late DATA frames (overtaken by FILE_END on another socket) are dropped. */
  readonly #dropped = new Set<number>();
  /** Paths (final and temporary) of entries in progress: two entries may not write one path at once. */
  readonly #reserved = new Set<string>();
  readonly #ids = new Set<number>();
  readonly #dirs: DirMeta[] = [];
  readonly #connState = new Map<FramedConn, ConnState>();
  readonly #decisions = new Limiter(DECISION_CONCURRENCY);
  #readyBatch: ReadyEntry[] = [];
  #doneBatch: DoneEntry[] = [];
  #flushScheduled = false;
  #pendingDecisions = 0;
  #senderDone = false;

  constructor(opts: ReceiverOptions) {
    super(opts);
    this.#root = opts.root;
    this.#singleName = opts.singleName;
    this.#checksum = opts.checksum;
    this.#wantsFile = opts.wantsFile;
    this.addConnection(opts.control);
  }

  protected connectionAdded(conn: FramedConn): void {
    this.#connState.set(conn, { current: undefined, pendingWrites: 0, acks: [], ackScheduled: false });
  }

  protected connectionLost(conn: FramedConn): void {
    this.#connState.delete(conn);
  }

  protected cleanup(): void {
    for (const file of this.#files.values()) this.#discard(file);
    this.#files.clear();
  }

  protected handle(msg: Message, conn: FramedConn): void {
    switch (msg.type) {
      case MsgType.Data:
        this.#onData(msg, conn);
        return;
      case MsgType.DirInfo:
        this.#admit(msg.id, conn);
        this.#decide(() => this.#decideDir(msg));
        return;
      case MsgType.FileInfo:
        this.#admit(msg.id, conn);
        this.#decide(() => this.#decideFile(msg));
        return;
      case MsgType.FileEnd:
        this.#onFileEnd(msg);
        return;
      case MsgType.FileCount:
        this.stats.listComplete = true;
        return;
      case MsgType.Done:
        if (this.#files.size > 0 || this.#pendingDecisions > 0) {
          throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'DONE while files are still in progress');
        }
        this.#senderDone = true;
        this.#finish().catch((err) => this.fail(err));
        return;
      default:
        throw unexpected(msg, 'receiver');
    }
  }

  /** List messages come on the control connection only, with fresh ids. */
  #admit(id: number, conn: FramedConn): void {
    if (conn !== this.control)
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'file list on a data connection');
    if (this.#senderDone) throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'file list after DONE');
    if (this.#ids.has(id)) throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `entry id ${id} announced twice`);
    this.#ids.add(id);
    this.stats.filesTotal++;
  }

  #decide(job: () => Promise<void>): void {
    this.#pendingDecisions++;
    this.#decisions
      .run(job)
      .catch((err) => this.fail(err))
      .finally(() => {
        this.#pendingDecisions--;
      });
  }

  /** Maps a checked wire path onto the destination (the single-file rename). */
  #destRel(path: string): string {
    checkWirePath(path);
    if (this.#singleName !== undefined && !path.includes('/') && path !== ROOT_ENTRY) return this.#singleName;
    return path;
  }

  async #decideDir(msg: DirInfoMsg): Promise<void> {
    let rel: string;
    try {
      rel = this.#destRel(msg.path);
      await this.#root.ensureDir(rel);
    } catch (err) {
      this.#answerFail(msg.id, err, msg.path);
      return;
    }
    this.#dirs.push({ rel, mode: msg.mode & 0o7777, mtimeNs: msg.mtimeNs });
    this.stats.dirs++;
    this.#answer(msg.id, ReadyAction.Skip);
  }

  async #decideFile(info: FileInfoMsg): Promise<void> {
    if (this.#wantsFile !== undefined && !this.#wantsFile(info.path)) {
      this.stats.filesTotal--;
      this.#answer(info.id, ReadyAction.Skip);
      return;
    }
    let rel: string;
    let tempRel: string;
    try {
      rel = this.#destRel(info.path);
      if (rel === ROOT_ENTRY)
        throw new FcpError('FCP_ERR_PATH_TYPE', 'a file cannot replace the destination root');
      tempRel = tempNameFor(rel);
      if (this.#reserved.has(rel) || this.#reserved.has(tempRel)) {
        throw new FcpError('FCP_ERR_PATH_DUPLICATE', undefined, { path: info.path });
      }
    } catch (err) {
      this.#answerFail(info.id, err, info.path);
      return;
    }
    this.#reserved.add(rel);
    this.#reserved.add(tempRel);
    let keepReservation = false;
    try {
      await this.#root.ensureParent(rel);
      const existing = await this.#root.inspect(rel);
      if (existing?.isDirectory()) throw new FcpError('FCP_ERR_PATH_TYPE', 'destination is a directory');
      if (info.kind === FileKind.Symlink) {
        await this.#placeSymlink(info, rel, tempRel, existing?.isSymbolicLink() === true);
        return;
      }
      if (
        existing?.isFile() &&
        existing.size === info.size &&
        (await this.#sameContent(info, rel, existing.mtimeNs))
      ) {
        this.stats.filesSkipped++;
        this.#answer(info.id, ReadyAction.Skip);
        return;
      }
      const size = Number(info.size);
      const pieces = pieceCount(size);
      this.#files.set(info.id, {
        id: info.id,
        rel,
        tempRel,
        info,
        size,
        pieces,
        received: new Uint8Array(pieces),
        hashes: new BigUint64Array(pieces),
        piecesWritten: 0,
        handle: undefined,
        end: undefined,
        settled: false,
      });
      keepReservation = true;
      this.stats.bytesTotal += size;
      this.#answer(info.id, ReadyAction.Need);
    } catch (err) {
      this.#answerFail(info.id, err, info.path);
    } finally {
      if (!keepReservation) this.#release(rel, tempRel);
    }
  }

  /** rsync's quick check (size and mtime), or with --checksum a hash of the local copy. */
  async #sameContent(info: FileInfoMsg, rel: string, mtimeNs: bigint): Promise<boolean> {
    if (!this.#checksum) {
      const delta = mtimeNs - info.mtimeNs;
      return delta <= MTIME_TOLERANCE_NS && delta >= -MTIME_TOLERANCE_NS;
    }
    if (info.checksum === undefined)
      throw new FcpError('FCP_ERR_PROTO_MALFORMED', 'FILE_INFO without checksum');
    const fh = await this.#root.openFile(rel, fsConstants.O_RDONLY);
    try {
      return (await this.hasher.hashOpenFile(fh, Number(info.size))) === info.checksum;
    } finally {
      await fh.close();
    }
  }

  /** Links are recreated with their target text unchanged, never followed (spec/SECURITY.md). */
  async #placeSymlink(
    info: FileInfoMsg,
    rel: string,
    tempRel: string,
    existingIsLink: boolean,
  ): Promise<void> {
    const target = info.linkTarget;
    if (target === '' || target.includes('\0')) {
      throw new FcpError('FCP_ERR_PATH_UNSAFE', 'empty link target or NUL in it', { path: info.path });
    }
    const abs = this.#root.resolve(rel);
    if (existingIsLink && (await readlink(abs)) === target) {
      this.stats.filesSkipped++;
      this.#answer(info.id, ReadyAction.Skip);
      return;
    }
    const tempAbs = this.#root.resolve(tempRel);
    await unlinkQuiet(tempAbs);
    await symlink(target, tempAbs);
    try {
      const t = nsToSeconds(info.mtimeNs);
      await lutimes(tempAbs, t, t);
      await rename(tempAbs, abs);
    } catch (err) {
      await unlinkQuiet(tempAbs);
      throw err;
    }
    this.#root.forget(rel);
    this.stats.filesSent++;
    this.#queueDone(info.id, 0);
  }

  #onData(msg: DataMsg, conn: FramedConn): void {
    const cs = this.#connState.get(conn);
    if (cs === undefined) return;
    const file = this.#files.get(msg.id);
    if (file === undefined) {
      if (!this.#dropped.has(msg.id)) {
        throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `DATA for file id ${msg.id}, which was not requested`);
      }
      if (cs.current?.file.id === msg.id) cs.current = undefined;
      return;
    }
    let cur = cs.current;
    if (cur === undefined) {
      // A piece starts: pieces travel whole and in order on one connection (spec §5.3).
      if (msg.offset !== 0 || msg.seq >= file.pieces || file.received[msg.seq] !== 0) {
        throw new FcpError('FCP_ERR_FILE_RANGE', `DATA piece ${msg.seq} at ${msg.offset} for id ${msg.id}`);
      }
      file.received[msg.seq] = 1;
      cur = { file, seq: msg.seq, data: Buffer.allocUnsafe(pieceLength(file.size, msg.seq)), filled: 0 };
      cs.current = cur;
    } else if (cur.file !== file || cur.seq !== msg.seq) {
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'pieces interleaved on one connection');
    }
    const n = msg.data.byteLength;
    if (msg.offset !== cur.filled || cur.filled + n > cur.data.length) {
      throw new FcpError(
        'FCP_ERR_FILE_RANGE',
        `DATA offset ${msg.offset} does not continue piece ${msg.seq}`,
      );
    }
    cur.data.set(msg.data, cur.filled);
    cur.filled += n;
    this.stats.bytesDone += n;
    if (cur.filled === cur.data.length) {
      cs.current = undefined;
      this.#writePiece(cur, conn, cs);
    }
  }

  #writePiece(piece: Assembly, conn: FramedConn, cs: ConnState): void {
    const { file, seq, data } = piece;
    file.hashes[seq] = this.hasher.pieceHash(data);
    cs.pendingWrites++;
    if (cs.pendingWrites >= MAX_PENDING_WRITES) conn.pause();
    this.#writeAt(file, data, seq * PIECE_SIZE)
      .then(
        () => {
          if (file.settled) return;
          file.piecesWritten++;
          this.#ack(conn, cs, { id: file.id, seq });
          this.#maybeCommit(file);
        },
        (err) => this.#fileFailed(file, err),
      )
      .finally(() => {
        cs.pendingWrites--;
        if (cs.pendingWrites < MAX_PENDING_WRITES) conn.resume();
      });
  }

  async #writeAt(file: RecvFile, data: Buffer, position: number): Promise<void> {
    const fh = await this.#openTemp(file);
    let written = 0;
    while (written < data.length) {
      const r = await fh.write(data, written, data.length - written, position + written);
      written += r.bytesWritten;
    }
  }

  #openTemp(file: RecvFile): Promise<FileHandle> {
    file.handle ??= this.#root.openFile(
      file.tempRel,
      fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC,
      0o600,
    );
    return file.handle;
  }

  #onFileEnd(msg: FileEndMsg): void {
    const file = this.#files.get(msg.id);
    if (file === undefined) {
      if (this.#dropped.has(msg.id)) return;
      throw new FcpError(
        'FCP_ERR_PROTO_UNEXPECTED',
        `FILE_END for file id ${msg.id}, which was not requested`,
      );
    }
    if (file.end !== undefined)
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `second FILE_END for id ${msg.id}`);
    file.end = msg;
    if (msg.code !== 0) {
      this.#settle(file, msg.code);
      return;
    }
    this.#maybeCommit(file);
  }

  #maybeCommit(file: RecvFile): void {
    if (file.settled || file.end === undefined || file.piecesWritten < file.pieces) return;
    file.settled = true;
    this.#commit(file, file.end.checksum).catch((err) => {
      file.settled = false;
      this.#fileFailed(file, err);
    });
  }

  /** Verify, then metadata through the descriptor, then the atomic rename (STYLE rule 9). */
  async #commit(file: RecvFile, expected: bigint): Promise<void> {
    if (this.hasher.fileHash(file.hashes) !== expected) {
      file.settled = false;
      this.#fileFailed(file, new FcpError('FCP_ERR_FILE_CHECKSUM', undefined, { path: file.info.path }));
      return;
    }
    const fh = await this.#openTemp(file);
    await fh.chmod(file.info.mode & 0o7777);
    const t = nsToSeconds(file.info.mtimeNs);
    await fh.utimes(Date.now() / 1000, t);
    file.handle = undefined;
    await fh.close();
    await rename(this.#root.resolve(file.tempRel), this.#root.resolve(file.rel));
    this.#files.delete(file.id);
    this.#release(file.rel, file.tempRel);
    this.stats.filesSent++;
    this.#queueDone(file.id, 0);
  }

  #fileFailed(file: RecvFile, err: unknown): void {
    if (file.settled) return;
    const e = toFcpError(err, file.info.path);
    if (SESSION_FATAL_ERRNO.has(e.code)) {
      this.fail(
        new FcpError(e.code, `${e.message} writing ${file.info.path}`, { fatal: true, path: file.info.path }),
      );
      return;
    }
    this.warn(e);
    this.#settle(file, e.wireCode);
  }

  /** Gives up on a file: temporary removed, previous version untouched, the sender told. */
  #settle(file: RecvFile, code: number): void {
    file.settled = true;
    this.#files.delete(file.id);
    this.#dropped.add(file.id);
    this.#discard(file);
    this.#release(file.rel, file.tempRel);
    this.stats.filesFailed++;
    this.#queueDone(file.id, code);
  }

  #discard(file: RecvFile): void {
    const handle = file.handle;
    file.handle = undefined;
    const tempAbs = this.#root.resolve(file.tempRel);
    void (async () => {
      if (handle !== undefined) await handle.then((fh) => fh.close()).catch(() => {});
      if (handle !== undefined) await unlinkQuiet(tempAbs);
    })();
  }

  #release(rel: string, tempRel: string): void {
    this.#reserved.delete(rel);
    this.#reserved.delete(tempRel);
  }

  async #finish(): Promise<void> {
    // Deepest first, so setting a parent's mtime comes after every change inside it.
    const dirs = this.#dirs.sort((a, b) => depth(b.rel) - depth(a.rel));
    for (const dir of dirs) {
      try {
        await this.#applyDirMeta(dir);
      } catch (err) {
        this.warn(toFcpError(err, dir.rel));
      }
    }
    this.control.send({
      type: MsgType.Done,
      filesSent: this.stats.filesSent,
      filesSkipped: this.stats.filesSkipped,
      filesFailed: this.stats.filesFailed,
      bytes: BigInt(this.stats.bytesDone),
    });
    this.succeed();
  }

  async #applyDirMeta(dir: DirMeta): Promise<void> {
    const fh = await this.#root.openFile(dir.rel, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    try {
      await fh.chmod(dir.mode);
      const t = nsToSeconds(dir.mtimeNs);
      await fh.utimes(t, t);
    } finally {
      await fh.close();
    }
  }

  #answer(id: number, action: ReadyActionValue, code = 0): void {
    this.#readyBatch.push({ id, action, code });
    if (this.#readyBatch.length >= MAX_READY_ENTRIES) this.#flush();
    else this.#scheduleFlush();
  }

  #answerFail(id: number, err: unknown, path: string): void {
    const e = toFcpError(err, path);
    if (e.fatal && !e.code.startsWith('FCP_ERR_PATH')) {
      this.fail(e);
      return;
    }
    if (SESSION_FATAL_ERRNO.has(e.code)) {
      this.fail(new FcpError(e.code, `${e.message} at ${path}`, { fatal: true, path }));
      return;
    }
    this.warn(e);
    this.stats.filesFailed++;
    this.#answer(id, ReadyAction.Fail, e.wireCode);
  }

  #queueDone(id: number, code: number): void {
    this.#doneBatch.push({ id, code });
    if (this.#doneBatch.length >= MAX_DONE_ENTRIES) this.#flush();
    else this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.finished) return;
    if (this.#readyBatch.length > 0) {
      this.control.send({ type: MsgType.FileReady, entries: this.#readyBatch });
      this.#readyBatch = [];
    }
    if (this.#doneBatch.length > 0) {
      this.control.send({ type: MsgType.FileDone, entries: this.#doneBatch });
      this.#doneBatch = [];
    }
    // A sender that never reads our answers must not make us buffer them without bound.
    if (this.control.socket.writableLength > CONTROL_BACKLOG) {
      this.control.pause();
      this.control.drained().then(
        () => this.control.resume(),
        () => {},
      );
    }
  }

  #ack(conn: FramedConn, cs: ConnState, piece: PieceRef): void {
    cs.acks.push(piece);
    if (cs.acks.length >= MAX_ACK_ENTRIES) this.#flushAcks(conn, cs);
    if (cs.ackScheduled) return;
    cs.ackScheduled = true;
    setImmediate(() => this.#flushAcks(conn, cs));
  }

  #flushAcks(conn: FramedConn, cs: ConnState): void {
    cs.ackScheduled = false;
    if (cs.acks.length === 0 || conn.closed) return;
    conn.send({ type: MsgType.PieceAck, pieces: cs.acks });
    cs.acks = [];
  }
}

function depth(rel: string): number {
  if (rel === ROOT_ENTRY) return 0;
  let n = 1;
  for (let i = rel.indexOf('/'); i !== -1; i = rel.indexOf('/', i + 1)) n++;
  return n;
}

/**
 * utimes() takes float seconds, which near 2026 resolve only ~240 ns, and libuv truncates them to whole
 * microseconds: aim at the middle of the microsecond so truncation lands on it, not the one before.
 */
function nsToSeconds(ns: bigint): number {
  const micros = ns / 1000n;
  const sec = micros / 1_000_000n;
  return Number(sec) + (Number(micros - sec * 1_000_000n) + 0.5) / 1e6;
}

async function unlinkQuiet(abs: string): Promise<void> {
  try {
    await unlink(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
