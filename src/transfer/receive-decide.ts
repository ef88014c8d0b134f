/**
 * Deciding what to fetch: each announced entry is checked and answered (FILE_READY: need, resume, skip or
 * fail) without waiting for the rest of the list. A directory is made or verified; a file is compared with
 * what the sink already has (rsync's quick check, or its hash with --checksum) and with a partial left by an
 * interrupted run; a link is placed at once. What needs no waiting is decided on the spot, the rest through
 * a limiter, so answers may overtake earlier ones: FILE_READY is matched by id (§5.2).
 */
import {
  type DirInfoMsg,
  errorArea,
  FcpError,
  type FileInfoMsg,
  FileKind,
  PIECE_SIZE,
  ReadyAction,
  toFcpError,
} from '../protocol/index.js';
import type { FramedConn } from '../transport/framed-conn.js';
import type { DirMetaLog } from './dir-meta-log.js';
import { Limiter } from './engine.js';
import type { FilesInProgress, ReceiveContext, RecvFile } from './receive-files.js';
import type { SinkEntry } from './store/sink.js';
import { checkWirePath, parentOf, ROOT_ENTRY, type SafePath } from './wire-path.js';
import type { LimitedDecisions } from './receive-limit.js';
import { limitedDecisions, settleRehearsed } from './receive-decide-hooks.js';
import { MODE_MASK, newRecvFile } from './receive-new-file.js';
import { loadPartial, sendHave } from './receive-resume.js';
import type { SendLimit } from './send-limit.js';

/** Entries checked against the disk at once (those that must wait for a directory or a read). */
const DECISION_CONCURRENCY = 32;
/**
 * Stop reading the control connection while this many entries wait for a decision: they settle on their own
 * (disk work only), so this pause cannot wait on the peer.
 */
const DECISION_BACKLOG = 1024;
/** Partial files whose piece index is read at once: an index may hold a million records (§7.1). */
const PARTIAL_LOADS = 2;
/** Two mtimes within this many nanoseconds are equal: futimes() takes microseconds. */
const MTIME_TOLERANCE_NS = 1000n;
/** Larger files may have a partial to resume (§7.1), which takes reading: never decided on the spot. */
const ONE_PIECE = BigInt(PIECE_SIZE);

export interface DecideOptions {
  /** Set when the single top-level file of the list is to be written under this name instead of its own. */
  singleName: string | undefined;
  /** Compare existing files by content hash (the sender announces hashes). */
  checksum: boolean;
  /** A file or link this returns false for is declined without counting (pull's --regex). */
  wantsFile: ((path: string) => boolean) | undefined;
  /** --limit: regular files are decided in turn, and those past it left out (receive-limit.ts). */
  limit?: SendLimit | undefined;
  /** A dry run (§5.6): a needed file is answered, then settled at once with no data; the sink writes nothing. */
  dryRun?: boolean;
}

export class Decider {
  readonly #ctx: ReceiveContext;
  readonly #files: FilesInProgress;
  readonly #dirs: DirMetaLog;
  readonly #control: FramedConn;
  readonly #opts: DecideOptions;
  readonly #decisions = new Limiter(DECISION_CONCURRENCY);
  readonly #partialLoads = new Limiter(PARTIAL_LOADS);
  #pending = 0;
  readonly #limited: LimitedDecisions | undefined;

  constructor(
    ctx: ReceiveContext,
    files: FilesInProgress,
    dirs: DirMetaLog,
    control: FramedConn,
    opts: DecideOptions,
  ) {
    this.#ctx = ctx;
    this.#files = files;
    this.#dirs = dirs;
    this.#control = control;
    this.#opts = opts;
    this.#limited = limitedDecisions(ctx, opts.limit, (info) => this.#decideEntry(info));
  }

  /** Entries waiting for a decision. */
  get pending(): number {
    return this.#pending;
  }

