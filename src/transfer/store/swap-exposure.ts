/**
 * Whether another local user could swap a directory on a path for a symbolic link (rename it away and put
 * a link in its place) while we read or write through it: the walk (pinned-dir.ts) and a destination
 * outside a daemon's --root (held-dirs.ts) hold such directories open, and everything below them, and
 * leave the rest to paths, which cost half as much per lstat (spec/SECURITY.md §11, §12).
 *
 * An entry's name can be changed by whoever may write its directory: the directory's owner (who can chmod
 * it), and the group or others when it grants them write, except that in a sticky directory (/tmp) they can
 * rename or replace only entries they own. We and root are the only users trusted; ACLs are not read.
 */

import { constants, lstatSync, realpathSync } from 'node:fs';
import path from 'node:path';

const GROUP_OR_OTHER_WRITE = 0o022;
const STICKY = 0o1000;
const { S_IFMT, S_IFDIR } = constants;

/** The owner and st_mode of a directory or an entry, as numbers. */
export interface Owned {
  readonly uid: number;
  readonly mode: number;
}

// Read at each call, not once at load: fcpd --user becomes its account after this module is loaded, and
// the account's own directories are then as trusted as root's.
function trusted(uid: number): boolean {
  return uid === 0 || uid === process.geteuid?.();
}

/** True when someone other than us or root could rename or replace `entry` inside `dir`. */
export function othersCanReplace(dir: Owned, entry: Owned): boolean {
  if (!trusted(dir.uid)) return true;
  if ((dir.mode & GROUP_OR_OTHER_WRITE) === 0) return false;
  return (dir.mode & STICKY) === 0 || !trusted(entry.uid);
}

/** The uid and mode of an lstat or fstat, as numbers (BigIntStats carry them as bigints). */
export function owned(st: { readonly uid: number | bigint; readonly mode: number | bigint }): Owned {
  return { uid: Number(st.uid), mode: Number(st.mode) };
}

/**
 * True when some level of `abs` (itself included) could be swapped by another user: every level is
 * lstat'ed from '/', and where a level is a link the levels of its target are judged too. An error (a level
 * gone, EACCES) counts as exposed: the caller then holds what it reads, which costs only time.
 */
export function pathExposed(abs: string): boolean {
  try {
    const resolved = path.resolve(abs);
    if (levelsExposed(resolved)) return true;
    const real = realpathSync(resolved);
    return real !== resolved && levelsExposed(real);
  } catch {
    return true;
  }
}

/**
 * The owner and mode of the directory `real` (a real path, no level of it a link) when no level of it could
 * be swapped by another user, judged by name from '/': then none can be while its owners (us, root) leave
 * the modes alone, and the path leads to this directory for good. Undefined when a level could be swapped,
 * is a link (the path changed since it was resolved), is not a directory or cannot be read.
 */
export function privateDir(real: string): Owned | undefined {
  try {
    const last = judgeLevels(real);
    return typeof last === 'object' && (last.mode & S_IFMT) === S_IFDIR ? last : undefined;
  } catch {
    return undefined;
  }
}

/** The levels of `abs` up to its first link (included), judged by name; what the link leads to is not. */
function levelsExposed(abs: string): boolean {
  return judgeLevels(abs) === 'exposed';
}

/**
 * Each level of `abs` lstat'ed from '/': 'exposed' at the first that another user could replace, 'link' at
 * the first that is a link (not followed), else the last level's owner and mode.
 */
function judgeLevels(abs: string): Owned | 'exposed' | 'link' {
  let dir = owned(lstatSync('/', { bigint: true }));
  let at = '';
  for (const name of abs.split('/')) {
    if (name === '') continue;
    at = `${at}/${name}`;
    const st = lstatSync(at, { bigint: true });
    const entry = owned(st);
    if (othersCanReplace(dir, entry)) return 'exposed';
    if (st.isSymbolicLink()) return 'link';
    dir = entry;
  }
  return dir;
}
