/**
 * The serve-once daemon's unix-socket listener: each connection comes from an `fcpd --stdio` relay (one per
 * carried connection of the client) and gets a relay channel (transport/stdio-relay.ts), the same handshake
 * deadline as a TCP one, and the daemon's handshake. The socket file is removed when the listener closes,
 * and at exit if it never did.
 */
import { unlinkSync } from 'node:fs';
import net from 'node:net';
import { relayChannel } from '../transport/stdio-relay.js';
import type { AcceptedChannel } from '../transport/tcp-tls-accept.js';
import type { Arrival } from './handshake.js';
import { handshakeDeadline } from './listener.js';

/** What a relayed client is called where a TCP one has its address (admission, the log). */
const RELAY_ADDRESS = 'relay';
/**
 * Relayed connections in their handshake at once: only this user can connect, but a runaway script of
 * theirs must not exhaust the daemon either (spec/SECURITY.md §10).
 */
const MAX_PENDING = 64;

export class RelayListener {
  readonly #path: string;
  readonly #sockets = new Set<net.Socket>();
  readonly #server: net.Server;
  #pending = 0;
  #removeAtExit = () => unlinkQuietly(this.#path);

  /** Call listen(); `serve` gets each relayed channel and never rejects. */
  constructor(socketPath: string, serve: (channel: AcceptedChannel, arrival: Arrival) => Promise<void>) {
    this.#path = socketPath;
    this.#server = net.createServer((socket) => this.#serverOnConnection(socket, serve));
    this.#server.on('error', () => {});
  }

  async listen(): Promise<void> {
    process.once('exit', this.#removeAtExit);
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#path, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  /** Stops accepting, closes every relayed connection, removes the socket file. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
    unlinkQuietly(this.#path);
    process.off('exit', this.#removeAtExit);
  }

  #serverOnConnection(socket: net.Socket, serve: (c: AcceptedChannel, a: Arrival) => Promise<void>): void {
    if (this.#pending >= MAX_PENDING) {
      socket.destroy();
      return;
    }
    this.#pending++;
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    const authenticated = handshakeDeadline(socket, () => this.#pending--);
    void serve(relayChannel(socket), { address: RELAY_ADDRESS, authenticated });
  }
}

/** server.close() unlinks the socket on most systems; a crash does not. */
function unlinkQuietly(socketPath: string): void {
  try {
    unlinkSync(socketPath);
  } catch {
    // Already gone (net.Server removes it on close), which is what we want.
  }
}
