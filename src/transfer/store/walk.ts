/**
 * Streaming tree walk, depth first, in byte order of names (deterministic, like rsync). Memory is bounded by
 * the depth times the widest directory on the current branch, not by the size of the tree: each open
 * directory keeps only its sorted list of names and a cursor.
 *
 * A directory another local user could swap for a link (swap-exposure.ts), every directory below it, and
 * under a daemon's --root every directory, is read while held open (pinned-dir.ts): its children are listed
 * and lstat'ed through its descriptor, so a directory swapped for a link meanwhile is not followed. Every
 * file's listing records its device and inode, for the open that reads it later to check against.
 */

import { type BigIntStats, constants, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { lstat, stat } from 'node:fs/promises';
import path from 'node:path';
import { FcpError, toFcpError } from '../../protocol/errors.js';
import { keepShape } from '../../protocol/kept-shapes.js';
import type { Selector } from '../select.js';
import { checkWirePath, compareUtf8, joinWirePath, MAX_PATH_BYTES, ROOT_ENTRY } from '../wire-path.js';
import { type PinnedDir, type PinOptions, pinDir, pinnedPath, unpinDir } from './pinned-dir.js';
import { othersCanReplace, type Owned, owned, pathExposed } from './swap-exposure.js';

export type EntryKind = 'file' | 'dir' | 'symlink' | 'other';

/** One entry of a walk. `rel` is its wire path, `abs` where it is on this machine. */
export interface WalkEntry {
  rel: string;
  abs: string;
  kind: EntryKind;
  /** st_mode & 0o7777. */
  mode: number;
  size: bigint;
  mtimeNs: bigint;
  /** The link's text as stored (never followed); only for kind 'symlink'. */
  linkTarget?: string;
  /** Device and inode as listed (files): an open that finds another file there refuses it. */
  dev?: bigint;
  ino?: bigint;
}

interface OpenDir {
  readonly rel: string;
  readonly abs: string;
  /** Held open while listed: its children are reached through `pin.via`. */
  readonly pin: PinnedDir;
  /** Its owner and mode: whether its subdirectories' names could be swapped under us. */
  readonly owner: Owned;
  /** Names that can cross the wire (valid UTF-8), in byte order. */
  readonly names: string[];
  next: number;
}

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK } = constants;

/** Entries of one batch at most (see walkBatches). */
const MAX_BATCH = 512;

// An lstat an entry: its BigIntStats die with the session (protocol/kept-shapes.ts).
keepShape(lstatSync('/', { bigint: true }));

/**
 * Walks `abs`, naming it `topRel` ('.' means its contents go to the destination itself). A directory is
 * yielded before its contents; symlinks are yielded, never followed; FIFOs, sockets and devices come as
 * kind 'other' for the caller to report. Problems with single entries go to `onWarning` and the walk goes
 * on; only a failing lstat of `abs` itself throws, or a top found outside `within` (a daemon's --root, as
 * a real path) when it is read.
 */
export async function* walk(
  abs: string,
  topRel: string,
  selector: Selector,
  onWarning: (err: FcpError) => void,
  within?: string,
): AsyncGenerator<WalkEntry> {
  for await (const batch of walkBatches(abs, topRel, selector, onWarning, within)) yield* batch;
}

/**
 * walk() in batches, for callers that handle thousands of entries a second: an async generator step costs
 * a few promises, per batch instead of per entry, and the caller writes a batch under one cork. A batch
 * ends at MAX_BATCH entries; the walk is synchronous between yields, so it reads nothing past the end of
 * the batch the caller is about to take (a directory is read when its entry is added to a batch).
 */
