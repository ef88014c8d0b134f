/** Opening a TCP connection to a daemon, with errors a user can act on. */
import net from 'node:net';
import { FcpError } from '../protocol/index.js';
import { hostPort } from './channel.js';

export const CONNECT_TIMEOUT_MS = 10_000;

const HINTS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused: is fcpd running there?',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'host name lookup failed (temporary)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  ECONNRESET: 'connection reset',
};

/** How long a cancelled connection's peer gets to close its side before ours is destroyed. */
const CANCEL_CLOSE_MS = 2_000;

/**
 * Connects to host:port. Aborting `signal` cancels the connection at any time until it closes: one still
 * connecting is dropped, one connected gets a FIN (and a reset only if the peer does not close within
 * CANCEL_CLOSE_MS), so the daemon sees a client that hung up, not one that failed mid-handshake.
 */
export function dial(
  host: string,
  port: number,
  timeoutMs = CONNECT_TIMEOUT_MS,
  signal?: AbortSignal,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new FcpError(
          'FCP_ERR_NET_CONNECT',
          `cannot connect to ${hostPort(host, port)}: timed out after ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    if (signal !== undefined) {
      cancelOnAbort(socket, signal, () => {
        clearTimeout(timer);
        reject(cancelled(host, port));
      });
    }
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const hint = HINTS[err.code ?? ''] ?? err.message;
      reject(
        new FcpError('FCP_ERR_NET_CONNECT', `cannot connect to ${hostPort(host, port)}: ${hint}`, {
          cause: err,
        }),
      );
    });
  });
}

function cancelled(host: string, port: number): FcpError {
  return new FcpError('FCP_ERR_NET_CLOSED', `connection to ${hostPort(host, port)} cancelled`);
}

function cancelOnAbort(socket: net.Socket, signal: AbortSignal, rejectDial: () => void): void {
  const signalOnAbort = () => {
    if (socket.connecting) {
      socket.destroy();
      rejectDial();
      return;
    }
    socket.end();
    setTimeout(() => socket.destroy(), CANCEL_CLOSE_MS).unref();
  };
  if (signal.aborted) {
    signalOnAbort();
    return;
  }
  signal.addEventListener('abort', signalOnAbort, { once: true });
  socket.once('close', () => signal.removeEventListener('abort', signalOnAbort));
}
