/**
 * fcpd's local control socket, for `fcpd status`: a unix socket in `<state dir>/control/` (the directory
 * 0700, the socket 0600, both the served account's), so only that account and root can connect; no network
 * port. One request per connection, a line ("status"), one JSON line back, then the socket closes
 * (README "fcpd status").
 */
import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { FcpError, toFcpError } from '../protocol/index.js';
// Not fs.rmSync(..., { force: true }): that loads node's rimraf for one unlink (~1-2 ms of a start).
import { unlinkQuietSync } from '../transfer/store/posix-io.js';
import { type ControlReply, parseControlReply, type SessionStatus } from './control-reply.js';

/** Bumped when a field changes meaning or goes away. */
export const CONTROL_VERSION = 1;
/** A request is one short line; more than this is not one. */
const MAX_REQUEST_BYTES = 64;
/** A client that says nothing for this long is dropped. */
const REQUEST_TIMEOUT_MS = 2000;

export type { ControlReply, SessionStatus } from './control-reply.js';

/** `<stateDir>/control/fcpd-<port>.sock`: one per daemon, as the pid file is. */
export function controlSocketPath(stateDir: string, port: number): string {
  return path.join(stateDir, 'control', `fcpd-${port}.sock`);
}

export class ControlSocket {
  readonly #server: net.Server;
  readonly #path: string;

  private constructor(server: net.Server, socketPath: string) {
    this.#server = server;
    this.#path = socketPath;
  }

  /**
   * Listens on `socketPath`, answering "status" with `sessions()`. A socket file already there is a dead
   * daemon's: this one holds the port now, and the name is per port.
   */
  static async listen(socketPath: string, sessions: () => SessionStatus[]): Promise<ControlSocket> {
    const dir = path.dirname(socketPath);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    unlinkQuietSync(socketPath);
    const server = net.createServer((socket) => answer(socket, sessions));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(socketPath, 0o600);
    // Serving it must never keep a stopping daemon alive.
    server.unref();
    return new ControlSocket(server, socketPath);
  }

  get path(): string {
    return this.#path;
  }

  close(): void {
    this.#server.close();
    unlinkQuietSync(this.#path);
  }
}

function answer(socket: net.Socket, sessions: () => SessionStatus[]): void {
  let request = '';
  socket.setEncoding('utf8');
  socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
  socket.on('error', () => {
    // The client went away: nothing to answer.
  });
  socket.on('data', (chunk: string) => {
    request += chunk;
    const end = request.indexOf('\n');
    if (end < 0 && request.length <= MAX_REQUEST_BYTES) return;
    socket.removeAllListeners('data');
    const reply =
      request.slice(0, end).trim() === 'status'
        ? { version: CONTROL_VERSION, sessions: sessions() }
        : { version: CONTROL_VERSION, error: 'unknown request' };
    socket.end(`${JSON.stringify(reply)}\n`);
  });
}

/** How long `fcpd status` waits for the daemon's whole answer (not per read: a trickle must not hold it). */
const QUERY_DEADLINE_MS = 5000;
/** A reply larger than this is not a daemon's: a session line is ~300 bytes. */
export const MAX_REPLY_BYTES = 1024 * 1024;

/** The sessions the daemon at `socketPath` serves now (see queryStatus). */
export async function querySessions(socketPath: string): Promise<SessionStatus[]> {
  return (await queryStatus(socketPath)).sessions;
}

/**
 * Asks the daemon at `socketPath` for its sessions. FCP_ERR_NET_CONNECT naming the socket when no daemon
 * answers there; EACCES when the socket is another account's; FCP_ERR_NET_TIMEOUT when the whole answer
 * takes longer than `deadlineMs`; FCP_ERR_PROTO_MALFORMED when it is larger than MAX_REPLY_BYTES or not a
 * reply (control-reply.ts).
 */
export function queryStatus(socketPath: string, deadlineMs = QUERY_DEADLINE_MS): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const socket = net.connect(socketPath);
    const deadline = setTimeout(
      () =>
        socket.destroy(
          new FcpError('FCP_ERR_NET_TIMEOUT', `no whole answer on ${socketPath} within ${deadlineMs} ms`),
        ),
      deadlineMs,
    );
    socket.on('close', () => clearTimeout(deadline));
    socket.on('connect', () => socket.write('status\n'));
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REPLY_BYTES)
        socket.destroy(
          new FcpError(
            'FCP_ERR_PROTO_MALFORMED',
            `bad answer on ${socketPath}: over ${MAX_REPLY_BYTES} bytes`,
          ),
        );
      else chunks.push(chunk);
    });
    socket.on('error', (err) => reject(queryError(err, socketPath)));
    socket.on('end', () => {
      clearTimeout(deadline);
      try {
        resolve(parseControlReply(Buffer.concat(chunks).toString('utf8'), socketPath));
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}

/**
 * `fcpd status --user NAME` run by root: the socket must be NAME's own socket (lstat: not a link), so a
 * link NAME planted cannot point root at another account's daemon. FCP_ERR_AUTH_INSECURE_FILE naming it.
 */
export function checkSocketOwner(socketPath: string, uid: number): void {
  let stats;
  try {
    stats = lstatSync(socketPath);
  } catch (err) {
    throw queryError(err as NodeJS.ErrnoException, socketPath);
  }
  if (!stats.isSocket() || stats.uid !== uid)
    throw new FcpError(
      'FCP_ERR_AUTH_INSECURE_FILE',
      `${socketPath} is not a socket owned by uid ${uid}: not asked`,
      { path: socketPath },
    );
}

function queryError(err: NodeJS.ErrnoException, socketPath: string): FcpError {
  if (err instanceof FcpError) return err;
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')
    return new FcpError('FCP_ERR_NET_CONNECT', `no fcpd answers on ${socketPath}: is it running?`, {
      cause: err,
    });
  const e = toFcpError(err, socketPath);
  return new FcpError(e.code, `${socketPath}: ${e.message}`, { path: socketPath, cause: err });
}
