/**
 * The client's TCP transport: dial the daemon, run TLS over the socket unless --no-encryption, and hand
 * the client's handshake a channel plus what TLS proved about the daemon (its certificate's key for the
 * pin check, the same daemon on every later connection, the session ticket that lets them resume).
 */
import type tls from 'node:tls';
import { FcpError, toFcpError } from '../protocol/index.js';
import { channelBinding, checkSameDaemon, connectTls, peerHostKey } from '../security/tls-channel.js';
import { hostPort as formatHostPort, socketChannel } from './channel.js';
import { CONNECT_TIMEOUT_MS, dial } from './dial.js';
import type { DaemonIdentity, DialedChannel, Dialer } from './dialer.js';
import { HANDSHAKE_TIMEOUT_MS } from './hello.js';

export interface TcpEndpoint {
  readonly host: string;
  readonly port: number;
}

function hostPort(endpoint: TcpEndpoint): string {
  return formatHostPort(endpoint.host, endpoint.port);
}

/**
 * TCP, then TLS unless `encryption` is false (--no-encryption: plaintext; authentication stays).
 * `connectTimeoutMs` bounds the TCP connect (a probe for a daemon that may not be there wants it short).
 */
export function tcpTlsDialer(
  endpoint: TcpEndpoint,
  encryption: boolean,
  connectTimeoutMs = CONNECT_TIMEOUT_MS,
): Dialer {
  const to = { ...endpoint, connectTimeoutMs };
  return {
    peerName: `the daemon at ${hostPort(endpoint)}`,
    open: encryption
      ? (resume, signal) => openTls(to, resume, signal)
      : (_resume, signal) => openPlain(to, signal),
    unanswered: (err) => unanswered(endpoint, err),
  };
}

/** A plaintext channel proves nothing about the daemon: the handshake's own host proof and pin do it all. */
const UNPROVEN: DaemonIdentity = {
  hostKey: () => undefined,
  checkSameDaemon: () => {},
};

/** Where to connect, and how long the TCP connect may take. */
interface Target extends TcpEndpoint {
  readonly connectTimeoutMs: number;
}

async function openPlain(endpoint: Target, signal?: AbortSignal): Promise<DialedChannel> {
  const socket = await dial(endpoint.host, endpoint.port, endpoint.connectTimeoutMs, signal);
  return { channel: socketChannel(socket, false), identity: UNPROVEN, resumption: () => undefined };
}

async function openTls(
  endpoint: Target,
  tlsSession: Buffer | undefined,
  signal?: AbortSignal,
): Promise<DialedChannel> {
  const socket = await dial(endpoint.host, endpoint.port, endpoint.connectTimeoutMs, signal);
  let secure: tls.TLSSocket;
  try {
    secure = await connectTls(socket, HANDSHAKE_TIMEOUT_MS, tlsSession);
  } catch (err) {
    throw notTls(endpoint, err);
  }
  // FramedConn reports errors; this keeps one that comes before it listens from being uncaught.
  secure.on('error', () => {});
  return {
    channel: socketChannel(secure, true, channelBinding(secure)),
    identity: tlsIdentity(secure),
    resumption: () => secure.getSession(),
  };
}

/**
 * The certificate's key is the daemon's host key (the handshake requires AUTH_CHALLENGE to name it, then
 * pins it); later connections must reach the same daemon (a resumed session proves that by itself).
 */
function tlsIdentity(secure: tls.TLSSocket): DaemonIdentity {
  return {
    hostKey: () => peerHostKey(secure).spki,
    checkSameDaemon: (fingerprint) => checkSameDaemon(secure, fingerprint),
  };
}

/**
 * A TLS handshake that fails means the port is not an fcpd of protocol 2 (every v2 daemon speaks TLS, even
 * with --no-encryption): a protocol error, told in one line, not OpenSSL's. A connection closed before any
 * answer is a busy daemon instead.
 */
function notTls(endpoint: TcpEndpoint, err: unknown): FcpError {
  const e = toFcpError(err);
  if (e.code !== 'FCP_ERR_AUTH_CHANNEL') return e;
  const cause = e.cause as { code?: unknown; reason?: unknown } | undefined;
  if (cause?.code === 'ECONNRESET' || cause?.code === 'EPIPE') {
    // Closed without a word: a daemon at its cap of connections in their handshake (spec/SECURITY.md §10)
    // closes at accept. Worth a retry, unlike a peer that answers something other than TLS.
    return new FcpError(
      'FCP_ERR_NET_CLOSED',
      `${hostPort(endpoint)} closed the connection during the TLS handshake (is the daemon busy?)`,
      { cause: err },
    );
  }
  const why =
    typeof cause?.reason === 'string'
      ? cause.reason
      : typeof cause?.code === 'string'
        ? cause.code
        : 'TLS failed';
  return new FcpError(
    'FCP_ERR_PROTO_NOT_FCP',
    `${hostPort(endpoint)} does not answer TLS (${why}): is it an fcpd of this version?`,
    { cause: err },
  );
}

/**
 * A listener that accepts but never answers our first message (TLS or HELLO) is not a daemon we reached:
 * the same failure as a refused connection (exit 4, not retried on the first attempt), not a broken session.
 */
function unanswered(endpoint: TcpEndpoint, err: unknown): unknown {
  if (toFcpError(err).code !== 'FCP_ERR_NET_TIMEOUT') return err;
  return new FcpError(
    'FCP_ERR_NET_CONNECT',
    `cannot connect to ${hostPort(endpoint)}: it accepted the connection but did not answer ` +
      `within ${HANDSHAKE_TIMEOUT_MS / 1000} s (is fcpd running there?)`,
    { cause: err },
  );
}
