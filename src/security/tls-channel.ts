/**
 * TLS 1.3 for fcp connections (spec/SECURITY.md §3): the daemon presents its self-signed host certificate; the
 * client accepts any certificate at the TLS layer and then compares the SHA-256 of its public key with the pin,
 * before it sends a byte of its own. Both sides then derive the channel binding from the TLS exporter.
 */
import { X509Certificate } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import { FcpError } from '../protocol/errors.js';
import { authError } from './auth-errors.js';
import { type HostKey, spkiDigest } from './host-key.js';
import { formatFingerprint } from './ssh-wire.js';

/** RFC 8446 §7.5 exporter label; the same on every connection, the output differs per connection. */
export const TLS_EXPORTER_LABEL = 'EXPORTER-fcp-auth-v1';
export const CHANNEL_BINDING_SIZE = 32;
/** AES-128-GCM first: AES-NI makes it the fastest on servers; the client's order decides. */
export const TLS_CIPHERSUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
export const ALPN_PROTOCOL = 'fcp/1';
/** First byte of a TLS handshake record (ClientHello); fcp's HELLO frame starts with 0x10. */
const TLS_HANDSHAKE_RECORD = 0x16;

/** The server's TLS context, made once per daemon start from its host key. */
export function createServerContext(hostKey: HostKey): tls.SecureContext {
  return tls.createSecureContext({
    cert: hostKey.certPem,
    key: hostKey.keyPem,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: TLS_CIPHERSUITES,
    // No CA list: without one node builds its root store (~140 bundled certificates parsed, ~18 ms of CPU)
    // for a daemon that asks no client for a certificate and sends its self-signed one alone. fcpd
    // --serve-once makes this context after its bootstrap line, while the client's ClientHello is on its
    // way: the store's parse delayed the ServerHello (README "Works wherever ssh works").
    ca: [],
  });
}

/**
 * Reads the first bytes of an accepted socket without consuming them: true for a TLS ClientHello, false for
 * anything else (a plaintext fcp HELLO). The bytes are pushed back, so TLS or the frame decoder sees them.
 */
