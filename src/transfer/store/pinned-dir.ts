/**
 * A directory held open while a walk reads it, so that what the walk lists and lstats is that directory's,
 * whatever its path becomes meanwhile. Without it a local user who can write inside a walked tree swaps a
 * directory for a symbolic link between two calls, and the walk (and the opens after it) go through the
 * link: a PULL from `fcpd --root` read files outside the root that way (rsync's CVE-2024-12747 is this
 * class).
 *
 * node has no openat(), but on Linux `/proc/self/fd/N/name` resolves `name` inside the directory that
 * descriptor N holds open: each directory is opened relative to its parent's descriptor with O_NOFOLLOW, so
 * by induction every level is the one listed, and a swap shows up as a refused link or a changed inode.
 * Where there is no /proc (other systems, a sandbox without it) the walk uses paths, as it did before, and
 * spec/SECURITY.md §12 states the limit.
 *
 * Held under a daemon's --root, where a swap would lead outside what it serves, and elsewhere only where
 * another user could swap a level (swap-exposure.ts): an lstat through procfs costs ~2 us more than one by
 * path (4.6 against 2.4 us, pinned), a sixth of a no-change re-run's client CPU, so a private tree is
 * walked by path. Every file's open is still checked against its listing (device and inode) on both sides.
 */

import {
  type BigIntStats,
  closeSync,
  constants,
  existsSync,
  fstatSync,
  openSync,
  readlinkSync,
  realpathSync,
} from 'node:fs';
import { FcpError } from '../../protocol/errors.js';

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NONBLOCK;

let pinnable: boolean | undefined;

/** Whether directories can be held by descriptor: Linux with /proc mounted. Decided once. */
export function canPinDirs(): boolean {
  pinnable ??= process.platform === 'linux' && existsSync('/proc/self/fd');
  return pinnable;
}

let procFdDir: string | undefined;

/**
 * The directory of our descriptors in procfs: `/proc/<our pid>/fd/`, so the kernel skips resolving the
 * `self` link on every call (3.8 against 4.2 us an lstat, pinned); `/proc/self/fd/` where that is not our
 * own (another pid namespace). For every directory held by descriptor (here, held-dirs.ts).
 */
export function procFdPrefix(): string {
  if (procFdDir !== undefined) return procFdDir;
  let same = false;
  try {
    same = realpathSync('/proc/self') === `/proc/${process.pid}`;
  } catch {
    // No /proc/self to compare with: the plain form below.
  }
  procFdDir = same ? `/proc/${process.pid}/fd/` : '/proc/self/fd/';
  return procFdDir;
}

/** A directory being read: `via` is the prefix its children are reached through. */
export interface PinnedDir {
  /** `/proc/<pid>/fd/N` (procFdPrefix) while held; the directory's path where nothing can be held. */
  readonly via: string;
  readonly fd: number | undefined;
}

export interface PinOptions {
  /** Hold the directory; when false (or nothing can be held) it is read by path. */
  hold: boolean;
  /** Follow a link at the last component (a top the user named through one). */
  follow: boolean;
}

/**
 * Opens the directory at `path` and checks it is the one `listed` (same device and inode), when given: a
 * directory replaced since its lstat fails with FCP_ERR_FILE_CHANGED naming `rel`.
 */
export function pinDir(
  path: string,
  rel: string,
  listed: BigIntStats | undefined,
  how: PinOptions,
): PinnedDir {
  if (!how.hold || !canPinDirs()) return { via: path, fd: undefined };
  const fd = openSync(path, how.follow ? DIR_FLAGS : DIR_FLAGS | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd, { bigint: true });
    if (listed !== undefined && (st.dev !== listed.dev || st.ino !== listed.ino)) {
      throw new FcpError('FCP_ERR_FILE_CHANGED', `directory replaced while listed: ${rel}`, { path: rel });
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return { via: `${procFdPrefix()}${fd}`, fd };
}

/** Lets go of a directory (nothing to do for one read by path). */
export function unpinDir(dir: PinnedDir): void {
  if (dir.fd !== undefined) closeSync(dir.fd);
}

/**
 * The path the kernel holds for a pinned directory now (Linux), to check it lies inside a root; the
 * directory's own path where nothing is held.
 */
export function pinnedPath(dir: PinnedDir, path: string): string {
  return dir.fd === undefined ? path : readlinkSync(dir.via);
}
