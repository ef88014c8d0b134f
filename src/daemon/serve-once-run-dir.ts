/**
 * Where a serve-once daemon puts its relay socket (spec/SECURITY.md §14.4): `$XDG_RUNTIME_DIR/fcp` when that
 * directory is set and ours, else `~/.cache/fcp/run`; created 0700, and used only if it is a real directory
 * (not a symlink) owned by us that neither group nor others may enter. That directory is what keeps other
 * users off the socket, whose connections need no proof of their own but the session's.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { lstat, mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { FcpError } from '../protocol/index.js';

const RUN_DIR_MODE = 0o700;
/** sun_path holds 108 bytes on Linux, the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = 107;

/** The private directory for relay sockets, created if needed and checked; throws when it is not private. */
export async function privateRunDir(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const dir = runDirFor(env);
  await mkdir(dir, { recursive: true, mode: RUN_DIR_MODE });
  const st = await lstat(dir);
  const uid = process.geteuid?.() ?? 0;
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new FcpError(
      'FCP_ERR_AUTH_INSECURE_FILE',
      `${dir} must be a directory owned by uid ${uid} that only it may enter (mode 0700): ` +
        'it holds the socket of fcp over ssh',
      { path: dir },
    );
  }
  return dir;
}

/** A fresh socket path in `dir`, unique to this process. */
export function relaySocketPath(dir: string): string {
  const socket = path.join(dir, `serve-once-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH_BYTES) {
    throw new FcpError(
      'FCP_ERR_USAGE',
      `${socket} is too long for a unix socket (at most ${MAX_SOCKET_PATH_BYTES} bytes): set XDG_RUNTIME_DIR`,
      { path: socket },
    );
  }
  return socket;
}

function runDirFor(env: NodeJS.ProcessEnv): string {
  const xdg = env['XDG_RUNTIME_DIR'];
  if (xdg !== undefined && path.isAbsolute(xdg) && ownedByUs(xdg)) return path.join(xdg, 'fcp');
  return path.join(env['HOME'] ?? homedir(), '.cache', 'fcp', 'run');
}

function ownedByUs(dir: string): boolean {
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === (process.geteuid?.() ?? 0);
  } catch {
    return false;
  }
}
