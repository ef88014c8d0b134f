/**
 * The three proofs of the session handshake (spec/SECURITY.md §6), made and checked over the bytes of
 * transcript.ts: the daemon's host signature, the client's SSH signature, the client's local-token HMAC.
 */
import { createHmac } from 'node:crypto';
import { type HostKey, hostSign, verifyHostSignature } from './host-key.js';
import { type RsaSigAlgorithm, type SshPublicKey, type SshSigner, verifySshSignature } from './ssh-keys.js';
import {
  AuthMethod,
  clientAuthData,
  type Handshake,
  hostProofData,
  type RequestBinding,
  safeEqual,
  sshsigSignedData,
} from './transcript.js';

/** The daemon's Ed25519 signature over hostProofData, sent in AUTH_CHALLENGE. */
export function makeHostProof(hostKey: HostKey, h: Handshake): Buffer {
  return hostSign(hostKey, hostProofData(h));
}

/** The client's check of AUTH_CHALLENGE: `spki` is the key whose fingerprint is `h.hostKeyFingerprint`. */
export function checkHostProof(spki: Uint8Array, h: Handshake, signature: Uint8Array): boolean {
  return verifyHostSignature(spki, hostProofData(h), signature);
}

/** Signs the client's authentication message (wrapped as SSHSIG) with an agent or file key. */
export function makePublicKeyProof(
  signer: SshSigner,
  h: Handshake,
  request: RequestBinding,
  rsaAlgorithm?: RsaSigAlgorithm,
): Promise<Buffer> {
  const message = clientAuthData(h, request, AuthMethod.PublicKey, signer.publicKey.blob);
  return signer.sign(sshsigSignedData(message), rsaAlgorithm);
}

/** The daemon's check of a publickey proof; `key` must already be found in authorized_keys. */
export function checkPublicKeyProof(
  key: SshPublicKey,
  h: Handshake,
  request: RequestBinding,
  signature: Uint8Array,
): boolean {
  const message = clientAuthData(h, request, AuthMethod.PublicKey, key.blob);
  return verifySshSignature(key, sshsigSignedData(message), signature);
}

/** HMAC-SHA256(token, clientAuthData(..., "token", empty)). */
export function makeTokenProof(token: Uint8Array, h: Handshake, request: RequestBinding): Buffer {
  return createHmac('sha256', token)
    .update(clientAuthData(h, request, AuthMethod.Token, Buffer.alloc(0)))
    .digest();
}

/** Constant-time check of a token proof. */
export function checkTokenProof(
  token: Uint8Array,
  h: Handshake,
  request: RequestBinding,
  proof: Uint8Array,
): boolean {
  return safeEqual(makeTokenProof(token, h, request), proof);
}
