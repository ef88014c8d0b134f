/**
 * Reading and writing secret files (host key, local token) with the checks sshd applies to its own keys:
 * no symlinks, a regular file owned by this user, no group or other permission bits (spec/SECURITY.md §7).
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, open, rename, unlink } from 'node:fs/promises';
import { authError } from './auth-errors.js';

export const PRIVATE_FILE_MODE = 0o600;

/**
 * Reads a secret file the way sshd reads its host keys: O_NOFOLLOW, a regular file owned by this user, no
 * group or other permission bits, at most `maxBytes`. Checks are made on the open descriptor (no TOCTOU).
 */
export async function readPrivateFile(path: string, maxBytes: number): Promise<string> {
  return (await readPrivateFileOwned(path, maxBytes, ownedByUs)).text;
}

/** True for a file owned by this process's effective user. */
export function ownedByUs(uid: number): boolean {
  const euid = process.geteuid?.();
  return euid === undefined || uid === euid;
}

/** As readPrivateFile, with the owners to accept chosen by `ownerOk`; also returns the owner found. */
export async function readPrivateFileOwned(
  path: string,
  maxBytes: number,
  ownerOk: (uid: number) => boolean,
): Promise<{ text: string; uid: number }> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw authError('FCP_ERR_AUTH_INSECURE_FILE', `${path} is a symbolic link`, { path });
    }
    throw err;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile())
      throw authError('FCP_ERR_AUTH_INSECURE_FILE', `${path} is not a regular file`, { path });
    if (!ownerOk(st.uid)) {
      throw authError(
        'FCP_ERR_AUTH_INSECURE_FILE',
        `${path} is owned by uid ${st.uid}, not by us (${process.geteuid?.() ?? '?'})`,
        { path },
      );
    }
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw authError(
        'FCP_ERR_AUTH_INSECURE_FILE',
        `${path} has mode ${mode}: it must be 0600 (chmod 600 ${path})`,
        {
          path,
        },
      );
    }
    const buf = Buffer.alloc(maxBytes + 1);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    if (bytesRead > maxBytes) throw authError('FCP_ERR_AUTH_MALFORMED', `${path} is too large`, { path });
    return { text: buf.subarray(0, bytesRead).toString('utf8'), uid: st.uid };
  } finally {
    await handle.close();
  }
}

/**
 * Creates `path` (0600) with `content` unless it exists: written to a private temporary file, synced, then
 * hard-linked into place, so readers never see a partial file and of two racing writers exactly one wins.
 * Returns false when the file already existed (the content on disk is then someone else's).
 */
export async function writeNewPrivateFile(path: string, content: string): Promise<boolean> {
  const temp = await writeTemp(path, content);
  try {
    await link(temp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    // Best effort: the link (or its failure) is what counts; a 0600 temp file that will not go is harmless.
    await unlink(temp).catch(() => {});
  }
}

/** Writes `path` (0600) atomically, replacing any previous file (temp file + rename). */
export async function replacePrivateFile(path: string, content: string): Promise<void> {
  const temp = await writeTemp(path, content);
  try {
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => {}); // best effort: the rename's error is the one to report
    throw err;
  }
}

async function writeTemp(path: string, content: string): Promise<string> {
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
  const handle = await open(temp, flags, PRIVATE_FILE_MODE);
  try {
    await handle.writeFile(content);
    await handle.chmod(PRIVATE_FILE_MODE); // the umask can only have narrowed it; make it exact
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(temp).catch(() => {}); // best effort: the write's error is the one to report
    throw err;
  }
  await handle.close();
  return temp;
}
