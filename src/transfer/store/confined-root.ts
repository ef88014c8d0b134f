/**
 * A directory that wire paths are confined to. Every filesystem operation on a path that came from the wire
 * goes through here: the path is checked (wire-path.ts), joined under the root, the prefix checked again,
 * every directory level lstat'ed and refused if it is a symbolic link, directories created one level at a
 * time, and files opened with O_NOFOLLOW. Modelled on node-tar's unpack CHECKPATH / ENSURE_NO_SYMLINK and
 * mkdir.ts (STYLE.md rule 7).
 *
 * A receiver's destination on Linux also holds verified levels open (held-dirs.ts) and each operation
 * reaches its name through the held parent's descriptor, so a local user who can write in the destination
 * and swaps a level for a link between our lstat and our open, mkdir or rename only makes that call fail:
 * nothing is created where the link leads (spec/SECURITY.md §11). Under a daemon's --root every level is
 * held (freshHeld); a daemon serving its account and a pull's destination on the client hold the levels
 * another local user could swap and every level below them, and reach the private rest by path
 * (freshHoldingExposed). Where nothing is held (systems without /proc, a --root of '/') each operation
 * resolves the full path again: a level verified a moment ago can be swapped before the next call, and
 * such a destination must not be writable by untrusted local users (§12).
 */

