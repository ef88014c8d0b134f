/**
 * Files the receiver makes for itself under names anyone who can write the directory can predict (the
 * temporary `.NAME.fcp-part` and its index `.NAME.fcp-meta`): always created anew with O_EXCL, never opened
 * as found. Whatever is at the name (what an earlier run left, a link from a run killed while placing a
 * link of that name, a local user's plant in a shared directory such as /tmp, a hard link to a file
 * elsewhere that O_TRUNC would empty) is unlinked first, never written through: data written into another
 * user's inode is readable by them, and once renamed into place that file would stay theirs. unlink does not
 * follow a link, and it is reached only once the open has found every parent level a real directory (its
 * EEXIST comes after that check), so it cannot remove a file outside the root through a parent that is a
 * link. In a sticky directory another user's plant cannot be unlinked (EPERM): the file fails, untouched.
 * A second EEXIST means someone re-created the name in between: that fails the file too.
 */
import { type BigIntStats, constants as fsConstants, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { FcpError } from '../../protocol/index.js';
import type { ConfinedRoot } from './confined-root.js';
import { unlinkQuiet, unlinkQuietSync } from './posix-io.js';
import type { SafePath } from '../wire-path.js';

const CREATE = fsConstants.O_CREAT | fsConstants.O_EXCL;

function isExisting(err: unknown): boolean {
  return (err as FcpError).code === 'EEXIST';
}

/** `access` is O_WRONLY or O_RDWR. */
export async function openFresh(
  root: ConfinedRoot,
  rel: SafePath,
  access: number,
  mode: number,
): Promise<FileHandle> {
  try {
    return await root.openFile(rel, access | CREATE, mode);
  } catch (err) {
    if (!isExisting(err)) throw err;
  }
  await root.withPathAsync(rel, unlinkQuiet);
  return root.openFile(rel, access | CREATE, mode);
}

/** openFresh for the small-file fast path: synchronous. */
export function openFreshSync(root: ConfinedRoot, rel: SafePath, access: number, mode: number): number {
  try {
    return root.openFileSync(rel, access | CREATE, mode);
  } catch (err) {
    if (!isExisting(err)) throw err;
  }
  root.withPath(rel, unlinkQuietSync);
  return root.openFileSync(rel, access | CREATE, mode);
}

/**
 * Whether a kept temporary or index (found by an earlier run's name) may be trusted as this process's own:
 * a regular file with one link, owned by this user. A plant by another local user fails this, and the file
 * starts over (openFresh then replaces it, or fails where the directory's sticky bit protects it).
 */
export function isOwnPlainFile(st: Stats | BigIntStats): boolean {
  const euid = process.geteuid?.();
  return st.isFile() && Number(st.nlink) === 1 && (euid === undefined || Number(st.uid) === euid);
}
