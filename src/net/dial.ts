/** Opening a TCP connection to a daemon, with errors a user can act on. */
import net from 'node:net';
import { FcpError } from '../protocol/index.js';

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

export function dial(host: string, port: number, timeoutMs = CONNECT_TIMEOUT_MS): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new FcpError(
          'FCP_ERR_NET_CONNECT',
          `cannot connect to ${host}:${port}: timed out after ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const hint = HINTS[err.code ?? ''] ?? err.message;
      reject(
        new FcpError('FCP_ERR_NET_CONNECT', `cannot connect to ${host}:${port}: ${hint}`, { cause: err }),
      );
    });
  });
}
