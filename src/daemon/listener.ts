/**
 * fcpd's TCP listener: binds, admits or drops each new connection (admission.ts), gives it a handshake
 * deadline, turns it into a channel (transport/tcp-tls-accept.ts) and hands that to the handshake. It keeps
 * every socket so that closing the daemon closes them all. Connections that arrive before the daemon is
 * ready to serve wait for it.
 */
import net from 'node:net';
import {
  type AcceptedChannel,
  acceptTcpChannel,
  type TcpAcceptOptions,
} from '../transport/tcp-tls-accept.js';
import { toFcpError } from '../protocol/index.js';
import type { Admission, ThrottleReport } from './admission.js';
import { type Arrival, logConnectionFailure } from './handshake.js';
import { listenHost } from './listen-address.js';
import type { WaitingServer } from './waiting-server.js';

/** From accept to SESSION or ATTACH, sniff and TLS included (spec/SECURITY.md §10). */
export const HANDSHAKE_DEADLINE_MS = 20_000;

export interface ListenerOptions {
  readonly port: number;
  readonly bind: string;
  readonly log: (line: string) => void;
  readonly verbose: boolean;
  readonly admission: Admission;
  readonly throttle: ThrottleReport;
}

/** What the listener does with an accepted channel; it never rejects. */
export type ChannelHandler = (channel: AcceptedChannel, arrival: Arrival) => Promise<void>;

/** How the listener serves, known once the daemon is ready (the host key loaded, the root opened). */
export interface Serving extends TcpAcceptOptions {
  readonly handshake: ChannelHandler;
}

/**
 * Gives an accepted socket HANDSHAKE_DEADLINE_MS to authenticate, or destroys it. Returns the connection's
 * `authenticated()`: it stops the deadline and calls `release` once, as the socket's close does.
 */
export function handshakeDeadline(socket: net.Socket, release: () => void): () => void {
  // Errors are reported through FramedConn; this keeps an early reset from becoming an uncaught error.
  socket.on('error', () => {});
  let pending = true;
  const deadline = setTimeout(() => socket.destroy(), HANDSHAKE_DEADLINE_MS);
  const authenticated = () => {
    if (!pending) return;
    pending = false;
    clearTimeout(deadline);
    release();
  };
  socket.on('close', authenticated);
  return authenticated;
}

export class Listener {
  readonly #opts: ListenerOptions;
  readonly #sockets = new Set<net.Socket>();
  #server: net.Server | undefined;
  #serving: Promise<Serving>;
  #startServing: (serving: Serving) => void = () => {};
  #closing = false;

  constructor(opts: ListenerOptions) {
    this.#opts = opts;
    this.#serving = new Promise((resolve) => {
      this.#startServing = resolve;
    });
  }

  /** Binds; resolves with the bound port (useful with port 0). Nothing is served before serve(). */
  async bind(): Promise<number> {
    const server = net.createServer({ noDelay: true }, (socket) => this.#waitToServe(socket));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#opts.port, listenHost(this.#opts.bind, this.#opts.port), () => {
        server.off('error', reject);
        resolve();
      });
    });
    return this.#listening(server);
  }

  /** bind() for a server already listening (fcpd --serve-once's, bound before its code was loaded). */
  adopt(waiting: WaitingServer): number {
    this.#server = waiting.take((socket) => this.#waitToServe(socket));
    return this.#listening(this.#server);
  }

  #listening(server: net.Server): number {
    server.on('error', (err) => this.#opts.log(`listener error: ${err.message}`));
    const addr = server.address();
    return typeof addr === 'object' && addr !== null ? addr.port : this.#opts.port;
  }

  #waitToServe(socket: net.Socket): void {
    this.#serving.then(
      (serving) => this.#serverOnConnection(socket, serving),
      () => socket.destroy(),
    );
  }

  /** Starts serving the connections that wait and those to come. */
  serve(serving: Serving): void {
    this.#startServing(serving);
  }

  /** Stops accepting; resolves once the listener is closed (its connections may still be open). */
  stop(): Promise<void> {
    this.#closing = true;
    const server = this.#server;
    return server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
  }

  /** Closes every connection the listener accepted. */
  destroyAll(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  #serverOnConnection(socket: net.Socket, serving: Serving): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const address = socket.remoteAddress ?? '?';
    // sshd's MaxStartups: a flood of connections that never authenticate is thinned at accept (§10).
    const slot = this.#opts.admission.admit(address);
    if (slot === undefined) {
      this.#dropAtAccept(socket, address);
      return;
    }
    this.#logThrottle(this.#opts.throttle.admitted(this.#opts.admission.pending, performance.now()));
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    const authenticated = handshakeDeadline(socket, () => slot.release());
    void this.#accept(socket, serving, { address, authenticated });
  }

  /** Sniff and TLS, then the handshake; a connection that fails before it is framed is just closed. */
  async #accept(socket: net.Socket, serving: Serving, arrival: Arrival): Promise<void> {
    let channel: AcceptedChannel;
    try {
      channel = await acceptTcpChannel(socket, serving);
    } catch (err) {
      logConnectionFailure(this.#opts, `${arrival.address}:${socket.remotePort ?? '?'}`, toFcpError(err));
      socket.destroy();
      return;
    }
    await serving.handshake(channel, arrival);
  }

  /** Closed before a byte is read: the client retries it after a moment (spec/SECURITY.md §10). */
  #dropAtAccept(socket: net.Socket, address: string): void {
    socket.destroy();
    this.#logThrottle(this.#opts.throttle.dropped(this.#opts.admission.pending, performance.now()));
    if (this.#opts.verbose) this.#opts.log(`${address}: too many connections in their handshake; dropped`);
  }

  #logThrottle(line: string | undefined): void {
    if (line !== undefined) this.#opts.log(line);
  }
}
