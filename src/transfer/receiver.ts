/**
 * The receiving side of a transfer (the daemon on push, the client on pull).
 *
 * Each announced entry is checked and answered (FILE_READY: need, resume, skip or fail) without waiting for
 * the rest of the list. Pieces arrive whole on one connection each; a piece is assembled in memory, hashed,
 * written at its offset into the temporary file, recorded in the piece index beside it and acknowledged. A
 * file is committed only when every piece is written and the sender's FILE_END checksum equals the hash of
 * what arrived: mode and mtime go on through the descriptor, then rename() puts it in place atomically.
 * Until then the previous version is untouched. Directory modes and times are applied last, deepest first.
 *
 * When the session dies, partial files stay with their piece index so that the same command run again
 * resumes them (spec/PROTOCOL.md §6–§7).
 */
import {
  type BigIntStats,
  closeSync,
  fchmodSync,
  constants as fsConstants,
  futimesSync,
  lutimesSync,
  readlinkSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { type FileHandle, rename, unlink } from 'node:fs/promises';
import type { FramedConn } from '../transport/framed-conn.js';
import {
  codeFromWire,
  type DataMsg,
  type DirInfoMsg,
  type DoneEntry,
  FcpError,
  type FileEndMsg,
  type FileInfoMsg,
  FileKind,
  MAX_ACK_ENTRIES,
  MAX_DONE_ENTRIES,
  MAX_HAVE_BYTES,
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
import { sharedPool } from './buffer-pool.js';
import { pieceCount, pieceLength, readFully } from './checksum.js';
import { type ConfinedRoot, sidecarNameFor, tempNameFor } from './confined-root.js';
import { type DirMeta, DirMetaLog } from './dir-meta-log.js';
import { type EngineOptions, Limiter, TransferEngine, unexpected } from './engine.js';
import { PieceIndex } from './piece-index.js';
import { PieceWriter } from './piece-writer.js';
import { MAX_DROPPED_IDS, OpenEntries, RecentIds } from './receive-bounds.js';
import { processUmask } from './umask.js';
import { checkWirePath, parentOf, ROOT_ENTRY, type SafePath } from './wire-path.js';
import { freeBytes, notEnoughSpace, sessionWriteFailure, unwritableDestination } from './write-failures.js';

/** Pieces written but not yet on disk, per connection, before that connection stops being read. */
const MAX_PENDING_WRITES = 2;
/** Entries checked against the disk at once (those that must wait for a directory or a read). */
const DECISION_CONCURRENCY = 32;
/**
 * Stop reading the control connection while this many entries wait for a decision: they settle on their own
 * (disk work only), so this pause cannot wait on the peer.
 */
const DECISION_BACKLOG = 1024;
/** Partial files whose piece index is read at once: an index may hold a million records (§7.1). */
const PARTIAL_LOADS = 2;
/** Directory metadata calls made before letting the event loop turn (they are synchronous). */
const DIR_META_SLICE = 1024;
/** Stop reading the control connection while this much of our answers is queued unsent. */
const CONTROL_BACKLOG = 1 << 20;
/**
 * PIECE_ACKs wait this long to share a frame. Flushed every event-loop turn, a big file's acks went one per
 * frame: ~2,000 tiny TLS records and loopback sends per 2 GiB, 176 ms of the daemon's CPU and as much on the
 * sender to read them. The sender's window (64 MiB a connection) does not notice a few ms.
 */
const ACK_DELAY_MS = 5;
/** Two mtimes within this many nanoseconds are equal: futimes() takes microseconds. */
const MTIME_TOLERANCE_NS = 1000n;

/**
 * Permission bits applied from the wire: everything but setuid and setgid. A peer must not be able to plant
 * a set-id program (owned by whoever runs the receiver, root included); the sticky bit is harmless.
 */
const MODE_MASK = 0o1777;
/** Set-id and sticky bits: open() may drop them, so a mode with any of them is always set with fchmod. */
const SPECIAL_MODE_BITS = 0o7000;
/** Larger than this cannot be a real file (and would lose precision as a JS number). */
const MAX_FILE_SIZE = BigInt(Number.MAX_SAFE_INTEGER);
/** Files from this size up are checked against the free space of their file system before they start. */
const SPACE_CHECK_MIN = 16 * PIECE_SIZE;
/** Larger files may have a partial to resume (§7.1), which takes reading: never decided on the spot. */
const ONE_PIECE = BigInt(PIECE_SIZE);

const PieceState = { Absent: 0, Writing: 1, Written: 2 } as const;

export interface ReceiverOptions extends EngineOptions {
  /** The destination directory; every entry path is confined to it. */
  root: ConfinedRoot;
  /** Set when the single top-level file of the list is to be written under this name instead of its own. */
  singleName: string | undefined;
  /** Compare existing files by content hash (the sender announces hashes). */
  checksum: boolean;
  /** A file or link this returns false for is declined without counting (pull's --regex). */
  wantsFile?: (path: string) => boolean;
  /** Told about every partial file kept for resume when the session fails (the daemon sweeps stale ones). */
  onPartialKept?: (tempAbs: string, sidecarAbs: string) => void;
}

interface RecvFile {
  id: number;
  rel: SafePath;
  tempRel: SafePath;
  /** The piece index's name: files of more than one piece only (§7.1). */
  sidecarRel: SafePath | undefined;
  info: FileInfoMsg;
  size: number;
  pieces: number;
  state: Uint8Array;
  hashes: BigUint64Array;
  piecesWritten: number;
  /** Pieces kept from an interrupted run (verified); resuming opens the temp without truncating. */
  resumedPieces: number;
  resumedBytes: number;
  handle: Promise<FileHandle> | undefined;
  /** The temporary file's descriptor on the synchronous small-file path (one piece or none). */
  fd: number | undefined;
  /** The small-file path created the temporary with its final mode (see #openSmallTemp). */
  modeAtCreate: boolean;
  index: Promise<PieceIndex> | undefined;
  /** Multi-piece files: serializes and coalesces the writes to the temporary file. */
  writer: PieceWriter | undefined;
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

export class Receiver extends TransferEngine {
  readonly #root: ConfinedRoot;
  /** Read once per session: a new file whose mode it leaves whole is created with that mode. */
  readonly #umask = processUmask();
  readonly #singleName: string | undefined;
  readonly #checksum: boolean;
  readonly #wantsFile: ((path: string) => boolean) | undefined;
  readonly #onPartialKept: ((tempAbs: string, sidecarAbs: string) => void) | undefined;
  readonly #files = new Map<number, RecvFile>();
  /** Files given up on: their late DATA frames (overtaken by FILE_END on another socket) are dropped. */
  readonly #dropped = new RecentIds(MAX_DROPPED_IDS);
  /** Entries taken and not yet settled: the protocol's window, enforced (receive-bounds.ts). */
  readonly #open = new OpenEntries();
  /** Paths (final and temporary) of entries in progress: two entries may not write one path at once. */
  readonly #reserved = new Set<string>();
  readonly #dirs = new DirMetaLog();
  readonly #connState = new Map<FramedConn, ConnState>();
  readonly #decisions = new Limiter(DECISION_CONCURRENCY);
  readonly #partialLoads = new Limiter(PARTIAL_LOADS);
  readonly #pool = sharedPool;
  #readyBatch: ReadyEntry[] = [];
  #doneBatch: DoneEntry[] = [];
  #flushScheduled = false;
  #pendingDecisions = 0;
  /** Ids must increase: one number of state instead of a set of every id ever seen. */
  #lastId = 0;
  #senderDone = false;

  constructor(opts: ReceiverOptions) {
    super(opts);
    this.#root = opts.root;
    this.#singleName = opts.singleName;
    this.#checksum = opts.checksum;
    this.#wantsFile = opts.wantsFile;
    this.#onPartialKept = opts.onPartialKept;
    this.addConnection(opts.control);
  }

  protected connectionAdded(conn: FramedConn): void {
    this.#connState.set(conn, { current: undefined, pendingWrites: 0, acks: [], ackScheduled: false });
  }

  protected connectionLost(conn: FramedConn): void {
    const cs = this.#connState.get(conn);
    this.#connState.delete(conn);
    // A half-assembled piece is forgotten; the sender re-sends it whole on another connection.
    if (cs?.current !== undefined) this.#pool.give(cs.current.data);
  }

  protected cleanup(): void {
    for (const file of this.#files.values()) this.#keepOrDiscard(file);
    this.#files.clear();
    this.#dirs.clear();
  }

  protected handle(msg: Message, conn: FramedConn): void {
    switch (msg.type) {
      case MsgType.Data:
        this.#onData(msg, conn);
        return;
      case MsgType.DirInfo:
        this.#admit(msg.id, conn);
        this.#onDirInfo(msg);
        return;
      case MsgType.FileInfo:
        this.#admit(msg.id, conn);
        this.#onFileInfo(msg);
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

  /** List messages come on the control connection only, with increasing ids. */
  #admit(id: number, conn: FramedConn): void {
    if (conn !== this.control)
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'file list on a data connection');
    if (this.#senderDone) throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'file list after DONE');
    if (id <= this.#lastId)
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `entry id ${id} does not increase`);
    this.#lastId = id;
    this.#open.admit(id);
    this.stats.filesTotal++;
  }

  #decide(job: () => Promise<void>): void {
    this.#pendingDecisions++;
    if (this.#pendingDecisions >= DECISION_BACKLOG) this.control.pause('decisions');
    this.#decisions
      .run(job)
      .catch((err) => this.fail(err))
      .finally(() => {
        this.#pendingDecisions--;
        if (this.#pendingDecisions < DECISION_BACKLOG) this.control.resume('decisions');
      });
  }

  /**
   * Checks a wire path (the one check it gets: every name derived from it is built safe) and maps it onto
   * the destination (the single-file rename).
   */
  #destRel(path: string): SafePath {
    const rel = checkWirePath(path);
    if (this.#singleName !== undefined && !path.includes('/') && path !== ROOT_ENTRY) {
      return checkWirePath(this.#singleName);
    }
    return rel;
  }

  /**
   * DIR_INFO: a directory whose parent is known is made or verified at once, so the files that follow it in
   * the same read find it ready (#onFileInfo); otherwise it waits for the levels above it.
   */
  #onDirInfo(msg: DirInfoMsg): void {
    let rel: SafePath;
    try {
      rel = this.#destRel(msg.path);
      if (!this.#root.ensureDirNow(rel)) {
        this.#decide(() => this.#decideDir(msg, rel));
        return;
      }
    } catch (err) {
      this.#answerFail(msg.id, err, msg.path);
      return;
    }
    this.#dirPlaced(msg, rel);
  }

  async #decideDir(msg: DirInfoMsg, rel: SafePath): Promise<void> {
    try {
      await this.#root.ensureDirChecked(rel);
    } catch (err) {
      this.#answerFail(msg.id, err, msg.path);
      return;
    }
    this.#dirPlaced(msg, rel);
  }

  #dirPlaced(msg: DirInfoMsg, rel: SafePath): void {
    this.#dirs.add({ rel, mode: msg.mode & MODE_MASK, mtimeNs: msg.mtimeNs });
    this.stats.dirs++;
    this.#answer(msg.id, ReadyAction.Skip);
  }

  /**
   * FILE_INFO: decided on the spot when its directory is known and nothing has to be read or waited for
   * (the common small file); otherwise through the limiter. Answers may so overtake earlier ones: FILE_READY
   * is matched by id (§5.2).
   */
  #onFileInfo(info: FileInfoMsg): void {
    if (this.#wantsFile !== undefined && !this.#wantsFile(info.path)) {
      this.stats.filesTotal--;
      this.#answer(info.id, ReadyAction.Skip);
      return;
    }
    const rel = this.#claim(info);
    if (rel === undefined) return;
    if (this.#root.isReadyDir(parentOf(rel)) && this.#decideFileNow(info, rel)) return;
    this.#decide(() => this.#decideFile(info, rel));
  }

  /**
   * Checks the entry's path and reserves it, in arrival order, so that of two entries naming one path the
   * second is refused; undefined after answering FAIL.
   */
  #claim(info: FileInfoMsg): SafePath | undefined {
    try {
      const rel = this.#destRel(info.path);
      if (rel === ROOT_ENTRY)
        throw new FcpError('FCP_ERR_PATH_TYPE', 'a file cannot replace the destination root');
      this.#reserve([rel], info.path);
      return rel;
    } catch (err) {
      this.#answerFail(info.id, err, info.path);
      return undefined;
    }
  }

  /** Reserves every path of `paths` or, if one is taken, none (FCP_ERR_PATH_DUPLICATE). */
  #reserve(paths: readonly string[], wirePath: string): void {
    if (paths.some((p) => this.#reserved.has(p))) {
      throw new FcpError('FCP_ERR_PATH_DUPLICATE', undefined, { path: wirePath });
    }
    for (const p of paths) this.#reserved.add(p);
  }

  /** The decision with nothing to wait for; false, having done nothing, when it must go the async way. */
  #decideFileNow(info: FileInfoMsg, rel: SafePath): boolean {
    try {
      // In a directory this session made, the path is free: the directory was empty and each path is
      // reserved once. That spares an lstat per file of a first copy (a tenth of the daemon's CPU per small
      // file). Should another process put something there meanwhile, the rename replaces a file as it
      // would have anyway, and fails on a directory.
      const parent = parentOf(rel);
      const existing = this.#root.madeEmpty(parent) ? undefined : this.#root.inspectInReadyDir(rel);
      return this.#decideKnown(info, rel, existing);
    } catch (err) {
      this.#reserved.delete(rel);
      this.#answerFail(info.id, err, info.path);
      return true;
    }
  }

  async #decideFile(info: FileInfoMsg, rel: SafePath): Promise<void> {
    let file: RecvFile | undefined;
    try {
      await this.#root.ensureDirChecked(parentOf(rel));
      const existing = await this.#root.inspectChecked(rel);
      if (this.#decideKnown(info, rel, existing)) return;
      if (
        this.#checksum &&
        existing?.isFile() === true &&
        existing.size === info.size &&
        (await this.#sameHash(info, rel))
      ) {
        this.#skipFile(info.id, rel);
        return;
      }
      file = this.#newFile(info, rel);
      const f = file;
      await this.#partialLoads.run(() => this.#loadPartial(f));
      this.#start(file);
    } catch (err) {
      if (file !== undefined) this.#release(file);
      else this.#reserved.delete(rel);
      this.#answerFail(info.id, err, info.path);
    }
  }

  /**
   * Decides what needs no waiting, once the parent directory exists and `existing` is what lstat found:
   * true when answered; false, having done nothing, when the content must be hashed (--checksum) or a
   * partial may be resumed (more than one piece). Throws for the caller to answer FAIL.
   */
  #decideKnown(info: FileInfoMsg, rel: SafePath, existing: BigIntStats | undefined): boolean {
    if (existing?.isDirectory()) throw new FcpError('FCP_ERR_PATH_TYPE', 'destination is a directory');
    if (info.kind === FileKind.Symlink) {
      this.#placeSymlink(info, rel, existing?.isSymbolicLink() === true);
      return true;
    }
    if (existing?.isFile() === true && existing.size === info.size) {
      if (this.#checksum) return false;
      // rsync's quick check: same size, mtime within what futimes() can set.
      const delta = existing.mtimeNs - info.mtimeNs;
      if (delta <= MTIME_TOLERANCE_NS && delta >= -MTIME_TOLERANCE_NS) {
        this.#skipFile(info.id, rel);
        return true;
      }
    }
    if (info.size > ONE_PIECE) return false;
    this.#start(this.#newFile(info, rel));
    return true;
  }

  #skipFile(id: number, rel: SafePath): void {
    this.#reserved.delete(rel);
    this.stats.filesSkipped++;
    this.#answer(id, ReadyAction.Skip);
  }

  /**
   * The bookkeeping of a file to be received, its temporary (and for more than one piece, piece index)
   * names reserved beside `rel`, which the caller reserved.
   */
  #newFile(info: FileInfoMsg, rel: SafePath): RecvFile {
    if (info.size > MAX_FILE_SIZE) {
      throw new FcpError('FCP_ERR_LIMIT_EXCEEDED', `announced size ${info.size} is not a real file size`, {
        path: info.path,
        fatal: false,
      });
    }
    const size = Number(info.size);
    if (size >= SPACE_CHECK_MIN) this.#checkSpace(rel, size, info.path);
    const pieces = pieceCount(size);
    const tempRel = tempNameFor(rel);
    const sidecarRel = pieces > 1 ? sidecarNameFor(rel) : undefined;
    this.#reserve(sidecarRel === undefined ? [tempRel] : [tempRel, sidecarRel], info.path);
    return {
      id: info.id,
      rel,
      tempRel,
      sidecarRel,
      info,
      size,
      pieces,
      state: new Uint8Array(pieces),
      hashes: new BigUint64Array(pieces),
      piecesWritten: 0,
      resumedPieces: 0,
      resumedBytes: 0,
      handle: undefined,
      fd: undefined,
      modeAtCreate: false,
      index: undefined,
      writer: undefined,
      end: undefined,
      settled: false,
    };
  }

  /** The file is expected: NEED, or RESUME after naming the pieces kept from an earlier run. */
  #start(file: RecvFile): void {
    this.#files.set(file.id, file);
    this.stats.bytesTotal += file.size;
    this.needed(file.size - file.resumedBytes);
    if (file.resumedPieces > 0) {
      this.#sendHave(file);
      this.#answer(file.id, ReadyAction.Resume);
    } else {
      this.#answer(file.id, ReadyAction.Need);
    }
  }

  /**
   * Looks for a partial file left by an interrupted run of this same source file (size and mtime recorded
   * in its piece index). Every recorded piece is re-read and re-hashed: only pieces whose bytes on disk
   * still match are kept; a torn or tampered piece is simply sent again.
   */
  async #loadPartial(file: RecvFile): Promise<void> {
    if (file.sidecarRel === undefined) return;
    const id = { size: file.info.size, mtimeNs: file.info.mtimeNs, pieces: file.pieces };
    const recorded = await PieceIndex.load(this.#root, file.sidecarRel, id).catch(() => undefined);
    if (recorded === undefined || recorded.size === 0) return;
    let fh: FileHandle;
    try {
      fh = await this.#root.openFile(file.tempRel, fsConstants.O_RDONLY);
    } catch {
      return;
    }
    const buf = this.#pool.take(PIECE_SIZE);
    try {
      for (const [seq, hash] of recorded) {
        const view = buf.subarray(0, pieceLength(file.size, seq));
        try {
          await readFully(fh, view, seq * PIECE_SIZE);
        } catch {
          continue;
        }
        if (this.hasher.pieceHash(view) !== hash) continue;
        file.state[seq] = PieceState.Written;
        file.hashes[seq] = hash;
        file.piecesWritten++;
        file.resumedPieces++;
        file.resumedBytes += view.byteLength;
      }
    } finally {
      this.#pool.give(buf);
      await fh.close();
    }
  }

  #sendHave(file: RecvFile): void {
    const bitsPerMsg = MAX_HAVE_BYTES * 8;
    for (let first = 0; first < file.pieces; first += bitsPerMsg) {
      const count = Math.min(bitsPerMsg, file.pieces - first);
      const bitmap = new Uint8Array(Math.ceil(count / 8));
      let any = false;
      for (let i = 0; i < count; i++) {
        if (file.state[first + i] !== PieceState.Written) continue;
        bitmap[i >> 3]! |= 0x80 >> (i & 7);
        any = true;
      }
      // FILE_HAVE must precede the FILE_READY that says RESUME: flush queued answers first to keep order.
      if (any) {
        this.#flush();
        this.control.send({ type: MsgType.FileHave, id: file.id, firstSeq: first, bitmap });
      }
    }
  }

  /**
   * Refuses, before a byte is sent, a file its file system has no room for (counting the files already in
   * progress): a clear early error instead of ENOSPC halfway through, and no bookkeeping sized by a
   * hostile peer's invented size.
   */
  #checkSpace(rel: SafePath, size: number, path: string): void {
    const free = freeBytes(this.#root.resolveChecked(parentOf(rel)));
    if (free === undefined) return; // no statfs here: the write itself will report ENOSPC
    let inProgress = 0;
    for (const f of this.#files.values()) inProgress += f.size;
    if (size > free - inProgress) throw notEnoughSpace(path, size, Math.max(0, free - inProgress));
  }

  /** --checksum: whether the local copy (of the announced size) hashes as the sender's file does. */
  async #sameHash(info: FileInfoMsg, rel: SafePath): Promise<boolean> {
    if (info.checksum === undefined)
      throw new FcpError('FCP_ERR_PROTO_MALFORMED', 'FILE_INFO without checksum');
    const fh = await this.#root.openFile(rel, fsConstants.O_RDONLY);
    try {
      return (await this.hasher.hashOpenFile(fh, Number(info.size))) === info.checksum;
    } finally {
      await fh.close();
    }
  }

  /**
   * Links are recreated with their target text unchanged, never followed (spec/SECURITY.md). Synchronous:
   * `rel` (reserved by the caller) and its temporary name are released when it returns or throws.
   */
  #placeSymlink(info: FileInfoMsg, rel: SafePath, existingIsLink: boolean): void {
    const target = info.linkTarget;
    if (target === '' || target.includes('\0')) {
      this.#reserved.delete(rel);
      throw new FcpError('FCP_ERR_PATH_UNSAFE', 'empty link target or NUL in it', { path: info.path });
    }
    const abs = this.#root.resolveChecked(rel);
    if (existingIsLink && readlinkSync(abs) === target) {
      this.#skipFile(info.id, rel);
      return;
    }
    const tempRel = tempNameFor(rel);
    this.#reserve([tempRel], info.path);
    try {
      this.#replaceWithLink(target, this.#root.resolveChecked(tempRel), abs, info.mtimeNs);
    } finally {
      this.#reserved.delete(tempRel);
      this.#reserved.delete(rel);
    }
    this.#root.forget(rel);
    this.stats.filesSent++;
    this.#queueDone(info.id, 0);
  }

  #replaceWithLink(target: string, tempAbs: string, abs: string, mtimeNs: bigint): void {
    unlinkQuietSync(tempAbs);
    symlinkSync(target, tempAbs);
    try {
      const t = nsToSeconds(mtimeNs);
      lutimesSync(tempAbs, t, t);
      renameSync(tempAbs, abs);
    } catch (err) {
      unlinkQuietSync(tempAbs);
      throw err;
    }
  }

  /**
   * DATA arrives in place (ConnHandler.dataTarget): the frame's data is copied by the decoder straight into
   * the piece being assembled. Undefined sends the frame the ordinary way (#onData), which handles the odd
   * cases: a file given up on, a finished session.
   */
  dataTarget(
    conn: FramedConn,
    id: number,
    seq: number,
    offset: number,
    length: number,
  ): Uint8Array | undefined {
    if (this.finished) return undefined;
    const cs = this.#connState.get(conn);
    const file = this.#files.get(id);
    if (cs === undefined || file === undefined) return undefined;
    const cur = this.#assembly(cs, file, seq, offset, length);
    return cur.data.subarray(offset, offset + length);
  }

  dataLanded(conn: FramedConn, id: number, seq: number, offset: number, data: Uint8Array): void {
    if (this.finished) return;
    const cs = this.#connState.get(conn);
    const cur = cs?.current;
    if (cs === undefined || cur === undefined) return;
    if (cur.file.id !== id || cur.seq !== seq || cur.filled !== offset) {
      throw new FcpError('FCP_ERR_INTERNAL', `landed DATA ${id}/${seq}@${offset} is not the piece assembled`);
    }
    if (this.#dropped.has(id)) {
      // Given up on while this frame arrived: only now that the decoder is done with the buffer may it go back.
      this.#pool.give(cur.data);
      cs.current = undefined;
      return;
    }
    this.#advance(conn, cs, cur, data.byteLength);
  }

  /** DATA delivered as a message: for files no longer wanted, or when the session is over. */
  #onData(msg: DataMsg, conn: FramedConn): void {
    const cs = this.#connState.get(conn);
    if (cs === undefined) return;
    const file = this.#files.get(msg.id);
    if (file === undefined) {
      if (!this.#dropped.has(msg.id)) {
        throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `DATA for file id ${msg.id}, which was not requested`);
      }
      if (cs.current?.file.id === msg.id) {
        this.#pool.give(cs.current.data);
        cs.current = undefined;
      }
      return;
    }
    const n = msg.data.byteLength;
    const cur = this.#assembly(cs, file, msg.seq, msg.offset, n);
    cur.data.set(msg.data, cur.filled);
    this.#advance(conn, cs, cur, n);
  }

  /** The piece this DATA continues (or starts), after checking it fits: pieces travel whole, in order. */
  #assembly(cs: ConnState, file: RecvFile, seq: number, offset: number, n: number): Assembly {
    let cur = cs.current;
    if (cur === undefined) {
      // A piece starts: pieces travel whole and in order on one connection (spec §5.3).
      if (offset !== 0 || seq >= file.pieces) {
        throw new FcpError('FCP_ERR_FILE_RANGE', `DATA piece ${seq} at ${offset} for id ${file.id}`);
      }
      cur = { file, seq, data: this.#pool.take(pieceLength(file.size, seq)), filled: 0 };
      cs.current = cur;
    } else if (cur.file !== file || cur.seq !== seq) {
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'pieces interleaved on one connection');
    }
    if (offset !== cur.filled || cur.filled + n > cur.data.length) {
      throw new FcpError('FCP_ERR_FILE_RANGE', `DATA offset ${offset} does not continue piece ${seq}`);
    }
    return cur;
  }

  #advance(conn: FramedConn, cs: ConnState, cur: Assembly, n: number): void {
    cur.filled += n;
    this.stats.bytesDone += n;
    if (cur.filled === cur.data.length) {
      cs.current = undefined;
      this.#pieceComplete(cur, conn, cs);
    }
  }

  #pieceComplete(piece: Assembly, conn: FramedConn, cs: ConnState): void {
    const { file, seq, data } = piece;
    if (file.state[seq] !== PieceState.Absent) {
      // Sent again after a connection failed, but the first copy arrived after all: keep the first.
      this.#pool.give(data);
      this.#ack(conn, cs, { id: file.id, seq });
      return;
    }
    file.state[seq] = PieceState.Writing;
    const hash = this.hasher.pieceHash(data);
    file.hashes[seq] = hash;
    if (file.pieces === 1) {
      this.#writeSmallSync(file, data);
      this.#pool.give(data);
      if (file.settled) return;
      file.state[seq] = PieceState.Written;
      file.piecesWritten++;
      this.#ack(conn, cs, { id: file.id, seq });
      this.#maybeCommit(file);
      return;
    }
    cs.pendingWrites++;
    if (cs.pendingWrites >= MAX_PENDING_WRITES) conn.pause('writes');
    this.#writePiece(file, seq, data, hash)
      .then(
        () => {
          if (file.settled) return;
          file.state[seq] = PieceState.Written;
          file.piecesWritten++;
          this.#ack(conn, cs, { id: file.id, seq });
          this.#maybeCommit(file);
        },
        (err) => this.#fileFailed(file, err),
      )
      .finally(() => {
        this.#pool.give(data);
        cs.pendingWrites--;
        if (cs.pendingWrites < MAX_PENDING_WRITES) conn.resume('writes');
      });
  }

  /**
   * A one-piece file is written with synchronous calls (open, write; later fchmod, futimes, close, rename):
   * microseconds each, where every async call would add a thread-pool round trip ten times that — the
   * difference between hundreds and thousands of small files a second.
   */
  #writeSmallSync(file: RecvFile, data: Buffer): void {
    try {
      file.fd ??= this.#openSmallTemp(file);
      let written = 0;
      while (written < data.length)
        written += writeSync(file.fd, data, written, data.length - written, written);
    } catch (err) {
      this.#fileFailed(file, err);
    }
  }

  /**
   * The temporary file of a one-piece file. When the umask leaves its mode as it is (0644 or 0755 under the
   * usual 022), open() creates it with its final mode and the commit needs no fchmod. That needs a new
   * file (O_EXCL): a temporary left by an earlier run keeps its own mode, so it is truncated, 0600 as ever,
   * and the commit sets the mode.
   */
  #openSmallTemp(file: RecvFile): number {
    const mode = file.info.mode & MODE_MASK;
    if (this.#umask !== undefined && (mode & (this.#umask | SPECIAL_MODE_BITS)) === 0) {
      try {
        const fd = this.#root.openFileSync(
          file.tempRel,
          fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL,
          mode,
        );
        file.modeAtCreate = true;
        return fd;
      } catch (err) {
        if ((err as FcpError).code !== 'EEXIST') throw err;
      }
    }
    return this.#root.openFileSync(
      file.tempRel,
      fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC,
      0o600,
    );
  }

  #writePiece(file: RecvFile, seq: number, data: Buffer, hash: bigint): Promise<void> {
    file.writer ??= new PieceWriter({
      // Never (re)open once the session is over: that would truncate a partial kept for resume.
      open: () =>
        this.finished ? Promise.reject(new FcpError('FCP_ERR_SESSION_ABORTED')) : this.#openTemp(file),
      index: () => file.index,
    });
    return file.writer.write(seq, data, hash);
  }

  /** The temporary file, created on the first piece (truncated unless pieces were kept for a resume). */
  #openTemp(file: RecvFile): Promise<FileHandle> {
    if (file.handle !== undefined) return file.handle;
    const resume = file.resumedPieces > 0;
    const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | (resume ? 0 : fsConstants.O_TRUNC);
    file.handle = this.#root.openFile(file.tempRel, flags, 0o600);
    if (file.sidecarRel !== undefined) {
      const id = { size: file.info.size, mtimeNs: file.info.mtimeNs, pieces: file.pieces };
      file.index = resume
        ? PieceIndex.reopen(this.#root, file.sidecarRel)
        : PieceIndex.create(this.#root, file.sidecarRel, id);
      file.index.catch(() => {});
    }
    return file.handle;
  }

  #onFileEnd(msg: FileEndMsg): void {
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
        this.warn(new FcpError(codeFromWire(msg.code), undefined, { path: file.info.path }));
        this.#settle(file, msg.code);
      }
      return;
    }
    this.#maybeCommit(file);
  }

  #maybeCommit(file: RecvFile): void {
    if (file.settled || file.end === undefined || file.end.code !== 0 || file.piecesWritten < file.pieces) {
      return;
    }
    if (file.pieces <= 1) {
      this.#commitSmallSync(file, file.end.checksum);
      return;
    }
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
    try {
      await fh.chmod(file.info.mode & MODE_MASK);
      await fh.utimes(Date.now() / 1000, nsToSeconds(file.info.mtimeNs));
    } catch (err) {
      // Closed here: once the session is over nobody else will (#fileFailed then does nothing). The handle
      // stays named in the file so that #discard still knows it has a temporary to remove.
      await fh.close().catch(() => {});
      throw err;
    }
    file.handle = undefined;
    await fh.close();
    // The index goes first: a crash between the two leaves a partial without index (started over next
    // time), never a finished file with a stray .fcp-meta beside it.
    await this.#removeIndex(file);
    await rename(this.#root.resolveChecked(file.tempRel), this.#root.resolveChecked(file.rel));
    this.#files.delete(file.id);
    this.#release(file);
    this.stats.filesSent++;
    this.stats.bytesResumed += file.resumedBytes;
    this.#queueDone(file.id, 0);
  }

  #commitSmallSync(file: RecvFile, expected: bigint): void {
    if (this.hasher.fileHash(file.hashes) !== expected) {
      this.#fileFailed(file, new FcpError('FCP_ERR_FILE_CHECKSUM', undefined, { path: file.info.path }));
      return;
    }
    try {
      file.fd ??= this.#openSmallTemp(file);
      if (!file.modeAtCreate) fchmodSync(file.fd, file.info.mode & MODE_MASK);
      futimesSync(file.fd, Date.now() / 1000, nsToSeconds(file.info.mtimeNs));
      const fd = file.fd;
      file.fd = undefined;
      closeSync(fd);
      renameSync(this.#root.resolveChecked(file.tempRel), this.#root.resolveChecked(file.rel));
    } catch (err) {
      this.#fileFailed(file, err);
      return;
    }
    file.settled = true;
    this.#files.delete(file.id);
    this.#release(file);
    this.stats.filesSent++;
    this.#queueDone(file.id, 0);
  }

  #fileFailed(file: RecvFile, err: unknown): void {
    // After the session ended, a write still under way may fail (its descriptor was closed): the partial was
    // already kept or discarded by cleanup(), and must not be discarded now.
    if (file.settled || this.finished) return;
    const e = toFcpError(err, file.info.path);
    const dir = this.#root.resolveChecked(parentOf(file.rel));
    const ended =
      sessionWriteFailure(e, file.info.path, dir, file.size) ?? unwritableDestination(e, this.#root);
    if (ended !== undefined) {
      this.fail(ended);
      return;
    }
    this.warn(e);
    this.#settle(file, e.wireCode);
  }

  /** Gives up on a file: temporary and index removed, previous version untouched, the sender told. */
  #settle(file: RecvFile, code: number): void {
    file.settled = true;
    this.#files.delete(file.id);
    this.#dropped.add(file.id);
    this.#discard(file);
    this.#release(file);
    if (code !== 0) this.stats.filesFailed++;
    this.#queueDone(file.id, code);
  }

  #discard(file: RecvFile): void {
    file.writer?.stop(new FcpError('FCP_ERR_SESSION_ABORTED', 'file closed'));
    const handle = file.handle;
    const index = file.index;
    const hadFd = file.fd !== undefined;
    file.handle = undefined;
    file.index = undefined;
    if (file.fd !== undefined) {
      closeSync(file.fd);
      file.fd = undefined;
    }
    const tempAbs = this.#root.resolveChecked(file.tempRel);
    const sidecarAbs = file.sidecarRel === undefined ? undefined : this.#root.resolveChecked(file.sidecarRel);
    void (async () => {
      await handle?.then((fh) => fh.close()).catch(() => {});
      await index?.then((ix) => ix.close()).catch(() => {});
      if (handle !== undefined || hadFd || file.resumedPieces > 0) await unlinkQuiet(tempAbs).catch(() => {});
      if (sidecarAbs !== undefined && (index !== undefined || file.resumedPieces > 0)) {
        await unlinkQuiet(sidecarAbs).catch(() => {});
      }
    })();
  }

  /**
   * The session died: a partial worth resuming (some piece of a multi-piece file written) keeps its
   * temporary file and piece index; anything else is removed.
   */
  #keepOrDiscard(file: RecvFile): void {
    // A file being committed finishes on its own (its rename and index removal are under way).
    if (file.settled) return;
    // A resumed file keeps its verified pieces even if this session wrote nothing new before dying.
    if (
      file.sidecarRel === undefined ||
      file.piecesWritten === 0 ||
      (file.index === undefined && file.resumedPieces === 0)
    ) {
      this.#discard(file);
      return;
    }
    file.writer?.stop(new FcpError('FCP_ERR_SESSION_ABORTED', 'session ended'));
    const handle = file.handle;
    const index = file.index;
    file.handle = undefined;
    file.index = undefined;
    void handle?.then((fh) => fh.close()).catch(() => {});
    void index?.then((ix) => ix.close()).catch(() => {});
    this.#onPartialKept?.(
      this.#root.resolveChecked(file.tempRel),
      this.#root.resolveChecked(file.sidecarRel),
    );
  }

  async #removeIndex(file: RecvFile): Promise<void> {
    const index = file.index;
    file.index = undefined;
    if (file.sidecarRel === undefined || (index === undefined && file.resumedPieces === 0)) return;
    await index?.then((ix) => ix.close()).catch(() => {});
    await unlinkQuiet(this.#root.resolveChecked(file.sidecarRel)).catch(() => {});
  }

  #release(file: RecvFile): void {
    this.#reserved.delete(file.rel);
    this.#reserved.delete(file.tempRel);
    if (file.sidecarRel !== undefined) this.#reserved.delete(file.sidecarRel);
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
    // DONE is our last word, and the client closes every connection right after it: acks still waiting
    // for their timer would be lost, and a sender that sees a connection close before our DONE would drop
    // those pieces from its count (a pull's daemon logged 4 MiB short of what it delivered).
    for (const [conn, cs] of this.#connState) this.#flushAcks(conn, cs);
    this.control.send({
      type: MsgType.Done,
      filesSent: this.stats.filesSent,
      filesSkipped: this.stats.filesSkipped,
      filesFailed: this.stats.filesFailed,
      bytes: BigInt(this.stats.bytesDone),
    });
    this.succeed();
  }

  #applyDirMeta(dir: DirMeta): void {
    try {
      const t = nsToSeconds(dir.mtimeNs);
      this.#root.setDirMetaSync(dir.rel, dir.mode, t, storedTimeNs(t));
    } catch (err) {
      this.warn(toFcpError(err, dir.rel));
    }
  }

  #answer(id: number, action: ReadyActionValue, code = 0): void {
    if (action === ReadyAction.Skip || action === ReadyAction.Fail) this.#open.settle(id);
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
    const ended =
      sessionWriteFailure(e, path, this.#root.path, undefined) ?? unwritableDestination(e, this.#root);
    if (ended !== undefined) {
      this.fail(ended);
      return;
    }
    this.warn(e);
    this.stats.filesFailed++;
    this.#answer(id, ReadyAction.Fail, e.wireCode);
  }

  #queueDone(id: number, code: number): void {
    this.#open.settle(id);
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
    if (this.control.queuedBytes > CONTROL_BACKLOG) {
      this.control.pause('backlog');
      this.control.drained().then(
        () => this.control.resume('backlog'),
        () => {},
      );
    }
  }

  #ack(conn: FramedConn, cs: ConnState, piece: PieceRef): void {
    cs.acks.push(piece);
    if (cs.acks.length >= MAX_ACK_ENTRIES) this.#flushAcks(conn, cs);
    if (cs.ackScheduled) return;
    cs.ackScheduled = true;
    setTimeout(() => this.#flushAcks(conn, cs), ACK_DELAY_MS).unref();
  }

  #flushAcks(conn: FramedConn, cs: ConnState): void {
    cs.ackScheduled = false;
    if (cs.acks.length === 0 || conn.closed) return;
    conn.send({ type: MsgType.PieceAck, pieces: cs.acks });
    cs.acks = [];
  }
}

/**
 * The time futimes() stores for `sec` (libuv truncates to whole microseconds; Node turns a negative time
 * into now): what a directory's mtime is after its metadata was applied. Undefined when not predictable.
 */
function storedTimeNs(sec: number): bigint | undefined {
  if (!(sec >= 0) || !Number.isSafeInteger(Math.trunc(sec))) return undefined;
  const whole = Math.trunc(sec);
  const nanos = Math.trunc((sec - whole) * 1e9);
  return BigInt(whole) * 1_000_000_000n + BigInt(nanos - (nanos % 1000));
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

function unlinkQuietSync(abs: string): void {
  try {
    unlinkSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

async function unlinkQuiet(abs: string): Promise<void> {
  try {
    await unlink(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