export async function* walkBatches(
  abs: string,
  topRel: string,
  selector: Selector,
  onWarning: (err: FcpError) => void,
  within?: string,
): AsyncGenerator<WalkEntry[]> {
  checkWirePath(topRel);
  const top = await statTop(abs, topRel);
  if (!top.isDirectory()) {
    if (topRel === ROOT_ENTRY) {
      throw new FcpError('ENOTDIR', `not a directory: ${abs}`, { path: abs, fatal: true });
    }
    if (!selector.wantsFile(topRel)) return;
    const entry = topFileEntry(
      abs,
      topRel,
      top,
      onWarning,
      within !== undefined && within !== '/' ? within : undefined,
    );
    if (entry !== undefined) yield [entry];
    return;
  }

  yield [toDirEntry(abs, topRel, top)];
  // What a local user swaps under a daemon's root would lead outside it; a root of '/' has no outside.
  // Elsewhere (a client's operand) a directory is held where another user could swap it: below a level
  // they can write (a shared team directory, /tmp), not in a private tree (spec/SECURITY.md §12).
  const hold = within !== undefined && within !== '/';
  const stack: OpenDir[] = [];
  try {
    // A '.' top the user named through a link (statTop followed it) is opened through it.
    const first = openDir(abs, abs, topRel, top, onWarning, {
      hold: hold || pathExposed(abs),
      follow: topRel === ROOT_ENTRY,
    });
    if (first !== undefined) {
      stack.push(first);
      if (hold) checkWithin(pinnedPath(first.pin, abs), within, abs);
    }
    let batch: WalkEntry[] = [];
    while (stack.length > 0) {
      if (batch.length >= MAX_BATCH) {
        yield batch;
        batch = [];
      }
      const dir = stack[stack.length - 1]!;
      const name = dir.names[dir.next++];
      if (name === undefined) {
        unpinDir(stack.pop()!.pin);
        continue;
      }
      const childRel = childWirePath(dir.rel, name, onWarning);
      if (childRel === undefined) continue;
      const childAbs = childPath(dir.abs, name);
      // Through the held directory, not the child's path, where one is held (see pinned-dir.ts).
      const childAt = dir.pin.fd === undefined ? childAbs : childPath(dir.pin.via, name);
      let st: BigIntStats;
      try {
        // Synchronous on purpose: a cached lstat takes microseconds, its promise round trip through the
        // thread pool ten times that, and a tree of small files is nothing but lstats (rsync does the same).
        st = lstatSync(childAt, { bigint: true });
      } catch (err) {
        // Vanished since readdir, or unreadable: report and go on (STYLE.md rule 10).
        onWarning(toFcpError(err, childRel));
        continue;
      }
      // st_mode as a number once: each of the Stats' is*() tests is BigInt arithmetic, per entry.
      const mode = Number(st.mode);
      if ((mode & S_IFMT) === S_IFDIR) {
        if (!selector.wantsDir(childRel)) continue;
        batch.push(toDirEntry(childAbs, childRel, st));
        // Below a held directory every level is held: its path leads through the one that could change.
        const held = hold || dir.pin.fd !== undefined || othersCanReplace(dir.owner, owned(st));
        const sub = openDir(childAbs, childAt, childRel, st, onWarning, { hold: held, follow: false });
        if (sub !== undefined) stack.push(sub);
        continue;
      }
      if (!selector.wantsFile(childRel)) continue;
      const entry = toEntry(childAbs, childAt, childRel, st, mode, onWarning);
      if (entry !== undefined) batch.push(entry);
    }
    if (batch.length > 0) yield batch;
  } finally {
    // Also when the caller stops early (a cancelled session): no descriptor outlives the walk.
    for (const dir of stack) unpinDir(dir.pin);
  }
}

/**
 * The entry of a top that is a file. Under a root (`within`) its directory is held and checked to be inside
 * the root first, and the file lstat'ed through it: a directory above it swapped for a link since the
 * operand was resolved is refused, not followed.
 */
function topFileEntry(
  abs: string,
  topRel: string,
  top: BigIntStats,
  onWarning: (err: FcpError) => void,
  within: string | undefined,
): WalkEntry | undefined {
  if (within === undefined) return toEntry(abs, abs, topRel, top, Number(top.mode), onWarning);
  const parent = path.dirname(abs);
  // Followed, then checked: a link here is judged by where it leads, with the error that names the root.
  const pin = pinDir(parent, topRel, undefined, { hold: true, follow: true });
  try {
    checkWithin(pinnedPath(pin, parent), within, abs);
    const at = childPath(pin.via, path.basename(abs));
    const st = lstatSync(at, { bigint: true });
    return toEntry(abs, at, topRel, st, Number(st.mode), onWarning);
  } finally {
    unpinDir(pin);
  }
}

/** Refuses a directory whose real path (as the kernel holds it) is no longer `root` or below it. */
function checkWithin(real: string, root: string, abs: string): void {
  if (real === root || real.startsWith(root === '/' ? '/' : `${root}/`)) return;
  throw new FcpError('FCP_ERR_PATH_OUTSIDE_ROOT', `refusing ${abs}: it no longer lies inside ${root}`, {
    path: abs,
    fatal: true,
  });
}

async function statTop(abs: string, topRel: string): Promise<BigIntStats> {
  try {
    const st = await lstat(abs, { bigint: true });
    // A '.' top is "the contents of the directory the caller named". On the client the user may have typed
    // a symlink to a directory with a trailing slash, which rsync (and the shell) follow. The daemon's
    // expandRemoteSources has already refused symlinks for such tops; below the top nothing is followed.
    if (topRel === ROOT_ENTRY && st.isSymbolicLink()) return await stat(abs, { bigint: true });
    return st;
  } catch (err) {
    const wrapped = toFcpError(err, abs);
    throw new FcpError(wrapped.code, wrapped.message, { path: abs, cause: err, fatal: true });
  }
}

/**
 * The directory's names that can cross the wire, sorted, or undefined (after a warning) when it cannot be
 * read. Synchronous like the lstats (one getdents pass: the promise and the thread-pool hop cost more than
 * the call on a tree of small directories), and as strings: a Buffer per name was 20 % of the client's
 * CPU on a 58,000-entry tree.
 */
