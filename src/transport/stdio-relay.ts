/**
 * The carried transport's two ends on the remote host (spec/PROTOCOL.md §8.3): `fcpd --stdio SOCKET` joins
 * its stdin/stdout (an ssh channel) to the relay socket of a serve-once daemon, and the daemon makes a
 * channel of each connection on that socket. The bytes are the protocol's frames, unchanged: ssh encrypts
 * the wire leg, and the socket lives in a directory only this user (and root) can enter.
 */
import { lstatSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { FcpError } from '../protocol/index.js';
import { checkPrivateChain } from '../security/private-dir.js';
import type { AcceptedChannel } from './tcp-tls-accept.js';

/** After one side ended, how long the other gets to finish before the relay gives up on it. */
export const RELAY_LINGER_MS = 5_000;

const NO_BINDING = new Uint8Array(0);

/**
 * The channel of a connection accepted on the relay socket: `encrypted` (the wire leg is ssh, the local
 * leg a private socket), no binding (nothing to bind to; spec/SECURITY.md §14.4), and `carried`, so that
 * its session takes no TCP connection.
 */
export function relayChannel(socket: net.Socket): AcceptedChannel {
  return {
    stream: socket,
    encrypted: true,
    binding: NO_BINDING,
    peer: 'a relayed connection',
    carried: true,
  };
}

/**
 * Pipes `input` to the socket at `socketPath` and the socket to `output`, with backpressure both ways
 * (pipe()), so the relay holds at most a few pipe buffers whatever either side does. Resolves once both
 * directions are done: the daemon closed, or our input ended and the daemon then closed (bounded by
 * RELAY_LINGER_MS). Rejects with FCP_ERR_NET_CONNECT when the socket cannot be reached.
 */
export async function relayStdio(
  socketPath: string,
  input: Readable,
  output: Writable,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  checkRelaySocket(socketPath, env);
  const socket = await connectUnix(socketPath);
  await new Promise<void>((resolve) => {
    let linger: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(linger);
      socket.destroy();
      resolve();
    };
    // Our input ended (ssh's channel closed): pass the end on, and give the daemon a moment to close.
    input.once('end', () => {
      linger = setTimeout(finish, RELAY_LINGER_MS);
    });
    input.on('error', finish);
    output.on('error', finish);
    socket.once('close', () => {
      input.unpipe(socket);
      // What the daemon sent last must leave before we exit; a socket destroyed rather than ended has
      // not ended our output through pipe(), so end it here.
      if (output.writableFinished) {
        finish();
        return;
      }
      output.once('finish', finish);
      output.end();
      clearTimeout(linger);
      linger = setTimeout(finish, RELAY_LINGER_MS);
    });
    socket.on('error', () => {});
    input.pipe(socket);
    socket.pipe(output);
  });
}

/**
 * Before connecting: the socket's directory passes the serve-once run directory's own test up to
 * XDG_RUNTIME_DIR or HOME (whichever holds it; else up to the root), and the socket is ours. Otherwise
 * another local user could have put their socket at that path and would get the session's frames
 * (spec/SECURITY.md §14.4). Throws FCP_ERR_AUTH_INSECURE_FILE naming the path.
 */
export function checkRelaySocket(socketPath: string, env: NodeJS.ProcessEnv = process.env): void {
  const dir = path.dirname(path.resolve(socketPath));
  checkPrivateChain(dir, anchorOf(dir, env), 'it holds the socket of fcp over ssh');
  let owner: number | undefined;
  try {
    const st = lstatSync(socketPath);
    owner = st.isSocket() ? st.uid : undefined;
  } catch {
    return; // Absent: connect() says so in its own words.
  }
  const uid = process.geteuid?.() ?? 0;
  if (owner !== uid) {
    throw new FcpError(
      'FCP_ERR_AUTH_INSECURE_FILE',
      `${socketPath} is not a socket of uid ${uid}: refusing to relay to it`,
      { path: socketPath },
    );
  }
}

/** The deepest of XDG_RUNTIME_DIR and HOME that holds `dir`: where its chain of checks may stop. */
function anchorOf(dir: string, env: NodeJS.ProcessEnv): string | undefined {
  const holders = [env['XDG_RUNTIME_DIR'], env['HOME']].filter(
    (a): a is string => a !== undefined && path.isAbsolute(a) && dir.startsWith(`${path.resolve(a)}/`),
  );
  return holders.sort((a, b) => b.length - a.length)[0];
}

function connectUnix(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath });
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        new FcpError(
          'FCP_ERR_NET_CONNECT',
          `cannot reach the serve-once daemon at ${socketPath}: ${err.code ?? err.message} ` +
            '(it exits when its session ends, when ssh closes, or after 30 s without a login)',
          { cause: err, path: socketPath },
        ),
      );
    });
  });
}
