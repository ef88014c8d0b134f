/**
 * The lstat and open calls ConfinedRoot makes, each refusing to follow a symbolic link, with the errors a
 * confined path reports (a link where a directory was expected, a link as the final component).
 */

import { type BigIntStats, constants, lstatSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { FcpError, toFcpError } from '../../protocol/errors.js';

/** Refuses a level of `root` that is a link or not a directory; the message names the root it is confined to. */
export function checkIsRealDir(
  st: { isSymbolicLink(): boolean; isDirectory(): boolean },
  rel: string,
  root: string,
): void {
  if (st.isSymbolicLink()) {
    throw new FcpError(
      'FCP_ERR_PATH_SYMLINK',
      `refusing to pass through a symbolic link: ${rel} (confined to ${root})`,
      { path: rel },
    );
  }
  if (!st.isDirectory()) {
    throw new FcpError('FCP_ERR_PATH_TYPE', `exists and is not a directory: ${rel} (in ${root})`, {
      path: rel,
    });
  }
}

// A missing path is an expected answer here, not an error: throwIfNoEntry: false spares building an Error
// (three times the cost of the lstat itself). ENOTDIR still throws.
export function lstatOrUndefined(abs: string, rel: string) {
  try {
    return lstatSync(abs, { throwIfNoEntry: false });
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw toFcpError(err, rel);
  }
}

export function lstatBig(abs: string, rel: string): BigIntStats | undefined {
  try {
    return lstatSync(abs, { bigint: true, throwIfNoEntry: false });
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw toFcpError(err, rel);
  }
}

export function isMissing(err: unknown): boolean {
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

export async function openNoFollowAs(
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

export function openError(err: unknown, shown: string): FcpError {
  // O_NOFOLLOW reports a symlink as ELOOP.
  if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
    return new FcpError('FCP_ERR_PATH_SYMLINK', `refusing to open a symbolic link: ${shown}`, {
      path: shown,
      cause: err,
    });
  }
  return toFcpError(err, shown);
}
