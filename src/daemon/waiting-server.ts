/**
 * A listening net.Server whose connections wait, unread, until a handler takes them: fcpd --serve-once binds
 * and announces its port before the code that serves is loaded (serve-once-open.ts), and a client that
 * dials at once must find the connection held, not refused or dropped.
 */
import net from 'node:net';

export class WaitingServer {
  readonly server: net.Server;
  /** Connections accepted before take(); undefined once taken. */
  #waiting: net.Socket[] | undefined = [];

  constructor(opts: net.ServerOpts = {}) {
    this.server = net.createServer(opts, (socket) => {
      if (this.#waiting === undefined) return;
      // A reset while it waits must not become an uncaught error; the handler sees the socket closed.
      socket.on('error', () => {});
      this.#waiting.push(socket);
    });
  }

  /** Listens on a TCP port or a unix socket path; rejects with the bind's own error. */
  listen(where: { port: number; host?: string } | { path: string }): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(where, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** From now on `onConnection` gets every connection, first those that waited, in their order. */
  take(onConnection: (socket: net.Socket) => void): net.Server {
    const waiting = this.#waiting ?? [];
    this.#waiting = undefined;
    this.server.on('connection', onConnection);
    for (const socket of waiting) onConnection(socket);
    return this.server;
  }

  /** Closes the listener and every connection still waiting (for a start that goes no further). */
  close(): Promise<void> {
    for (const socket of this.#waiting ?? []) socket.destroy();
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
