/**
 * The directories a receiver writes into (under `fcpd --root`, a daemon serving its account, a pull's
 * local destination), held open so that what it creates lands in
 * the directory it verified, whatever that directory's path leads to meanwhile. Without them every
 * operation resolved the whole path again, and a local user who can write inside the root swapped a level
 * for a link between the lstat that verified it and the open, mkdir or rename under it: the daemon then
 * created files wherever the link pointed (spec/SECURITY.md §11, "The receiver under --root").
 *
 * As the walk does (pinned-dir.ts), each level is opened through its parent's descriptor as
 * `/proc/<pid>/fd/N/name` with O_NOFOLLOW and checked against the inode it was verified by, and every name
 * under it is reached the same way. Descriptors are bounded (LRU): a level let go is re-opened from its
 * held parent and must still be the same inode, else FCP_ERR_FILE_CHANGED naming it, never a write.
 *
 * A descriptor number is only a name while it is open: a path built from it is used under a lease (use /
 * useAsync), and a leased level is neither evicted nor closed, so a number is never reused under a call in
 * flight. After release() levels are re-opened for one call at a time and closed again.
 *
 * A client's destination and a daemon's without --root (whereExposed) hold only what another local user
 * could swap: a level is reached by its path while no other user can rename it or a level above it (its
 * parent is ours or root's and not writable by group or others, or sticky and the level ours or root's:
 * swap-exposure.ts), as rsync and scp write; the first level that fails that test is held, and so is every
 * level below it, however private it looks, since its path leads through the one that can change
 * (spec/SECURITY.md §11). The decision is made once per level, from the lstat that verified it (or the one
 * after our mkdir): in a parent reached by path nobody else can change what that name is, and only a
 * level's owner (us, root) can chmod it to let others in. The receiver applies the sender's modes only
 * once every file is written, deepest first (receiver.ts), so nothing is made below a level after that;
 * only --fsync's read-only opens of the directories to sync come later.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync } from 'node:fs';
import { FcpError } from '../../protocol/errors.js';
import { checkIsRealDir, lstatOrUndefined, openError } from './no-follow.js';
import { procFdPrefix } from './pinned-dir.js';
import { othersCanReplace, type Owned, owned, privateDir } from './swap-exposure.js';
import { baseName, parentOf, ROOT_ENTRY, type SafePath } from '../wire-path.js';

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** The name `rel` reached through its parent's descriptor (the parent itself as '.'). */
function procPath(parent: Level, rel: SafePath): string {
  return `${procFdPrefix()}${parent.fd!}/${rel === ROOT_ENTRY ? '.' : baseName(rel)}`;
}

/** Held descriptors per destination: a deep tree's levels, not one per directory ever made. */
export const DEFAULT_HELD_LIMIT = 256;

/** What verified a level: its lstat (the inode to hold, and who may replace what is in it). */
export interface VerifiedDir {
  readonly dev: number;
  readonly ino: number;
  readonly uid: number;
  readonly mode: number;
}

interface Level {
  /** Its wire path (the key it is held under). */
  readonly rel: string;
  fd: number | undefined;
  readonly dev: number;
  readonly ino: number;
  /** Calls in flight through this level's descriptor. */
  busy: number;
  /** Forgotten while in use: closed when the last call settles. */
  dropped: boolean;
}

/** One destination's verified directory levels, by wire path; the root is always '.'. */
export class HeldDirs {
  readonly #levels = new Map<string, Level>();
  /**
   * The levels of #levels with a descriptor open, least recently used first: what the LRU closes from. Not
   * #levels itself, which also keeps every level let go: walking past those to the first open one made
   * each open past the limit cost the number of levels let go so far (a fifth of a daemon's CPU on the
   * 1,661 directories of a no-change re-run).
   */
  readonly #inUse = new Map<string, Level>();
  /**
   * The levels reached by path (whereExposed), with their owner and mode: no other user can swap them or
   * a level above them. Their parents are all here too; the root is, unless it is held.
   */
  readonly #byPath = new Map<string, Owned>();
  /** The root's own path: it is re-opened by it (O_NOFOLLOW, same inode) once released. */
  readonly #rootPath: string;
  /** `#rootPath` with a trailing '/', to join a level's wire path to. */
  readonly #prefix: string;
  readonly #limit: number;
  #open = 0;
  #released = false;
  /** The level leased last: leasing it again needs no reordering (consecutive files of one directory). */
  #last: string = ROOT_ENTRY;

  /**
   * Takes over `root`, a directory opened O_DIRECTORY | O_NOFOLLOW by the caller, or is given the owner
   * and mode of a root reached by its path (privateDir).
   */
  private constructor(root: number | Owned, rootPath: string, limit = DEFAULT_HELD_LIMIT) {
    this.#rootPath = rootPath;
    this.#prefix = rootPath === '/' ? '/' : `${rootPath}/`;
    this.#limit = Math.max(2, limit);
    if (typeof root !== 'number') {
      this.#byPath.set(ROOT_ENTRY, root);
      return;
    }
    const st = fstatSync(root);
    const level = { rel: ROOT_ENTRY, fd: root, dev: st.dev, ino: st.ino, busy: 0, dropped: false };
    this.#levels.set(ROOT_ENTRY, level);
    this.#inUse.set(ROOT_ENTRY, level);
    this.#open = 1;
  }