import { type BigIntStats, closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { FcpError, toFcpError } from '../../protocol/errors.js';
import { resolveRootDir } from './root-dir.js';
import { checkWirePath, parentOf, ROOT_ENTRY, type SafePath } from '../wire-path.js';
import { checkIsRealDir, lstatBig, lstatOrUndefined, openError, openNoFollowAs } from './no-follow.js';
import { applyDirMeta, unchanged } from './dir-meta-fd.js';
import { HeldDirs } from './held-dirs.js';
import { canPinDirs } from './pinned-dir.js';

const RESOLVED = Promise.resolve();
/** An empty, '.' or '..' segment, which includes a leading, trailing or doubled '/'. */
const NOT_NORMAL_FORM = /(?:^|\/)\.{0,2}(?:\/|$)/;

/** A directory that wire paths are resolved under and never escape. */
export class ConfinedRoot {
  /** Absolute real path of the root (symlinks resolved once, at open). */
  readonly path: string;
  /** The absolute path the root was opened as, before realpath; equal to `path` unless it went through a link. */
  readonly openedAs: string;
  readonly #prefix: string;
  /** rel -> promise settled when that level is known to be a real directory. Failed levels are removed. */
  readonly #verified = new Map<string, Promise<void>>();
  /** The levels of #verified whose promise has resolved: what the synchronous calls may rely on. */
  readonly #ready = new Set<string>();
  /** The levels of #ready that this instance created itself with mkdir: empty when made (see madeEmpty). */
  readonly #madeHere = new Set<string>();
  /** The levels held open (freshHeld, freshHoldingExposed); undefined where every call goes by path. */
  readonly #held: HeldDirs | undefined;

  private constructor(real: string, openedAs: string, held?: HeldDirs) {
    this.path = real;
    this.openedAs = openedAs;
    this.#prefix = real === '/' ? '/' : `${real}/`;
    this.#held = held;
  }

  /** Opens `dir` (resolved through symlinks, which the operator chose) as a root; it must be a directory. */
  static async open(dir: string): Promise<ConfinedRoot> {
    return new ConfinedRoot(await resolveRootDir(dir), path.resolve(dir));
  }

  /**
   * The same root with nothing remembered. A daemon serves one root for its whole life; each session must
   * look at the disk afresh (a directory verified an hour ago may since be gone, or be a link now).
   */
  fresh(): ConfinedRoot {
    return new ConfinedRoot(this.path, this.openedAs);
  }

  /**
   * fresh(), holding every level it verifies open (a daemon's --root; see the header). By path where
   * nothing can be held, and for '/', which holds every path of the system anyway.
   */
  freshHeld(): ConfinedRoot {
    if (this.path === '/' || !canPinDirs()) return this.fresh();
    return new ConfinedRoot(this.path, this.openedAs, HeldDirs.open(this.path));
  }

  /**
   * fresh(), holding open the levels another local user could swap and every level below them, the rest
   * reached by path at its cost (a pull's destination, a daemon's without --root: see the header). A '/'
   * is judged as any other root: what matters here is where a swap would send a write, not whether it
   * leaves the root. By path where nothing can be held.
   */
  freshHoldingExposed(): ConfinedRoot {
    if (!canPinDirs()) return this.fresh();
    return new ConfinedRoot(this.path, this.openedAs, HeldDirs.whereExposed(this.path));
  }

  /**
   * The directory `rel` (a real directory: see ensureDir) as a root of its own, holding its levels when this
   * one does: opened through the held parent, never by its path again.
   */
  async subRoot(rel: string): Promise<ConfinedRoot> {
    const checked = checkWirePath(rel);
    if (this.#held === undefined) return ConfinedRoot.open(this.#join(checked));
    if (!this.#parentsExistSync(checked)) throw new FcpError('ENOENT', undefined, { path: rel });
    const abs = this.#join(checked);
    return new ConfinedRoot(abs, abs, this.#held.openSub(checked, abs));
  }

  /** Lets go of every level held (the session is over); a later call re-opens what it needs, then closes it. */
  release(): void {
    this.#held?.release();
  }

  /**
   * Calls `fn` with the path to operate on `rel` by, at once (synchronously): under a held root it reaches
   * `rel` through its parent's descriptor, valid during `fn` only, unless that parent is one no other user
   * can swap (freshHoldingExposed), which goes by path. Its parent levels must be directories (verified
   * here when not known yet: ENOENT when one is missing).
   */
  withPath<T>(rel: SafePath, fn: (abs: string) => T): T {
    if (this.#held === undefined) return fn(this.#join(rel));
    this.#holdParent(rel);
    return this.#held.use(rel, fn);
  }

  /** withPath() for a call that settles later. */
  async withPathAsync<T>(rel: SafePath, fn: (abs: string) => Promise<T>): Promise<T> {
    if (this.#held === undefined) return fn(this.#join(rel));
    this.#holdParent(rel);
    return this.#held.useAsync(rel, fn);
  }

  /** Checks `rel` and returns its absolute path under the root; '.' is the root itself. */
  resolve(rel: string): string {
    return this.#join(checkWirePath(rel));
  }

  /** resolve() for a path checked already (the receiver checks each wire path once, when it arrives). */
  resolveChecked(rel: SafePath): string {
    return this.#join(rel);
  }

  /** Makes every level of `rel` exist as a real directory, creating missing ones one level at a time. */
  async ensureDir(rel: string): Promise<void> {
    return this.#ensureLevel(checkWirePath(rel));
  }

  /** ensureDir() for a path checked already. */
  ensureDirChecked(rel: SafePath): Promise<void> {
    return this.#ensureLevel(rel);
  }

  /** Makes the directory that holds `rel` exist (see ensureDir). */
  async ensureParent(rel: string): Promise<void> {
    return this.#ensureLevel(parentOf(checkWirePath(rel)));
  }

  /**
   * ensureDir() done at once when the parent isReadyDir(): true when `rel` is now a real directory (made or
   * verified), false when it must be awaited through ensureDirChecked() (a level above it, or it, is under
   * way). Throws as ensureDir() rejects.
   */
  ensureDirNow(rel: SafePath): boolean {
    if (this.isReadyDir(rel)) return true;
    if (this.#verified.has(rel) || !this.isReadyDir(parentOf(rel))) return false;
    this.#makeLevel(rel);
    this.#verified.set(rel, RESOLVED);
    this.#ready.add(rel);
    return true;
  }

  /**
   * True when this instance already knows `dir` and every level above it to be real directories (made or
   * verified, not merely under way): the synchronous calls below may then be used under it.
   */
  isReadyDir(dir: SafePath): boolean {
    return dir === ROOT_ENTRY || this.#ready.has(dir);
  }

  /**
   * True when `dir` is ready and was created by this instance's own mkdir, so it was empty then: whatever is
   * in it now was put there by its owner (the receiver, which writes each path once) or by another process.
   */
  madeEmpty(dir: SafePath): boolean {
    return this.#madeHere.has(dir) && this.#ready.has(dir);
  }

  /**
   * lstat of `rel` after checking, without creating anything, that every parent level is a real directory.
   * Undefined when `rel` or one of its parents does not exist. Never follows a symlink.
   */
  async inspect(rel: string): Promise<BigIntStats | undefined> {
    return this.inspectChecked(checkWirePath(rel));
  }

  /** inspect() for a path checked already. */
  async inspectChecked(rel: SafePath): Promise<BigIntStats | undefined> {
    if (rel !== ROOT_ENTRY && !(await this.#parentsExist(parentOf(rel)))) return undefined;
    return this.withPath(rel, (abs) => lstatBig(abs, rel));
  }

  /**
   * inspect() without waiting, for a path whose parent isReadyDir() (else FCP_ERR_INTERNAL): the small-file
   * fast path, where a thread-pool round trip would cost ten times the lstat itself.
   */
  inspectInReadyDir(rel: SafePath): BigIntStats | undefined {
    if (!this.isReadyDir(parentOf(rel))) {
      throw new FcpError('FCP_ERR_INTERNAL', 'inspectInReadyDir outside a verified directory', { path: rel });
    }
    return this.withPath(rel, (abs) => lstatBig(abs, rel));
  }

  /** Drops what is known about `rel` and everything under it, after the owner replaced it with a non-directory. */
  forget(rel: string): void {
    this.#held?.forget(rel as SafePath);
    if (rel === ROOT_ENTRY) {
      this.#verified.clear();
      this.#ready.clear();
      this.#madeHere.clear();
      return;
    }
    const under = `${rel}/`;
    for (const key of this.#verified.keys()) {
      if (key === rel || key.startsWith(under)) this.#verified.delete(key);
    }
    for (const set of [this.#ready, this.#madeHere]) {
      for (const key of set) {
        if (key === rel || key.startsWith(under)) set.delete(key);
      }
    }
  }

  /**
   * openFile() for the small-file fast path: synchronous, and only for a checked path whose parent
   * isReadyDir(), else ENOENT.
   */
  openFileSync(rel: SafePath, flags: number, mode?: number): number {
    if (!this.isReadyDir(parentOf(rel))) throw new FcpError('ENOENT', undefined, { path: rel });
    return this.withPath(rel, (abs) => {
      try {
        return openSync(abs, flags | constants.O_NOFOLLOW, mode);
      } catch (err) {
        throw openError(err, rel);
      }
    });
  }

  /**
   * Sets a directory's mode and times, synchronously, through a descriptor opened with O_DIRECTORY |
   * O_NOFOLLOW after every level above it was found a real directory (spec/PROTOCOL.md §6.2). Returns false,
   * touching nothing, when the directory already has exactly this mode and the mtime `storedNs` that
   * futimes() would store (read now, after every write into it: applying would change nothing).
   */
  setDirMetaSync(
    rel: SafePath,
    mode: number,
    timeSec: number | string,
    storedNs: bigint | undefined,
  ): boolean {
    if (!this.#parentsExistSync(parentOf(rel))) throw new FcpError('ENOENT', undefined, { path: rel });
    if (this.#held !== undefined) {
      if (!this.#parentsExistSync(rel)) throw new FcpError('ENOENT', undefined, { path: rel });
      // The level itself is held: mode and times go through its descriptor, whatever its name is now.
      // One reached by path (no other user can swap it) goes by path, as without holding.
      if (this.#held.holds(rel)) {
        return this.#held.useDir(rel, (fd) =>
          applyDirMeta(fd, fstatSync(fd, { bigint: true }), mode, timeSec, storedNs),
        );
      }
    }
    const abs = this.#join(rel);
    // Only an answer that makes the write a no-op is used: a link or anything odd goes on to the open,
    // which refuses it as before.
    const st = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
    if (st?.isDirectory() === true && unchanged(st, mode, storedNs)) return false;
    let fd: number;
    try {
      fd = openSync(abs, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    } catch (err) {
      throw openError(err, rel);
    }
    try {
      return applyDirMeta(fd, undefined, mode, timeSec, storedNs);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Opens `rel` under the root with O_NOFOLLOW added to `flags`, after checking (not creating) that every
   * parent level is a real directory; call ensureParent first to create them.
   */
  async openFile(rel: string, flags: number, mode?: number): Promise<FileHandle> {
    const checked = checkWirePath(rel);
    if (!(await this.#parentsExist(parentOf(checked)))) {
      throw new FcpError('ENOENT', undefined, { path: rel });
    }
    return this.withPathAsync(checked, (abs) => openNoFollowAs(abs, flags, mode, rel));
  }

  /** Joins an already checked wire path under the root, re-checking the prefix (defence in depth). */
  #join(rel: SafePath): string {
    if (rel === ROOT_ENTRY) return this.path;
    // A checked path is in normal form already, so appending it is what path.resolve would return, without
    // its garbage: on a daemon receiving small files, path.resolve was a quarter of all bytes allocated.
    // Anything else (a caller that skipped checkWirePath) goes the long way and meets the prefix check.
    if (!NOT_NORMAL_FORM.test(rel)) return this.#prefix + rel;
    const abs = path.resolve(this.#prefix, rel);
    if (!abs.startsWith(this.#prefix)) {
      throw new FcpError('FCP_ERR_PATH_OUTSIDE_ROOT', `${rel} resolves outside ${this.path}`, { path: rel });
    }
    return abs;
  }

  #ensureLevel(rel: SafePath): Promise<void> {
    if (rel === ROOT_ENTRY) return RESOLVED;
    const known = this.#verified.get(rel);
    if (known !== undefined) return known;
    const level = this.#ensureLevel(parentOf(rel)).then(() => this.#makeLevel(rel));
    this.#verified.set(rel, level);
    level.then(
      () => {
        // Not if forget() dropped it meanwhile: what was made may since have been replaced.
        if (this.#verified.get(rel) === level) this.#ready.add(rel);
      },
      () => {
        if (this.#verified.get(rel) === level) this.#verified.delete(rel);
      },
    );
    return level;
  }

  #makeLevel(rel: SafePath): void {
    let st = this.withPath(rel, (abs) => lstatOrUndefined(abs, rel));
    if (st === undefined) {
      try {
        this.withPath(rel, (abs) => mkdirSync(abs));
        // Opened through the parent with O_NOFOLLOW: a link swapped in since the mkdir is refused.
        this.#held?.hold(rel);
        this.#madeHere.add(rel);
        return;
      } catch (err) {
        // Someone (another transfer, a local process) made it between our lstat and mkdir: look again.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw toFcpError(err, rel);
      }
      st = this.withPath(rel, (abs) => lstatOrUndefined(abs, rel));
      if (st === undefined)
        throw new FcpError('ENOENT', 'directory vanished while being created', { path: rel });
    }
    checkIsRealDir(st, rel, this.path);
    this.#held?.hold(rel, st);
  }

  /** True when every level of `dir` is a real directory; false when one is missing. Creates nothing. */
  async #parentsExist(dir: SafePath): Promise<boolean> {
    if (dir === ROOT_ENTRY) return true;
    const known = this.#verified.get(dir);
    if (known !== undefined) {
      await known;
      return true;
    }
    if (!(await this.#parentsExist(parentOf(dir)))) return false;
    return this.#verifyLevel(dir);
  }

  /** #parentsExist without waiting: a level not yet known ready (even one under way) is lstat'ed afresh. */
  #parentsExistSync(dir: SafePath): boolean {
    if (this.isReadyDir(dir)) return true;
    if (!this.#parentsExistSync(parentOf(dir))) return false;
    return this.#verifyLevel(dir);
  }

  #verifyLevel(dir: SafePath): boolean {
    const st = this.withPath(dir, (abs) => lstatOrUndefined(abs, dir));
    if (st === undefined) return false;
    checkIsRealDir(st, dir, this.path);
    this.#held?.hold(dir, st);
    if (!this.#verified.has(dir)) {
      this.#verified.set(dir, RESOLVED);
      this.#ready.add(dir);
    }
    return true;
  }

  /** Under a held root: verifies (and holds) the levels above `rel` that are not held yet. */
  #holdParent(rel: SafePath): void {
    const dir = parentOf(rel);
    if (this.#held!.has(dir)) return;
    if (!this.#parentsExistSync(dir)) throw new FcpError('ENOENT', undefined, { path: rel });
  }
}