  #decide(job: () => Promise<void>): void {
    this.#pending++;
    if (this.#pending >= DECISION_BACKLOG) this.#control.pause('decisions');
    this.#decisions
      .run(job)
      .catch((err) => this.#ctx.fail(err))
      .finally(() => {
        this.#pending--;
        if (this.#pending < DECISION_BACKLOG) this.#control.resume('decisions');
      });
  }

  /**
   * Checks a wire path (the one check it gets: every name derived from it is built safe) and maps it onto
   * the destination (the single-file rename).
   */
  #destRel(path: string): SafePath {
    const rel = checkWirePath(path);
    if (this.#opts.singleName !== undefined && !path.includes('/') && path !== ROOT_ENTRY) {
      return checkWirePath(this.#opts.singleName);
    }
    return rel;
  }

  /**
   * DIR_INFO: a directory whose parent is known is made or verified at once, so the files that follow it in
   * the same read find it ready (onFileInfo); otherwise it waits for the levels above it.
   */
  onDirInfo(msg: DirInfoMsg): void {
    let rel: SafePath;
    try {
      rel = this.#destRel(msg.path);
      if (!this.#ctx.sink.prepareDirNow(rel)) {
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
      await this.#ctx.sink.prepareDir(rel);
    } catch (err) {
      this.#answerFail(msg.id, err, msg.path);
      return;
    }
    this.#dirPlaced(msg, rel);
  }

  #dirPlaced(msg: DirInfoMsg, rel: SafePath): void {
    this.#dirs.add({ rel, mode: msg.mode & MODE_MASK, mtimeNs: msg.mtimeNs });
    this.#ctx.emit({ type: 'finished', path: msg.path, kind: 'dir', size: 0, resumedBytes: 0 });
    this.#ctx.answers.ready(msg.id, ReadyAction.Skip);
  }

  /**
   * FILE_INFO: decided on the spot when its directory is known and nothing has to be read or waited for
   * (the common small file); otherwise through the limiter.
   */
  onFileInfo(info: FileInfoMsg): void {
    if (this.#opts.wantsFile !== undefined && !this.#opts.wantsFile(info.path)) {
      this.#ctx.emit({ type: 'unlisted', path: info.path });
      this.#ctx.answers.ready(info.id, ReadyAction.Skip);
      return;
    }
    if (this.#limited !== undefined && info.kind === FileKind.File) this.#limited.offer(info);
    else this.#decideEntry(info);
  }

  #decideEntry(info: FileInfoMsg): void {
    const rel = this.#claimable(info);
    if (rel === undefined) return;
    if (this.#ctx.sink.dirReady(parentOf(rel)) && this.#decideFileNow(info, rel)) return;
    this.#ctx.reservations.hold(rel);
    this.#decide(() => this.#decideFile(info, rel));
  }

  /**
   * Checks the entry's path and that no entry in progress holds it (in arrival order, so that of two
   * entries naming one path the second is refused); undefined after answering FAIL. It is held only by an
   * entry that goes on to write it or to wait: one decided on the spot and skipped (every entry of a
   * no-change re-run) is answered before anything else can claim its path, and a Set that gains and loses a
   * member per entry was a tenth of what a no-change re-run allocated.
   */
  #claimable(info: FileInfoMsg): SafePath | undefined {
    try {
      const rel = this.#destRel(info.path);
      if (rel === ROOT_ENTRY)
        throw new FcpError('FCP_ERR_PATH_TYPE', 'a file cannot replace the destination root');
      this.#ctx.reservations.checkFree(rel, info.path);
      return rel;
    } catch (err) {
      this.#answerFail(info.id, err, info.path);
      return undefined;
    }
  }

  /** The decision with nothing to wait for; false, having done nothing, when it must go the async way. */
  #decideFileNow(info: FileInfoMsg, rel: SafePath): boolean {
    try {
      return this.#decideKnown(info, rel, this.#ctx.sink.inspectNow(rel));
    } catch (err) {
      // Free before (#claimable), so whatever holds it now is this entry's own hold.
      this.#ctx.reservations.release(rel);
      this.#answerFail(info.id, err, info.path);
      return true;
    }
  }

  async #decideFile(info: FileInfoMsg, rel: SafePath): Promise<void> {
    const sink = this.#ctx.sink;
    let file: RecvFile | undefined;
    try {
      await sink.prepareDir(parentOf(rel));
      const existing = await sink.inspect(rel);
      if (this.#decideKnown(info, rel, existing)) return;
      if (
        this.#opts.checksum &&
        existing?.isFile() === true &&
        existing.size === info.size &&
        (await this.#sameHash(info, rel))
      ) {
        this.#skipFile(info, rel);
        return;
      }
      file = newRecvFile(this.#ctx, this.#files, info, rel);
      const f = file;
      if (sink.features.resume) await this.#partialLoads.run(() => loadPartial(this.#ctx, f));
      this.#start(file);
    } catch (err) {
      if (file !== undefined) this.#ctx.reservations.releaseAll([file.rel, ...file.workNames]);
      else this.#ctx.reservations.release(rel);
      this.#answerFail(info.id, err, info.path);
    }
  }

  /**
   * Decides what needs no waiting, once the parent directory exists and `existing` is what is there: true
   * when answered; false, having done nothing, when the content must be hashed (--checksum) or a partial
   * may be resumed (more than one piece). Throws for the caller to answer FAIL. `rel` is held by this entry
   * (the async way) or free (on the spot): a file started holds it, an entry answered releases it.
   */
  #decideKnown(info: FileInfoMsg, rel: SafePath, existing: SinkEntry | undefined): boolean {
    if (existing?.isDirectory()) throw new FcpError('FCP_ERR_PATH_TYPE', 'destination is a directory');
    if (info.kind === FileKind.Symlink) {
      this.#placeSymlink(info, rel, existing?.isSymbolicLink() === true);
      return true;
    }
    if (existing?.isFile() === true && existing.size === info.size) {
      if (this.#opts.checksum) return false;
      // rsync's quick check: same size, mtime within what futimes() can set.
      const delta = existing.mtimeNs - info.mtimeNs;
      if (delta <= MTIME_TOLERANCE_NS && delta >= -MTIME_TOLERANCE_NS) {
        this.#skipFile(info, rel);
        return true;
      }
    }
    if (info.size > ONE_PIECE) return false;
    this.#ctx.reservations.hold(rel); // held already on the async way
    this.#start(newRecvFile(this.#ctx, this.#files, info, rel));
    return true;
  }

  #skipFile(info: FileInfoMsg, rel: SafePath): void {
    this.#ctx.reservations.release(rel);
    this.#ctx.emit({
      type: 'skipped',
      path: info.path,
      kind: info.kind === FileKind.Symlink ? 'symlink' : 'file',
      size: info.kind === FileKind.Symlink ? 0 : Number(info.size),
    });
    this.#ctx.answers.ready(info.id, ReadyAction.Skip);
    this.#limited?.decided(info.id, false);
  }

