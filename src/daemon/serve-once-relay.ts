/**
 * The serve-once daemon's unix-socket listener: each connection comes from an `fcpd --stdio` relay (one per
 * carried connection of the client) and gets a relay channel (transport/stdio-relay.ts), the same handshake
 * deadline as a TCP one, and the daemon's handshake. The socket file is removed when the listener closes,
 * and at exit if it never did.
 */
import type net from 'node:net';
import { relayChannel } from '../transport/stdio-relay.js';
import type { AcceptedChannel } from '../transport/tcp-tls-accept.js';
import type { Arrival } from './handshake.js';
import { handshakeDeadline } from './listener.js';
import type { RelaySocket } from './serve-once-open.js';

/** What a relayed client is called where a TCP one has its address (admission, the log). */
const RELAY_ADDRESS = 'relay';
/**
 * Relayed connections in their handshake at once: only this user can connect, but a runaway script of
 * theirs must not exhaust the daemon either (spec/SECURITY.md §10).
 */
const MAX_PENDING = 64;

export class RelayListener {
  readonly #socket: RelaySocket;
  readonly #sockets = new Set<net.Socket>();
  readonly #server: net.Server;
  #pending = 0;

  /** Serves the connections of a relay socket already listening (serve-once-open.ts); `serve` never rejects. */
  constructor(socket: RelaySocket, serve: (channel: AcceptedChannel, arrival: Arrival) => Promise<void>) {
    this.#socket = socket;
    this.#server = socket.waiting.take((conn) => this.#serverOnConnection(conn, serve));
    this.#server.on('error', () => {});
  }

  /** Stops accepting, closes every relayed connection, removes the socket file. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
    this.#socket.remove();
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
