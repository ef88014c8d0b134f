/**
 * Whether a directory keeps other local users off what it holds (spec/SECURITY.md §14.4, PROTOCOL.md §8.3):
 * the directory itself owned by us with no group or other bits, and every level above it, up to an anchor,
 * owned by us or root and writable by nobody else unless sticky (sshd's StrictModes rule for ~/.ssh).
 * A level others may write without the sticky bit lets them rename what sits below it aside and put their
 * own in its place: a socket found again by its path then reaches them.
 */
import { lstatSync, type Stats, statSync } from 'node:fs';
import path from 'node:path';
import { FcpError } from '../protocol/errors.js';

const GROUP_OTHER_BITS = 0o077;
const GROUP_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

function ourUid(): number {
  return process.geteuid?.() ?? 0;
}

/** Why `st` (of `dir`) is not a private directory of ours, or undefined when it is. */
export function privateDirFault(st: Stats, uid = ourUid()): string | undefined {
  if (!st.isDirectory()) return 'is not a directory';
  if (st.uid !== uid) return `is owned by uid ${st.uid}, not ${uid}`;
  const mode = st.mode & 0o7777;
  if ((mode & GROUP_OTHER_BITS) !== 0) return `has mode 0${mode.toString(8)}, not 0700`;
  return undefined;
}

/** Why `st`, a level above a private directory, lets another user replace what is below it; or undefined. */
export function parentDirFault(st: Stats, uid = ourUid()): string | undefined {
  if (!st.isDirectory()) return 'is not a directory';
  if (st.uid !== uid && st.uid !== 0) return `is owned by uid ${st.uid}, neither ${uid} nor root`;
  const mode = st.mode & 0o7777;
  if ((mode & GROUP_OTHER_WRITE) !== 0 && (mode & STICKY) === 0)
    return `is writable by others (mode 0${mode.toString(8)}) without the sticky bit`;
  return undefined;
}

/** Whether `dir` is a private directory of ours (real, owned by us, mode 0700); false when absent. */
export function isPrivateDir(dir: string): boolean {
  try {
    return privateDirFault(lstatSync(dir)) === undefined;
  } catch {
    return false;
  }
}

/**
 * Throws FCP_ERR_AUTH_INSECURE_FILE naming the first level that fails: `dir` must be private (a real
 * directory, not a symlink), each level between it and `anchor` a real directory that passes
 * parentDirFault, and `anchor` itself (followed if a link) too. Without an anchor above `dir`, every level
 * up to the root is checked.
 */
export function checkPrivateChain(dir: string, anchor: string | undefined, what: string): void {
  const leaf = path.resolve(dir);
  fail(leaf, privateDirFault(lstatOf(leaf)), what);
  const top = anchor !== undefined && isBelow(leaf, path.resolve(anchor)) ? path.resolve(anchor) : '/';
  // Bounded: each step is one path component shorter, and stops at `top` or the root.
  for (let level = path.dirname(leaf); ; level = path.dirname(level)) {
    const st = level === top ? statOf(level) : lstatOf(level);
    fail(level, parentDirFault(st), what);
    if (level === top || level === path.dirname(level)) return;
  }
}

function isBelow(dir: string, anchor: string): boolean {
  return dir !== anchor && dir.startsWith(anchor === '/' ? '/' : `${anchor}/`);
}

function fail(dir: string, fault: string | undefined, what: string): void {
  if (fault === undefined) return;
  throw new FcpError('FCP_ERR_AUTH_INSECURE_FILE', `${dir} ${fault}: ${what}`, { path: dir });
}

function lstatOf(dir: string): Stats {
  return statWith(lstatSync, dir);
}

function statOf(dir: string): Stats {
  return statWith(statSync, dir);
}

function statWith(how: (p: string) => Stats, dir: string): Stats {
  try {
    return how(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new FcpError('FCP_ERR_AUTH_INSECURE_FILE', `${dir}: cannot check it (${code})`, {
      path: dir,
      cause: err,
    });
  }
}
