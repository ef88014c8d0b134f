/**
 * The registry directory (transfer-registry.ts) held open by descriptor while fcp uses it. fcp may run as
 * root with a user's HOME (`sudo -E`): every level of `~/.local/state/fcp/transfers` is then that user's
 * to rename, and a path checked once and written by each second would let the user swap a level for their
 * own after the check, so that root creates its entries (and a background run's log) in a directory of
 * their choosing. So `fcp/` and `fcp/transfers/` are each opened (and made) through their parent's
 * descriptor, never following a link, the last is checked on its descriptor, and every file of it is
 * reached through `/proc/<pid>/fd/N/name` (pinned-dir.ts): whatever the path becomes meanwhile, what fcp
 * writes, renames and removes is in the directory it checked. The levels above `fcp/` are the user's, as
 * they name them. Without /proc the files are reached by path (spec/SECURITY.md §8 states the limit).
 */
import { closeSync, constants, fchmodSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { FcpError } from '../protocol/index.js';
import { canPinDirs, procFdPrefix } from '../transfer/store/pinned-dir.js';
import { heldDirProblem } from './registry-trust.js';

/** A level below the user's own: opened only as a real directory, never through a link. */
const LEVEL_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** The registry directory, held. */
export interface HeldRegistry {
  /** The directory as the user names it: what fcp shows (a background run's log). */
  readonly path: string;
  /** What its files are reached through: `/proc/<pid>/fd/N` while held, else `path`. */
  readonly via: string;
  close(): void;
}

/**
 * Creates the registry directory `dir` if need be, makes it 0700 (other users see nothing of it) and holds
 * it. A link planted at `fcp/` or `transfers/` is refused, never followed or chmodded; FCP_ERR_USAGE naming
 * the directory when refused or not ours.
 */
export function createRegistryDir(dir: string): HeldRegistry {
  mkdirSync(path.dirname(path.dirname(dir)), { recursive: true, mode: 0o700 });
  const fd = openLevels(dir, mkdirOneLevel);
  try {
    fchmodSync(fd, 0o700);
    const problem = heldDirProblem(fd, dir);
    if (problem !== undefined) throw new FcpError('FCP_ERR_USAGE', problem, { path: dir });
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return held(dir, fd);
}

/**
 * Holds the registry directory `dir` to read it; undefined when there is none or it is not to be trusted
 * (registry-trust.ts): it then lists nothing.
 */
export function holdRegistryDir(dir: string): HeldRegistry | undefined {
  let fd: number;
  try {
    fd = openLevels(dir, () => {});
  } catch {
    return undefined;
  }
  if (heldDirProblem(fd, dir) === undefined) return held(dir, fd);
  closeSync(fd);
  return undefined;
}

/** Opens `dir` (…/fcp/transfers) one level at a time from the user's state directory, `make`-ing each. */
function openLevels(dir: string, make: (levelVia: string) => void): number {
  const fcpDir = path.dirname(dir);
  let parent = openSync(path.dirname(fcpDir), constants.O_RDONLY | constants.O_DIRECTORY);
  for (const level of [fcpDir, dir]) {
    const levelVia = path.join(viaOf(parent, path.dirname(level)), path.basename(level));
    try {
      make(levelVia);
      parent = openLevel(levelVia, level, parent);
    } catch (err) {
      closeSync(parent);
      throw err;
    }
  }
  return parent;
}

/** Opens `levelVia` (shown as `level`), then closes `parent`, the descriptor it was reached through. */
function openLevel(levelVia: string, level: string, parent: number): number {
  let fd: number;
  try {
    fd = openSync(levelVia, LEVEL_FLAGS);
  } catch (err) {
    throw new FcpError('FCP_ERR_USAGE', `${level} is not a directory (a symbolic link?): not used`, {
      path: level,
      cause: err,
    });
  }
  closeSync(parent);
  return fd;
}

/** mkdir that never follows a link: an existing link stays (and is refused when opened). */
function mkdirOneLevel(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

function viaOf(fd: number, dir: string): string {
  return canPinDirs() ? `${procFdPrefix()}${fd}` : dir;
}

function held(dir: string, fd: number): HeldRegistry {
  let open = true;
  return {
    path: dir,
    via: viaOf(fd, dir),
    close: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}