export function sniffTls(socket: net.Socket, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new FcpError('FCP_ERR_NET_TIMEOUT', `no data within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const socketOnData = (chunk: Buffer) => {
      cleanup();
      socket.pause();
      socket.unshift(chunk);
      resolve(chunk[0] === TLS_HANDSHAKE_RECORD);
    };
    const socketOnEnd = () => {
      cleanup();
      reject(new FcpError('FCP_ERR_NET_CLOSED'));
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', socketOnData);
      socket.off('end', socketOnEnd);
      socket.off('close', socketOnEnd);
    };
    socket.on('data', socketOnData);
    socket.once('end', socketOnEnd);
    socket.once('close', socketOnEnd);
  });
}

/** Runs the server side of the TLS handshake on an accepted (possibly sniffed) socket. */
export function acceptTls(
  socket: net.Socket,
  context: tls.SecureContext,
  timeoutMs: number,
): Promise<tls.TLSSocket> {
  const tlsSocket = new tls.TLSSocket(socket, {
    isServer: true,
    secureContext: context,
    ALPNProtocols: [ALPN_PROTOCOL],
    requestCert: false,
  });
  // A server TLSSocket made by hand (not by tls.Server) never "releases control": after the handshake node
  // reports a TLS error (a record whose MAC fails, a bad alert) only as '_tlsError' and neither emits 'error'
  // nor closes, so the connection would hang half-dead. Do what tls.Server does: end it with that error.
  tlsSocket.on('_tlsError', (err: Error) => {
    if (!tlsSocket.destroyed) tlsSocket.destroy(err);
  });
  // Nor does it notice a client that hangs up mid-handshake (a FIN): it would wait for the timeout, holding a
  // handshake slot. A client that went away is not a TLS failure: FCP_ERR_NET_CLOSED, which the daemon logs
  // only with -v (an fcp cancelling an extra connection it no longer needs, a port scanner).
  const hungUp = new Promise<never>((_resolve, reject) => {
    const socketOnGone = () => reject(new FcpError('FCP_ERR_NET_CLOSED', 'closed during the TLS handshake'));
    socket.once('end', socketOnGone);
    socket.once('close', socketOnGone);
    tlsSocket.once('secure', () => {
      socket.off('end', socketOnGone);
      socket.off('close', socketOnGone);
    });
  });
  // Raced below; once the handshake has settled otherwise (a timeout), a later hang-up has nobody to tell
  // and must not be an unhandled rejection.
  hungUp.catch(() => {});
  const done = handshakeDone(tlsSocket, socket, 'secure', timeoutMs).catch((err: unknown) => {
    throw peerWentAway(err) ? new FcpError('FCP_ERR_NET_CLOSED', 'reset during the TLS handshake') : err;
  });
  return Promise.race([done, hungUp]).catch((err: unknown) => {
    // With an error, so that handshakeDone settles too and stops its timer.
    if (!tlsSocket.destroyed) tlsSocket.destroy(err as Error);
    socket.destroy();
    throw err;
  });
}

/** A handshake that failed because the peer reset the connection, not because of anything it said. */
function peerWentAway(err: unknown): boolean {
  const code = ((err as { cause?: { code?: unknown } }).cause ?? {}).code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

/**
 * Runs the client side of the TLS handshake over a connected socket. The certificate is not judged here
 * (it is self-signed by design): the caller MUST call `peerHostKey` and check the pin before writing.
 * `session` resumes the control connection's TLS session for ATTACH sockets (saves the full handshake).
 */
export function connectTls(socket: net.Socket, timeoutMs: number, session?: Buffer): Promise<tls.TLSSocket> {
  const tlsSocket = tls.connect({
    socket,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: TLS_CIPHERSUITES,
    ALPNProtocols: [ALPN_PROTOCOL],
    // Pinning replaces PKI: the fingerprint check in peerHostKey is the server authentication.
    rejectUnauthorized: false,
    // No CA list, so node never builds its root store (~140 bundled certificates parsed): ~24 ms of every
    // client run's CPU, for a chain nothing judges. (NODE_EXTRA_CA_CERTS, when set, builds it at start-up.)
    ca: [],
    ...(session === undefined ? {} : { session }),
  });
  return handshakeDone(tlsSocket, socket, 'secureConnect', timeoutMs);
}

export interface PeerHostKey {
  readonly spki: Buffer;
  readonly fingerprintBytes: Buffer;
  readonly fingerprint: string;
}

/** The daemon's public key as TLS proved it (its CertificateVerify was checked by OpenSSL against this key). */
export function peerHostKey(socket: tls.TLSSocket): PeerHostKey {
  // Not getPeerX509Certificate(): on node 20 it empties the peer chain, so every later call (and
  // getPeerCertificate) finds no certificate. getPeerCertificate() can be called any number of times.
  const raw = socket.getPeerCertificate().raw as Buffer | undefined;
  if (raw === undefined) throw authError('FCP_ERR_AUTH_HOST_PROOF', 'the daemon presented no certificate');
  const spki = new X509Certificate(raw).publicKey.export({ type: 'spki', format: 'der' });
  const fingerprintBytes = spkiDigest(spki);
  return { spki, fingerprintBytes, fingerprint: formatFingerprint(fingerprintBytes) };
}

/**
 * For connections after the first (ATTACH): throws FCP_ERR_AUTH_HOST_PROOF unless the daemon is the one pinned
 * on the control connection. A resumed session presents no certificate, and needs none: only the server that
 * issued the ticket knows its PSK, so resumption itself proves the same daemon (RFC 8446 §2.2, psk_dhe_ke).
 * A ticket the daemon declined means a full handshake, whose certificate is checked like any other.
 */
export function checkSameDaemon(socket: tls.TLSSocket, fingerprint: string): void {
  if (socket.isSessionReused()) return;
  const peer = peerHostKey(socket);
  if (peer.fingerprint !== fingerprint) {
    throw authError(
      'FCP_ERR_AUTH_HOST_PROOF',
      `a connection of this session reached another daemon (${peer.fingerprint}, expected ${fingerprint})`,
    );
  }
}

/** The 32-byte channel binding both ends compute from the TLS exporter (RFC 8446 §7.5, RFC 9266 style). */
export function channelBinding(socket: tls.TLSSocket): Buffer {
  // TLS 1.3 treats an absent and an empty context alike (RFC 8446 §7.5); the typings want one.
  return socket.exportKeyingMaterial(CHANNEL_BINDING_SIZE, TLS_EXPORTER_LABEL, Buffer.alloc(0));
}

function handshakeDone(
  socket: tls.TLSSocket,
  raw: net.Socket,
  event: 'secure' | 'secureConnect',
  timeoutMs: number,
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      fail(new FcpError('FCP_ERR_NET_TIMEOUT', `TLS handshake not done within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      // Destroying the TLS layer alone can leave the TCP socket half-open (a peer that already sent FIN).
      socket.destroy();
      raw.destroy();
      reject(
        err instanceof FcpError
          ? err
          : authError('FCP_ERR_AUTH_CHANNEL', `TLS handshake failed: ${err.message}`, { cause: err }),
      );
    };
    socket.once('error', fail);
    socket.once(event, () => {
      clearTimeout(timer);
      socket.off('error', fail);
      if (socket.getProtocol() !== 'TLSv1.3') {
        fail(new Error(`negotiated ${socket.getProtocol()}`));
        return;
      }
      resolve(socket);
    });
  });
}