  /** Opens `abs` as a root to hold, with every level under it. */
  static open(abs: string, limit?: number): HeldDirs {
    let fd: number;
    try {
      fd = openSync(abs, DIR_FLAGS);
    } catch (err) {
      throw openError(err, abs);
    }
    return new HeldDirs(fd, abs, limit);
  }

  /**
   * `abs` (a real path) as a root holding only the levels another user could swap and those below them
   * (see the header): the whole of it, as open() does, when a level of its own path could be swapped.
   */
  static whereExposed(abs: string, limit?: number): HeldDirs {
    const owner = privateDir(abs);
    return owner === undefined ? HeldDirs.open(abs, limit) : new HeldDirs(owner, abs, limit);
  }

  /** Descriptors open now (the root's included). */
  get openCount(): number {
    return this.#open;
  }

  /** Whether `dir` is a level known: held (or let go and re-openable), or reached by path. */
  has(dir: SafePath): boolean {
    return this.#levels.has(dir) || this.#byPath.has(dir);
  }

  /** Whether `dir` is a level held, whose own descriptor useDir() lends (not one reached by path). */
  holds(dir: SafePath): boolean {
    return this.#levels.has(dir);
  }

  /**
   * Holds `dir`, a name just verified (or made) in its known parent: opened through the parent with
   * O_NOFOLLOW and, when `verified` (its lstat) is given, checked to be that inode. A level held already
   * must still be the same one. In a parent reached by path a level no other user can swap is only
   * recorded, to be reached by path too.
   */
  hold(dir: SafePath, verified?: VerifiedDir): void {
    if (this.#byPath.has(dir)) return;
    const known = this.#levels.get(dir);
    if (known !== undefined) {
      if (verified !== undefined && (known.dev !== verified.dev || known.ino !== verified.ino)) {
        throw changed(dir);
      }
      return;
    }
    if (this.#keptPrivate(dir, verified)) return;
    const fd = this.#openIn(dir);
    const st = fstatSync(fd);
    if (verified !== undefined && (st.dev !== verified.dev || st.ino !== verified.ino)) {
      closeSync(fd);
      throw changed(dir);
    }
    const level = { rel: dir, fd, dev: st.dev, ino: st.ino, busy: 0, dropped: false };
    this.#levels.set(dir, level);
    this.#inUse.set(dir, level);
    this.#opened();
  }

  /** Lets go of `dir` and every level under it (the owner replaced it, or it failed). */
  forget(dir: SafePath): void {
    const under = `${dir}/`;
    const gone = (rel: string) =>
      rel !== ROOT_ENTRY && (rel === dir || dir === ROOT_ENTRY || rel.startsWith(under));
    for (const rel of this.#byPath.keys()) if (gone(rel)) this.#byPath.delete(rel);
    for (const [rel, level] of this.#levels) {
      if (!gone(rel)) continue;
      this.#levels.delete(rel);
      if (level.busy === 0) this.#close(level);
      else level.dropped = true;
    }
  }

  /**
   * Calls `fn` with the path to reach `rel` by, synchronously: `/proc/<pid>/fd/N/<name>` in its held
   * parent, or its own path under the root when its parent is reached by path.
   */
  use<T>(rel: SafePath, fn: (at: string) => T): T {
    const dir = parentOf(rel);
    if (this.#byPath.has(dir)) return fn(this.#pathOf(rel));
    const level = this.#lease(dir);
    try {
      return fn(procPath(level, rel));
    } finally {
      this.#unlease(level);
    }
  }

  /** use() for a call that settles later: the parent stays held until it does. */
  async useAsync<T>(rel: SafePath, fn: (at: string) => Promise<T>): Promise<T> {
    const dir = parentOf(rel);
    if (this.#byPath.has(dir)) return fn(this.#pathOf(rel));
    const level = this.#lease(dir);
    try {
      return await fn(procPath(level, rel));
    } finally {
      this.#unlease(level);
    }
  }

  /** Calls `fn` with the descriptor of the held level `dir` itself (fchmod, futimes, fstat). */
  useDir<T>(dir: SafePath, fn: (fd: number) => T): T {
    const level = this.#lease(dir);
    try {
      return fn(level.fd!);
    } finally {
      this.#unlease(level);
    }
  }

  /**
   * A HeldDirs whose root is the held level `dir` (a destination below a served root): opened anew through
   * its parent's descriptor and checked to be the inode held.
   */
  openSub(dir: SafePath, subPath: string, limit?: number): HeldDirs {
    const owner = this.#byPath.get(dir);
    if (owner !== undefined) return new HeldDirs(owner, subPath, limit);
    const level = this.#levels.get(dir);
    if (level === undefined) {
      throw new FcpError('FCP_ERR_INTERNAL', `directory not verified before use: ${dir}`, { path: dir });
    }
    const fd = this.use(dir, (at) => openDirIn(at, dir, this.#rootPath));
    const st = fstatSync(fd);
    if (st.dev !== level.dev || st.ino !== level.ino) {
      closeSync(fd);
      throw changed(dir);
    }
    return new HeldDirs(fd, subPath, limit);
  }

  /** Closes every descriptor not in use; those in use close when their call settles. */
  release(): void {
    this.#released = true;
    for (const level of this.#levels.values()) if (level.busy === 0) this.#close(level);
  }

  /** `rel` joined under the root (a checked wire path is in normal form). */
  #pathOf(rel: SafePath): string {
    return rel === ROOT_ENTRY ? this.#rootPath : this.#prefix + rel;
  }

  /**
   * Records `dir` as reached by path, and answers true, when its parent is and no other user could replace
   * it there (judged on `verified`, or on an lstat by path of the level just made: in such a parent nobody
   * else can change what the name is between the two).
   */
  #keptPrivate(dir: SafePath, verified: VerifiedDir | undefined): boolean {
    const parent = this.#byPath.get(parentOf(dir));
    if (parent === undefined) return false;
    const st = verified ?? lstatSync(this.#pathOf(dir), { throwIfNoEntry: false });
    if (st === undefined || (st.mode & constants.S_IFMT) !== constants.S_IFDIR) return false;
    const entry = owned(st);
    if (othersCanReplace(parent, entry)) return false;
    this.#byPath.set(dir, entry);
    return true;
  }

  #lease(dir: SafePath): Level {
    const level = this.#levels.get(dir);
    if (level === undefined) {
      throw new FcpError('FCP_ERR_INTERNAL', `directory not verified before use: ${dir}`, { path: dir });
    }
    if (level.fd === undefined) this.#reopen(dir, level);
    else if (dir !== this.#last && !this.#released) this.#touch(dir, level);
    level.busy++;
    return level;
  }

  #unlease(level: Level): void {
    level.busy--;
    if (level.busy === 0 && (this.#released || level.dropped)) this.#close(level);
  }

  /** Re-opens a level let go: through its parent (or the root's path), and it must be the same inode. */
  #reopen(dir: SafePath, level: Level): void {
    const fd = dir === ROOT_ENTRY ? this.#openRoot() : this.#openIn(dir);
    const st = fstatSync(fd);
    if (st.dev !== level.dev || st.ino !== level.ino) {
      closeSync(fd);
      throw changed(dir);
    }
    level.fd = fd;
    this.#inUse.set(dir, level);
    this.#touch(dir, level);
    this.#opened();
  }

  #openRoot(): number {
    try {
      return openSync(this.#rootPath, DIR_FLAGS);
    } catch (err) {
      throw openError(err, this.#rootPath);
    }
  }

  /**
   * Opens `dir` through its parent's descriptor, or by path in a parent reached by path: a link there fails
   * (ELOOP, or ENOTDIR for O_DIRECTORY).
   */
  #openIn(dir: SafePath): number {
    return this.use(dir, (at) => openDirIn(at, dir, this.#rootPath));
  }

  /** Most recently used last in #inUse: a Map keeps insertion order. */
  #touch(dir: string, level: Level): void {
    this.#inUse.delete(dir);
    this.#inUse.set(dir, level);
    this.#last = dir;
  }

  #opened(): void {
    this.#open++;
    if (this.#open <= this.#limit) return;
    for (const [rel, level] of this.#inUse) {
      if (this.#open <= this.#limit) return;
      if (rel !== ROOT_ENTRY && level.busy === 0) this.#close(level);
    }
  }

  #close(level: Level): void {
    if (level.fd === undefined) return;
    closeSync(level.fd);
    level.fd = undefined;
    this.#open--;
    // Not one held anew under the same name since this one was forgotten.
    if (this.#inUse.get(level.rel) === level) this.#inUse.delete(level.rel);
  }
}

/**
 * Opens a level with O_NOFOLLOW | O_DIRECTORY. A link there fails with ELOOP or ENOTDIR (the kernel checks
 * either first): the lstat then says which, in checkIsRealDir's words.
 */
function openDirIn(at: string, dir: string, root: string): number {
  try {
    return openSync(at, DIR_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') {
      const st = lstatOrUndefined(at, dir);
      if (st !== undefined) checkIsRealDir(st, dir, root);
    }
    throw openError(err, dir);
  }
}

/** A level that is another directory now than the one verified (renamed away, another put in its place). */
function changed(dir: string): FcpError {
  return new FcpError('FCP_ERR_FILE_CHANGED', `directory replaced while in use: ${dir}`, { path: dir });
}
