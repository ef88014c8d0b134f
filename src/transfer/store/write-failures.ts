/**
 * The receiver's errors for a destination that cannot take what is sent: a full disk and a directory it may
 * not write in. Each ends the session with one line that names the path and says what is wrong in words
 * (README "Exit codes": 2), rather than failing every following file with the same bare errno.
 */
import { accessSync, constants as fsConstants, statfsSync } from 'node:fs';
import { describeCode, FcpError, toFcpError } from '../../protocol/index.js';
import type { ConfinedRoot } from './confined-root.js';
import { formatBytes } from '../stats.js';

/** Errors that will fail every following file too. */
const OUT_OF_SPACE = new Set(['ENOSPC', 'EDQUOT']);
const DENIED = new Set(['EACCES', 'EPERM']);

/** Bytes an unprivileged writer may still use on the file system of `dir`; undefined when unknown. */
export function freeBytes(dir: string): number | undefined {
  try {
    const st = statfsSync(dir);
    return st.bavail * st.bsize;
  } catch {
    return undefined;
  }
}

/** A file found too large for the free space before any of it is sent. */
export function notEnoughSpace(path: string, needed: number, free: number): FcpError {
  return new FcpError(
    'ENOSPC',
    `not enough space for ${path}: it needs ${formatBytes(needed)}, ${formatBytes(free)} free on the destination`,
    { path, fatal: true },
  );
}

/**
 * The session-ending form of a write failure that no later file can escape (disk full, quota, read-only
 * file system), or undefined for any other error. `needed` is what the file still had to write.
 */
export function sessionWriteFailure(
  err: unknown,
  path: string,
  dir: string,
  needed: number | undefined,
): FcpError | undefined {
  const e = toFcpError(err, path);
  if (e.code === 'EROFS')
    return new FcpError(e.code, `${path}: ${describeCode(e.code)}`, { path, fatal: true });
  if (!OUT_OF_SPACE.has(e.code)) return undefined;
  const free = freeBytes(dir);
  const detail =
    needed === undefined || free === undefined
      ? ''
      : `: it needs ${formatBytes(needed)}, ${formatBytes(free)} free on the destination`;
  return new FcpError(e.code, `${describeCode(e.code)} writing ${path}${detail}`, { path, fatal: true });
}

/**
 * A permission error creating something in the destination directory itself, when that directory does not
 * let us create files at all: said once for the directory, and the session ends (nothing could arrive).
 * Undefined for anything else (a denied subdirectory fails only the files in it, each reported).
 */
export function unwritableDestination(err: unknown, root: ConfinedRoot): FcpError | undefined {
  const e = toFcpError(err);
  if (!DENIED.has(e.code)) return undefined;
  try {
    accessSync(root.path, fsConstants.W_OK | fsConstants.X_OK);
    return undefined;
  } catch {
    return new FcpError(
      e.code,
      `cannot write in the destination directory ${root.openedAs}: ${describeCode(e.code)}`,
      {
        path: root.openedAs,
        fatal: true,
      },
    );
  }
}
