/**
 * Where a serve-once daemon puts its relay socket (spec/SECURITY.md §14.4, PROTOCOL.md §8.3):
 * `$XDG_RUNTIME_DIR/fcp` when that directory is set, ours and mode 0700 (as the XDG spec requires it to be),
 * else `~/.cache/fcp/run`; created 0700. That directory keeps other users off the socket, whose connections
 * need no proof of their own but the session's, and every level above it, up to XDG_RUNTIME_DIR or HOME,
 * must be one no other user can rename it out of (private-dir.ts): sshd and `fcpd --stdio` find the socket
 * again by its path for every connection.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { FcpError } from '../protocol/errors.js';
import { checkPrivateChain, isPrivateDir } from '../security/private-dir.js';

const RUN_DIR_MODE = 0o700;
/** sun_path holds 108 bytes on Linux, the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = 107;
const WHAT = 'it would hold the socket of fcp over ssh';

/** The private directory for relay sockets, created if needed and checked; throws when it is not private. */
export async function privateRunDir(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const { dir, anchor } = runDirFor(env);
  await mkdir(dir, { recursive: true, mode: RUN_DIR_MODE });
  checkPrivateChain(dir, anchor, WHAT);
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

/** The run directory and the level up to which its parents are checked. */
function runDirFor(env: NodeJS.ProcessEnv): { dir: string; anchor: string } {
  const xdg = env['XDG_RUNTIME_DIR'];
  if (xdg !== undefined && path.isAbsolute(xdg) && isPrivateDir(xdg))
    return { dir: path.join(xdg, 'fcp'), anchor: xdg };
  const home = env['HOME'] ?? homedir();
  return { dir: path.join(home, '.cache', 'fcp', 'run'), anchor: home };
}