  /** The file is expected: NEED, or RESUME after naming the pieces kept from an earlier run. */
  #start(file: RecvFile): void {
    if (!this.#opts.dryRun) this.#files.add(file);
    const held = file.resumedBytes;
    this.#ctx.emit({ type: 'needed', path: file.info.path, bytes: file.size - held, held });
    if (file.resumedPieces > 0) {
      sendHave(this.#ctx, file);
      this.#ctx.answers.ready(file.id, ReadyAction.Resume);
    } else {
      this.#ctx.answers.ready(file.id, ReadyAction.Need);
    }
    this.#limited?.decided(file.id, true);
    if (this.#opts.dryRun) settleRehearsed(this.#ctx, file);
  }

  /** --checksum: whether the local copy (of the announced size) hashes as the sender's file does. */
  async #sameHash(info: FileInfoMsg, rel: SafePath): Promise<boolean> {
    if (info.checksum === undefined)
      throw new FcpError('FCP_ERR_PROTO_MALFORMED', 'FILE_INFO without checksum');
    return (await this.#ctx.sink.hashExisting(rel, Number(info.size), this.#ctx.hasher)) === info.checksum;
  }

  /**
   * Links are recreated with their target text unchanged, never followed (spec/SECURITY.md). Synchronous:
   * `rel` (held by the caller, or free) and the sink's work names are released when it returns or throws.
   */
  #placeSymlink(info: FileInfoMsg, rel: SafePath, existingIsLink: boolean): void {
    const { sink, reservations } = this.#ctx;
    const target = info.linkTarget;
    if (target === '' || target.includes('\0')) {
      reservations.release(rel);
      throw new FcpError('FCP_ERR_PATH_UNSAFE', 'empty link target or NUL in it', { path: info.path });
    }
    if (existingIsLink && sink.readLink(rel) === target) {
      this.#skipFile(info, rel);
      return;
    }
    const workNames = sink.workNames(rel, 1);
    reservations.reserve(workNames, info.path);
    try {
      sink.placeSymlink(rel, target, info.mtimeNs);
    } finally {
      reservations.releaseAll(workNames);
      reservations.release(rel);
    }
    this.#ctx.emit({ type: 'finished', path: info.path, kind: 'symlink', size: 0, resumedBytes: 0 });
    this.#ctx.answers.done(info.id, 0);
  }

  #answerFail(id: number, err: unknown, path: string): void {
    const e = toFcpError(err, path);
    if (e.fatal && errorArea(e.code) !== 'PATH') {
      this.#ctx.fail(e);
      return;
    }
    const ended = this.#ctx.sink.sessionEndingFailure(e, path, ROOT_ENTRY as SafePath, undefined);
    if (ended !== undefined) {
      this.#ctx.fail(ended);
      return;
    }
    this.#ctx.emit({ type: 'failed', path, error: e });
    this.#ctx.answers.ready(id, ReadyAction.Fail, e.wireCode);
    this.#limited?.decided(id, false);
  }
}
