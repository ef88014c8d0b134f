/**
 * The session secret and ATTACH proofs (spec/SECURITY.md §6.4). Each session handshake runs an ephemeral
 * X25519 exchange; HKDF-SHA256 over the shared value, salted with the whole handshake transcript, gives a
 * 32-byte secret that never crosses the wire, with or without TLS. An extra connection joins a session only
 * with HMAC-SHA256(secret, ATTACH proof data) over a fresh daemon nonce and its own TLS channel binding.
 */
import {
  createHash,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import { authError } from './auth-errors.js';
import { b64u } from './ssh-wire.js';
import {
  attachAnswerData,
  attachProofData,
  type Handshake,
  handshakeTranscript,
  KX_PUBLIC_SIZE,
  safeEqual,
} from './transcript.js';

export const SESSION_SECRET_SIZE = 32;
export const SESSION_SECRET_INFO = 'fcp-session-secret-v1';

export interface KxKeyPair {
  readonly privateKey: KeyObject;
  /** The 32-byte X25519 public value sent on the wire. */
  readonly publicRaw: Buffer;
}

/** A fresh ephemeral X25519 key pair, one per session handshake and side. */
export function generateKx(): KxKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const publicRaw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return { privateKey, publicRaw };
}

/** X25519(ours, theirs). An all-zero result (a low-order peer point) is refused, per RFC 7748 §6.1. */
export function x25519Shared(ours: KeyObject, peerRaw: Uint8Array): Buffer {
  if (peerRaw.length !== KX_PUBLIC_SIZE)
    throw authError('FCP_ERR_AUTH_MALFORMED', 'X25519 key share is not 32 bytes');
  let shared: Buffer;
  try {
    const publicKey = createPublicKey({
      key: { kty: 'OKP', crv: 'X25519', x: b64u(peerRaw) },
      format: 'jwk',
    });
    shared = diffieHellman({ privateKey: ours, publicKey });
  } catch (err) {
    throw authError('FCP_ERR_AUTH_MALFORMED', 'invalid X25519 key share', { cause: err });
  }
  if (shared.every((b) => b === 0))
    throw authError('FCP_ERR_AUTH_MALFORMED', 'X25519 key share of low order');
  return shared;
}

/** HKDF-SHA256(ikm = shared, salt = SHA-256(transcript), info = "fcp-session-secret-v1", 32 bytes). */
export function deriveSessionSecret(shared: Uint8Array, handshake: Handshake): Buffer {
  const salt = createHash('sha256').update(handshakeTranscript(handshake)).digest();
  return Buffer.from(hkdfSync('sha256', shared, salt, SESSION_SECRET_INFO, SESSION_SECRET_SIZE));
}

/** HMAC-SHA256(secret, attachProofData(...)): what ATTACH_PROOF carries. */
export function attachProof(
  secret: Uint8Array,
  sessionId: Uint8Array,
  attachNonce: Uint8Array,
  channelBinding: Uint8Array,
): Buffer {
  return createHmac('sha256', secret)
    .update(attachProofData(sessionId, attachNonce, channelBinding))
    .digest();
}

/** Recomputes the proof and compares in constant time. */
export function verifyAttachProof(
  secret: Uint8Array,
  sessionId: Uint8Array,
  attachNonce: Uint8Array,
  channelBinding: Uint8Array,
  proof: Uint8Array,
): boolean {
  return safeEqual(attachProof(secret, sessionId, attachNonce, channelBinding), proof);
}

/**
 * HMAC-SHA256(secret, attachAnswerData(...)): the daemon's proof in its ATTACH answer under
 * Capability.AttachProven (spec/SECURITY.md §6.4), over the client's proof it accepted.
 */
export function attachAnswerProof(
  secret: Uint8Array,
  sessionId: Uint8Array,
  attachNonce: Uint8Array,
  channelBinding: Uint8Array,
  clientProof: Uint8Array,
): Buffer {
  return createHmac('sha256', secret)
    .update(attachAnswerData(sessionId, attachNonce, channelBinding, clientProof))
    .digest();
}

/** Recomputes the daemon's proof and compares in constant time; an absent proof is not valid. */
export function verifyAttachAnswer(
  secret: Uint8Array,
  sessionId: Uint8Array,
  attachNonce: Uint8Array,
  channelBinding: Uint8Array,
  clientProof: Uint8Array,
  answer: Uint8Array | undefined,
): boolean {
  if (answer === undefined) return false;
  return safeEqual(attachAnswerProof(secret, sessionId, attachNonce, channelBinding, clientProof), answer);
}