function openDir(
  abs: string,
  at: string,
  rel: string,
  listed: BigIntStats,
  onWarning: (err: FcpError) => void,
  how: PinOptions,
): OpenDir | undefined {
  let pin: PinnedDir;
  try {
    pin = pinDir(at, rel, listed, how);
  } catch (err) {
    onWarning(toFcpError(err, rel));
    return undefined;
  }
  let names: string[];
  try {
    names = readdirSync(pin.via);
    if (names.some((name) => BEYOND_SURROGATES.test(name))) names = slowNames(pin.via, rel, names, onWarning);
    else names.sort();
  } catch (err) {
    unpinDir(pin);
    onWarning(toFcpError(err, rel));
    return undefined;
  }
  return { rel, abs, pin, owner: owned(listed), names, next: 0 };
}

/**
 * Any UTF-16 unit from the surrogates up. A name without one sorts the same by UTF-16 units as by UTF-8
 * bytes, and cannot be invalid UTF-8 (a bad byte decodes as U+FFFD).
 */
const BEYOND_SURROGATES = /[\uD800-\uFFFF]/;

/**
 * The rare directory: a name that decoded with U+FFFD is read again as bytes (valid UTF-8 has one
 * encoding, so only then can it be invalid), and the names are sorted as bytes.
 */
function slowNames(abs: string, rel: string, names: string[], onWarning: (err: FcpError) => void): string[] {
  let valid = names;
  if (names.some((name) => name.includes('\uFFFD'))) {
    valid = [];
    for (const raw of readdirSync(abs, { encoding: 'buffer' })) {
      const text = decodeExact(raw);
      if (text !== undefined) valid.push(text);
      else onWarning(notUtf8('file name', joinWirePath(rel, raw.toString('utf8'))));
    }
  }
  return valid.sort(compareUtf8);
}

/** The bytes as UTF-8 text, or undefined when they are not valid UTF-8. */
function decodeExact(raw: Buffer): string | undefined {
  const text = raw.toString('utf8');
  return !text.includes('\uFFFD') || Buffer.from(text, 'utf8').equals(raw) ? text : undefined;
}

function notUtf8(what: string, rel: string): FcpError {
  return new FcpError('FCP_ERR_PATH_ENCODING', `${what} is not valid UTF-8: ${rel}`, { path: rel });
}

/**
 * `dir/name` for a name from readdir (one segment, never '.' or '..') under a directory path in normal
 * form: what path.join returns, without the garbage of its normalising pass, which on a tree of small
 * files was 14 % of the client's allocation.
 */
function childPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

/**
 * The child's wire path, or undefined (after a warning) when it is too long to cross the wire. A name from
 * readdir is one segment that checkWirePath would pass (not empty, '.' or '..'; no '/' or NUL; at most
 * NAME_MAX bytes; decoded UTF-8, so no lone surrogate): only the length of the whole path is left to check,
 * and that by counting bytes only when the units could reach PATH_MAX.
 */
function childWirePath(dirRel: string, name: string, onWarning: (err: FcpError) => void): string | undefined {
  const rel = joinWirePath(dirRel, name);
  // A UTF-16 unit is at most 3 bytes of UTF-8.
  if (rel.length * 3 <= MAX_PATH_BYTES) return rel;
  try {
    return checkWirePath(rel);
  } catch (err) {
    onWarning(toFcpError(err, rel));
    return undefined;
  }
}

function kindOf(mode: number): EntryKind {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return 'file';
    case S_IFDIR:
      return 'dir';
    case S_IFLNK:
      return 'symlink';
    default:
      return 'other';
  }
}

function toDirEntry(abs: string, rel: string, st: BigIntStats): WalkEntry {
  return { rel, abs, kind: 'dir', mode: Number(st.mode) & 0o7777, size: st.size, mtimeNs: st.mtimeNs };
}

/** The entry at `abs`, whose lstat is `st`; a link's text is read at `at` (through its held directory). */
function toEntry(
  abs: string,
  at: string,
  rel: string,
  st: BigIntStats,
  mode: number,
  onWarning: (err: FcpError) => void,
): WalkEntry | undefined {
  const entry: WalkEntry = {
    rel,
    abs,
    kind: kindOf(mode),
    mode: mode & 0o7777,
    size: st.size,
    mtimeNs: st.mtimeNs,
    dev: st.dev,
    ino: st.ino,
  };
  if (entry.kind !== 'symlink') return entry;
  let target: string | undefined;
  try {
    target = readlinkSync(at);
    // As with names: only a target that decoded with U+FFFD is read again as bytes.
    if (target.includes('\uFFFD')) target = decodeExact(readlinkSync(at, { encoding: 'buffer' }));
  } catch (err) {
    onWarning(toFcpError(err, rel));
    return undefined;
  }
  if (target === undefined) {
    onWarning(notUtf8('link target', rel));
    return undefined;
  }
  entry.linkTarget = target;
  return entry;
}
