/**
 * A directory that wire paths are confined to. Every filesystem operation on a path that came from the wire
 * goes through here: the path is checked (wire-path.ts), joined under the root, the prefix checked again,
 * every directory level lstat'ed and refused if it is a symbolic link, directories created one level at a
 * time, and files opened with O_NOFOLLOW. Modelled on node-tar's unpack CHECKPATH / ENSURE_NO_SYMLINK and
 * mkdir.ts (STYLE.md rule 7).
 *
 * TOCTOU limit: node has no openat()/mkdirat(), so each operation resolves the full path again and a level
 * verified a moment ago can be swapped for a symlink before the next call. The verified-levels memo widens
 * that window to the life of the instance. This protects against hostile *peers*, whose only lever is the
 * names they send; it does not protect against a hostile *local user* who can write inside the root while a
 * transfer runs. The served root (and every directory under it) must not be writable by untrusted local
 * users; spec/security.md says so to operators.
 */

import { createHash } from 'node:crypto';
import { type BigIntStats, constants, lstatSync, mkdirSync, openSync } from 'node:fs';
import { type FileHandle, open, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { FcpError, toFcpError } from '../protocol/errors.js';
import { baseName, checkWirePath, joinWirePath, MAX_NAME_BYTES, parentOf, ROOT_ENTRY } from './wire-path.js';

const RESOLVED = Promise.resolve();

/** A directory that wire paths are resolved under and never escape. */
export class ConfinedRoot {
  /** Absolute real path of the root (symlinks resolved once, at open). */
  readonly path: string;
  /** The absolute path the root was opened as, before realpath; equal to `path` unless it went through a link. */
  readonly openedAs: string;
  readonly #prefix: string;
  /** rel -> promise settled when that level is known to be a real directory. Failed levels are removed. */
  readonly #verified = new Map<string, Promise<void>>();

  private constructor(real: string, openedAs: string) {
    this.path = real;
    this.openedAs = openedAs;
    this.#prefix = real === '/' ? '/' : `${real}/`;
  }

  /** Opens `dir` (resolved through symlinks, which the operator chose) as a root; it must be a directory. */
  static async open(dir: string): Promise<ConfinedRoot> {
    const openedAs = path.resolve(dir);
    let real: string;
    try {
      real = await realpath(openedAs);
      const st = await stat(real);
      if (!st.isDirectory()) {
        throw new FcpError('ENOTDIR', `root is not a directory: ${dir}`, { path: dir, fatal: true });
      }
    } catch (err) {
      if (err instanceof FcpError) throw err;
      const wrapped = toFcpError(err, dir);
      throw new FcpError(wrapped.code, wrapped.message, { path: dir, cause: err, fatal: true });
    }
    return new ConfinedRoot(real, openedAs);
  }

  /**
   * The same root with nothing remembered. A daemon serves one root for its whole life; each session must
   * look at the disk afresh (a directory verified an hour ago may since be gone, or be a link now).
   */
  fresh(): ConfinedRoot {
    return new ConfinedRoot(this.path, this.openedAs);
  }

  /** Checks `rel` and returns its absolute path under the root; '.' is the root itself. */
  resolve(rel: string): string {
    checkWirePath(rel);
    return this.#join(rel);
  }

  /** Makes every level of `rel` exist as a real directory, creating missing ones one level at a time. */
  async ensureDir(rel: string): Promise<void> {
    checkWirePath(rel);
    return this.#ensureLevel(rel);
  }

  /** Makes the directory that holds `rel` exist (see ensureDir). */
  async ensureParent(rel: string): Promise<void> {
    checkWirePath(rel);
    return this.#ensureLevel(parentOf(rel));
  }

  /**
   * lstat of `rel` after checking, without creating anything, that every parent level is a real directory.
   * Undefined when `rel` or one of its parents does not exist. Never follows a symlink.
   */
  async inspect(rel: string): Promise<BigIntStats | undefined> {
    checkWirePath(rel);
    if (rel !== ROOT_ENTRY && !(await this.#parentsExist(parentOf(rel)))) return undefined;
    try {
      // Metadata calls here are synchronous: microseconds each, against a thread-pool round trip ten times
      // that, on the path every small file takes.
      return lstatSync(this.#join(rel), { bigint: true });
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw toFcpError(err, rel);
    }
  }

  /** Drops what is known about `rel` and everything under it, after the owner replaced it with a non-directory. */
  forget(rel: string): void {
    if (rel === ROOT_ENTRY) {
      this.#verified.clear();
      return;
    }
    const under = `${rel}/`;
    for (const key of this.#verified.keys()) {
      if (key === rel || key.startsWith(under)) this.#verified.delete(key);
    }
  }

  /**
   * openFile() for the small-file fast path: synchronous, and only for a path whose parent this instance
   * has already verified (ensureParent was awaited), else ENOENT.
   */
  openFileSync(rel: string, flags: number, mode?: number): number {
    const abs = this.resolve(rel);
    const parent = parentOf(rel);
    if (parent !== ROOT_ENTRY && !this.#verified.has(parent))
      throw new FcpError('ENOENT', undefined, { path: rel });
    try {
      return openSync(abs, flags | constants.O_NOFOLLOW, mode);
    } catch (err) {
      throw openError(err, rel);
    }
  }

  /**
   * Opens `rel` under the root with O_NOFOLLOW added to `flags`, after checking (not creating) that every
   * parent level is a real directory; call ensureParent first to create them.
   */
  async openFile(rel: string, flags: number, mode?: number): Promise<FileHandle> {
    const abs = this.resolve(rel);
    if (!(await this.#parentsExist(parentOf(rel)))) {
      throw new FcpError('ENOENT', undefined, { path: rel });
    }
    return openNoFollowAs(abs, flags, mode, rel);
  }

  /** Joins an already checked wire path under the root, re-checking the prefix (defence in depth). */
  #join(rel: string): string {
    if (rel === ROOT_ENTRY) return this.path;
    const abs = path.resolve(this.#prefix, rel);
    if (!abs.startsWith(this.#prefix)) {
      throw new FcpError('FCP_ERR_PATH_OUTSIDE_ROOT', 'path resolves outside the root', { path: rel });
    }
    return abs;
  }

  #ensureLevel(rel: string): Promise<void> {
    if (rel === ROOT_ENTRY) return RESOLVED;
    const known = this.#verified.get(rel);
    if (known !== undefined) return known;
    const level = this.#ensureLevel(parentOf(rel)).then(() => this.#makeLevel(rel));
    this.#verified.set(rel, level);
    level.catch(() => {
      if (this.#verified.get(rel) === level) this.#verified.delete(rel);
    });
    return level;
  }

  async #makeLevel(rel: string): Promise<void> {
    const abs = this.#join(rel);
    let st = lstatOrUndefined(abs, rel);
    if (st === undefined) {
      try {
        mkdirSync(abs);
        return;
      } catch (err) {
        // Someone (another transfer, a local process) made it between our lstat and mkdir: look again.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw toFcpError(err, rel);
      }
      st = lstatOrUndefined(abs, rel);
      if (st === undefined)
        throw new FcpError('ENOENT', 'directory vanished while being created', { path: rel });
    }
    checkIsRealDir(st, rel);
  }

  /** True when every level of `dir` is a real directory; false when one is missing. Creates nothing. */
  async #parentsExist(dir: string): Promise<boolean> {
    if (dir === ROOT_ENTRY) return true;
    const known = this.#verified.get(dir);
    if (known !== undefined) {
      await known;
      return true;
    }
    if (!(await this.#parentsExist(parentOf(dir)))) return false;
    const st = lstatOrUndefined(this.#join(dir), dir);
    if (st === undefined) return false;
    checkIsRealDir(st, dir);
    if (!this.#verified.has(dir)) this.#verified.set(dir, RESOLVED);
    return true;
  }
}

function checkIsRealDir(st: { isSymbolicLink(): boolean; isDirectory(): boolean }, rel: string): void {
  if (st.isSymbolicLink()) {
    throw new FcpError('FCP_ERR_PATH_SYMLINK', `refusing to pass through a symbolic link: ${rel}`, {
      path: rel,
    });
  }
  if (!st.isDirectory()) {
    throw new FcpError('FCP_ERR_PATH_TYPE', `exists and is not a directory: ${rel}`, { path: rel });
  }
}

function lstatOrUndefined(abs: string, rel: string) {
  try {
    return lstatSync(abs);
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw toFcpError(err, rel);
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Opens `abs` with O_NOFOLLOW added: a symlink as the final component fails (as FCP_ERR_PATH_SYMLINK)
 * instead of being followed. It does not protect the parent levels; ConfinedRoot checks those.
 */
export function openNoFollow(abs: string, flags: number, mode?: number): Promise<FileHandle> {
  return openNoFollowAs(abs, flags, mode, abs);
}

async function openNoFollowAs(
  abs: string,
  flags: number,
  mode: number | undefined,
  shown: string,
): Promise<FileHandle> {
  try {
    return await open(abs, flags | constants.O_NOFOLLOW, mode);
  } catch (err) {
    throw openError(err, shown);
  }
}

function openError(err: unknown, shown: string): FcpError {
  // O_NOFOLLOW reports a symlink as ELOOP.
  if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
    return new FcpError('FCP_ERR_PATH_SYMLINK', `refusing to open a symbolic link: ${shown}`, {
      path: shown,
      cause: err,
    });
  }
  return toFcpError(err, shown);
}

const TEMP_PREFIX = '.';
const TEMP_SUFFIX = '.fcp-part';
// Same length as TEMP_SUFFIX, so whenever one name fits in NAME_MAX the other does too.
const SIDECAR_SUFFIX = '.fcp-meta';

/**
 * The wire path of the temporary file a receiver writes before renaming it onto `rel`: same directory
 * (so the rename stays on one filesystem), named `.<base>.fcp-part`, or `.fcp-<16 hex>.fcp-part` when
 * that would exceed NAME_MAX.
 */
export function tempNameFor(rel: string): string {
  return siblingName(rel, TEMP_SUFFIX);
}

/**
 * The wire path of the piece index kept beside a partial temporary file (`.<base>.fcp-meta`), so an
 * interrupted transfer resumes with only its missing pieces (spec/PROTOCOL.md §7).
 */
export function sidecarNameFor(rel: string): string {
  return siblingName(rel, SIDECAR_SUFFIX);
}

function siblingName(rel: string, suffix: string): string {
  checkWirePath(rel);
  if (rel === ROOT_ENTRY) {
    throw new FcpError('FCP_ERR_PATH_UNSAFE', 'the root has no temporary name', { path: rel });
  }
  const base = baseName(rel);
  let name = `${TEMP_PREFIX}${base}${suffix}`;
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) {
    const digest = createHash('sha256').update(base, 'utf8').digest('hex').slice(0, 16);
    name = `.fcp-${digest}${suffix}`;
  }
  return joinWirePath(parentOf(rel), name);
}
