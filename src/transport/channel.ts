/**
 * A channel is what a connection's frames travel over, and all that the layers above may know of it: a
 * byte stream (a TLS or plain TCP socket today; an ssh child's stdin/stdout joined into one Duplex later),
 * whether the stream itself encrypts and authenticates every byte, the value the login and ATTACH proofs
 * are bound to, and a printable name of the peer. Only the files of this folder that make channels touch
 * sockets; FramedConn keeps its stream private.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { sliceTlsWrites } from './tls-write-slices.js';

export interface Channel {
  readonly stream: Duplex;
  /**
   * The stream encrypts and authenticates every byte (TLS; ssh): DATA frames may then go without their xxh32
   * when both HELLOs offer it (spec/PROTOCOL.md §2).
   */
  readonly encrypted: boolean;
  /** What the proofs sign over (spec/SECURITY.md §3.1): the TLS exporter; empty for a plaintext channel. */
  readonly binding: Uint8Array;
  /** The peer as users write it: `127.0.0.1:50312`, `[::1]:7523`. */
  readonly peer: string;
  /** A TCP peer's IP address (the client asks whether a daemon is on this host, spec/SECURITY.md §4.2). */
  readonly address?: string;
}

const NO_BINDING = new Uint8Array(0);

/** `host:port` as users write it, an IPv6 literal in brackets: `[::1]:7523`. */
export function hostPort(host: string, port: number | string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The channel of a connected TCP socket (plain, or the TLSSocket wrapping one). */
export function socketChannel(socket: Socket, encrypted: boolean, binding: Uint8Array = NO_BINDING): Channel {
  socket.setNoDelay(true);
  // An encrypted socket here is TLS: its writes go in slices (tls-write-slices.ts).
  if (encrypted) sliceTlsWrites(socket as TLSSocket);
  const peer = hostPort(socket.remoteAddress ?? '?', socket.remotePort ?? '?');
  return { stream: socket, encrypted, binding, peer, address: socket.remoteAddress ?? '' };
}
