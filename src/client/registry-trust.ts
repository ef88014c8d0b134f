/**
 * What the transfer registry may trust of its own files (spec/SECURITY.md "The transfer registry"). fcp may
 * run as root with a user's HOME (`sudo -E`): the directory and its entries are then the user's to forge, so
 * a directory or entry that is a link, owned by another user, or writable by group or others is not read;
 * a pid is only ever a process's own (an integer above 1: never 0, -1 or init, which kill() fans out or
 * would stop the machine); and the only file fcp removes beside an entry is the log it names itself.
 */
import { constants, fstatSync, lstatSync, type Stats } from 'node:fs';

/** Why `stats` (of the registry directory or an entry) is not to be trusted; undefined when it is. */
function distrust(stats: Stats, kind: 'directory' | 'file'): string | undefined {
  if (stats.isSymbolicLink()) return 'is a symbolic link';
  if (kind === 'directory' ? !stats.isDirectory() : !stats.isFile()) return `is not a ${kind}`;
  const euid = process.geteuid?.();
  if (euid !== undefined && stats.uid !== euid) return `is owned by uid ${stats.uid}, not by uid ${euid}`;
  if ((stats.mode & 0o022) !== 0) return 'is writable by group or others';
  return undefined;
}

/**
 * Why the registry directory `dir` is not to be read (a sentence naming it), or undefined when it may be;
 * a directory that does not exist is fine: it lists nothing.
 */
export function registryDirProblem(dir: string): string | undefined {
  let stats: Stats;
  try {
    stats = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return `${dir}: ${(err as Error).message}`;
  }
  const why = distrust(stats, 'directory');
  return why === undefined ? undefined : `${dir} ${why}: the transfer registry is ignored`;
}

/** Why the registry directory held as `fd` (shown as `dir`) is not to be used, or undefined when it may be. */
export function heldDirProblem(fd: number, dir: string): string | undefined {
  const why = distrust(fstatSync(fd), 'directory');
  return why === undefined ? undefined : `${dir} ${why}: the transfer registry is ignored`;
}

/** Why the open entry `fd` is not to be read, or undefined when it may be. */
export function entryProblem(fd: number): string | undefined {
  return distrust(fstatSync(fd), 'file');
}

/** Flags that open an entry without following a link (and without blocking on a FIFO put in its place). */
export const ENTRY_OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A pid fcp may signal: an integer above 1 (kill(0), kill(-1) and kill(-N) reach groups; 1 is init). */
export function isSignallablePid(pid: unknown): pid is number {
  return typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 1;
}
