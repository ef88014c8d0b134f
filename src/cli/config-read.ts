/**
 * Reading fcp's and fcpd's config files (README "Configuration"): the bytes and the checks made on the open
 * file, not the TOML. Its own module, without the parser: the launcher (fcp-launch.ts) reads the client's
 * file before the rest of fcp is loaded.
 */
import { accessSync, closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { FcpError } from '../protocol/errors.js';

/** A config file is a few lines; more than this is not one (a log, an image, /dev/zero behind a link). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

// O_NONBLOCK: a FIFO at the path opens at once instead of waiting for a writer that may never come; fstat
// then refuses it. Links are followed on purpose: a config linked from a dotfiles repository is normal.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/** The text of a config file; undefined when it does not exist. */
export function readConfigText(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS);
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw cannotRead(file, err);
  }
  try {
    const st = fstatSync(fd);
    checkKind(file, st);
    checkOwner(file, st);
    return readAtMost(fd, MAX_CONFIG_BYTES, file).toString('utf8');
  } catch (err) {
    throw err instanceof FcpError ? err : cannotRead(file, err);
  } finally {
    closeSync(fd);
  }
}

/**
 * A file read by default rather than named: also none when its directory is not ours to search (a HOME left
 * at another user's, as `sudo -u` can), as ssh ignores a ~/.ssh/config it cannot open. A file we can see
 * but not read is still an error: its settings would be silently lost.
 */
export function readDefaultConfigText(file: string): string | undefined {
  try {
    accessSync(dirname(file), constants.X_OK);
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code === 'EACCES') return undefined;
  }
  return readConfigText(file);
}

/** Only a regular file of at most MAX_CONFIG_BYTES: a device or FIFO could block or never end. */
function checkKind(file: string, st: Stats): void {
  if (!st.isFile()) throw unusable(file, `not a regular file (${kindOf(st)})`);
  if (st.size > MAX_CONFIG_BYTES) throw tooBig(file, st.size);
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

/**
 * At most `max` bytes, read until end of file; a file that grew past `max` since fstat (it is someone's
 * file being edited, say) is refused rather than read on without bound. Each pass reads at least a byte or
 * ends, so the loop is bounded by `max`. (The buffer's untouched pages cost nothing: allocUnsafe.)
 */
function readAtMost(fd: number, max: number, file: string): Buffer {
  const buf = Buffer.allocUnsafe(max + 1);
  let filled = 0;
  while (filled <= max) {
    const n = readSync(fd, buf, filled, buf.length - filled, null);
    if (n === 0) return buf.subarray(0, filled);
    filled += n;
  }
  throw tooBig(file, filled);
}

/**
 * As ssh with its config files: whoever may write the file decides what fcpd serves and as whom (`root`,
 * `user`) or where fcp sends files, so it must be ours or root's and writable by no one else.
 */
function checkOwner(file: string, st: Stats): void {
  const uid = process.geteuid?.();
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
    throw unusable(file, `owned by uid ${st.uid}, not by this user or root`);
  }
  if ((st.mode & 0o022) !== 0) throw unusable(file, `writable by others (mode ${mode}): chmod go-w ${file}`);
}

function tooBig(file: string, size: number): FcpError {
  return unusable(
    file,
    `${size} bytes or more, over the ${MAX_CONFIG_BYTES / 1024 / 1024} MiB a config file may hold`,
  );
}

function unusable(file: string, what: string): FcpError {
  return new FcpError('FCP_ERR_USAGE', `${file}: ${what}`, { path: file });
}

function cannotRead(file: string, err: unknown): FcpError {
  const reason = err instanceof Error ? err.message : String(err);
  return new FcpError('FCP_ERR_USAGE', `cannot read config ${file}: ${reason}`, { path: file, cause: err });
}
