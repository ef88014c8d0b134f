/**
 * The daemon's side of a TCP connection: turns an accepted socket into a Channel. It reads the first byte
 * without consuming it (spec/SECURITY.md §3.2): a TLS ClientHello gets the TLS handshake with the host
 * certificate, an fcp HELLO a plaintext channel, which the daemon accepts only with --no-encryption; else
 * the client is told why, in one ABORT.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import type { FcpError } from '../protocol/index.js';
import { authError } from '../security/auth-errors.js';
import { acceptTls, channelBinding, sniffTls } from '../security/tls-channel.js';
import { type Channel, socketChannel } from './channel.js';
import { HANDSHAKE_TIMEOUT_MS } from './hello.js';

export interface TcpAcceptOptions {
  /** The TLS context made from the host key (createServerContext). */
  readonly tls: tls.SecureContext;
  /**
   * Why a plaintext client is refused, in the daemon's own terms (TLS_ONLY, or where its setting came from);
   * undefined: --no-encryption clients are accepted as well as TLS ones (authentication stays mandatory).
   */
  readonly plaintextRefused: string | undefined;
}

/** The daemon's causes for refusing plaintext that the daemon itself knows (fcpd names its settings'). */
export const TLS_ONLY = {
  byDefault: 'this fcpd accepts TLS only, its default',
  oneSession: 'a one-session fcpd (fcpd --serve-once) accepts TLS only',
} as const;

/**
 * What a plaintext client is told: the daemon's cause, then what the client can change (it does not know
 * which of its own settings asked for plaintext: the flag or its config file).
 */
export function plaintextRefusal(cause: string): FcpError {
  return authError(
    'FCP_ERR_AUTH_CHANNEL',
    `plaintext refused: ${cause}: connect with TLS (no --no-encryption, no encryption = false in fcp's config)`,
  );
}

/** A channel, and why it must be refused when the options refuse it. */
export interface AcceptedChannel extends Channel {
  /**
   * Set for a plaintext channel on a daemon that requires TLS: the handshake answers it in frames (a
   * plaintext ABORT the client can read, spec/SECURITY.md §3.2) and closes, instead of just hanging up.
   */
  readonly refusal?: FcpError;
  /**
   * Came through `fcpd --stdio` (the relay socket of a serve-once daemon), not TCP: a session's connections
   * must all come the same way (spec/SECURITY.md §14.4).
   */
  readonly carried?: boolean;
}

/**
 * Sniffs and, for TLS, runs the server handshake, each step within HANDSHAKE_TIMEOUT_MS. Rejects with
 * FCP_ERR_NET_TIMEOUT, FCP_ERR_NET_CLOSED or FCP_ERR_AUTH_CHANNEL (the socket is then destroyed when TLS
 * failed; after a failed sniff it is the caller's to close). A plaintext socket comes back paused by the
 * sniff: the FramedConn made on it starts reading.
 */
export async function acceptTcpChannel(socket: net.Socket, opts: TcpAcceptOptions): Promise<AcceptedChannel> {
  const encrypted = await sniffTls(socket, HANDSHAKE_TIMEOUT_MS);
  if (!encrypted) {
    const channel = socketChannel(socket, false);
    if (opts.plaintextRefused === undefined) return channel;
    return { ...channel, refusal: plaintextRefusal(opts.plaintextRefused) };
  }
  const secure = await acceptTls(socket, opts.tls, HANDSHAKE_TIMEOUT_MS);
  // A TLSSocket reports its own errors (a reset mid-record); FramedConn listens too, once it exists.
  secure.on('error', () => {});
  return socketChannel(secure, true, channelBinding(secure));
}
