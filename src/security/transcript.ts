/**
 * The exact bytes each proof covers (spec/SECURITY.md §6). Every field is an SSH `string` (u32 length + bytes)
 * or a fixed-size byte, so no two different transcripts encode to the same bytes; each proof starts with its
 * own domain-separation label, so a signature or MAC made for one purpose is worthless for another.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { SshWriter } from './ssh-wire.js';

export const NONCE_SIZE = 32;
export const KX_PUBLIC_SIZE = 32;
export const FINGERPRINT_SIZE = 32;
/** Longest user name accepted in a handshake (POSIX names are far shorter). */
export const MAX_USER_BYTES = 255;

export const HOST_PROOF_LABEL = 'fcp-host-v1';
export const CLIENT_AUTH_LABEL = 'fcp-auth-v1';
export const ATTACH_PROOF_LABEL = 'fcp-attach-v1';
/** The daemon's answer to ATTACH_PROOF (Capability.AttachProven): the same data under its own label. */
export const ATTACH_ANSWER_LABEL = 'fcp-attach-daemon-v1';
/** PROTOCOL.sshsig namespace: the agent signs only the SSHSIG wrapper, never the transcript itself. */
export const SSHSIG_NAMESPACE = 'fcp-auth-v1@fcp';
const SSHSIG_MAGIC = Buffer.from('SSHSIG', 'latin1');
const SSHSIG_HASH = 'sha512';

export const AuthMethod = {
  PublicKey: 'publickey',
  Token: 'token',
} as const;
export type AuthMethodName = (typeof AuthMethod)[keyof typeof AuthMethod];

/** What both ends know once AUTH_CHALLENGE has been received. */
export interface Handshake {
  readonly clientNonce: Uint8Array;
  readonly serverNonce: Uint8Array;
  /** 32 bytes of TLS exporter output, or empty on a --no-encryption connection. */
  readonly channelBinding: Uint8Array;
  /** SHA-256 of the daemon's host key SPKI. */
  readonly hostKeyFingerprint: Uint8Array;
  readonly clientKx: Uint8Array;
  readonly serverKx: Uint8Array;
  readonly user: string;
}

/** The PUSH or PULL message the client asks for, as its frame type and exact payload bytes. */
export interface RequestBinding {
  readonly type: number;
  readonly payload: Uint8Array;
}

/**
 * The shared part of every proof:
 * string client_nonce[32] | string server_nonce[32] | string channel_binding[32 or 0] |
 * string host_key_fingerprint[32] | string client_kx[32] | string server_kx[32] | string user (UTF-8)
 */
export function handshakeTranscript(h: Handshake): Buffer {
  checkLength('client nonce', h.clientNonce, NONCE_SIZE);
  checkLength('server nonce', h.serverNonce, NONCE_SIZE);
  if (h.channelBinding.length !== 0) checkLength('channel binding', h.channelBinding, 32);
  checkLength('host key fingerprint', h.hostKeyFingerprint, FINGERPRINT_SIZE);
  checkLength('client key share', h.clientKx, KX_PUBLIC_SIZE);
  checkLength('server key share', h.serverKx, KX_PUBLIC_SIZE);
  const user = Buffer.from(h.user, 'utf8');
  if (user.length > MAX_USER_BYTES) throw new RangeError(`user name longer than ${MAX_USER_BYTES} bytes`);
  return new SshWriter()
    .string(h.clientNonce)
    .string(h.serverNonce)
    .string(h.channelBinding)
    .string(h.hostKeyFingerprint)
    .string(h.clientKx)
    .string(h.serverKx)
    .string(user)
    .toBuffer();
}

/** What the daemon signs with its host key in AUTH_CHALLENGE: string "fcp-host-v1" | transcript. */
export function hostProofData(h: Handshake): Buffer {
  return new SshWriter().string(HOST_PROOF_LABEL).raw(handshakeTranscript(h)).toBuffer();
}

/**
 * The client's authentication message:
 * string "fcp-auth-v1" | transcript | byte request_type | string SHA-256(request payload) |
 * string method ("publickey" or "token") | string public key blob (empty for "token")
 */
export function clientAuthData(
  h: Handshake,
  request: RequestBinding,
  method: AuthMethodName,
  keyBlob: Uint8Array,
): Buffer {
  if (method === AuthMethod.Token && keyBlob.length !== 0) throw new RangeError('token proofs carry no key');
  return new SshWriter()
    .string(CLIENT_AUTH_LABEL)
    .raw(handshakeTranscript(h))
    .u8(request.type)
    .string(createHash('sha256').update(request.payload).digest())
    .string(method)
    .string(keyBlob)
    .toBuffer();
}

/**
 * The bytes an SSH key actually signs (OpenSSH PROTOCOL.sshsig §3): "SSHSIG" | string namespace |
 * string reserved ("") | string "sha512" | string SHA-512(message). The magic makes the blob useless as an
 * SSH userauth request, so a hostile daemon cannot use fcp's signature to log in over ssh.
 */
export function sshsigSignedData(message: Uint8Array, namespace: string = SSHSIG_NAMESPACE): Buffer {
  return new SshWriter()
    .raw(SSHSIG_MAGIC)
    .string(namespace)
    .string('')
    .string(SSHSIG_HASH)
    .string(createHash(SSHSIG_HASH).update(message).digest())
    .toBuffer();
}

/** string "fcp-attach-v1" | string session_id[16] | string attach_nonce[32] | string channel_binding[32 or 0] */
export function attachProofData(
  sessionId: Uint8Array,
  attachNonce: Uint8Array,
  channelBinding: Uint8Array,
): Buffer {
  return attachWriter(ATTACH_PROOF_LABEL, sessionId, attachNonce, channelBinding).toBuffer();
}

/**
 * string "fcp-attach-daemon-v1" | string session_id[16] | string attach_nonce[32] | string channel_binding |
 * string client_proof[32]: what the daemon's ATTACH answer proves, bound to the client's proof it answers.
 */
export function attachAnswerData(
  sessionId: Uint8Array,
  attachNonce: Uint8Array,
  channelBinding: Uint8Array,
  clientProof: Uint8Array,
): Buffer {
  return attachWriter(ATTACH_ANSWER_LABEL, sessionId, attachNonce, channelBinding)
    .string(clientProof)
    .toBuffer();
}

function attachWriter(
  label: string,
  sessionId: Uint8Array,
  attachNonce: Uint8Array,
  channelBinding: Uint8Array,
): SshWriter {
  checkLength('attach nonce', attachNonce, NONCE_SIZE);
  return new SshWriter().string(label).string(sessionId).string(attachNonce).string(channelBinding);
}

/** Constant-time equality; different lengths are unequal (the length itself is not secret). */
export function safeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function checkLength(what: string, bytes: Uint8Array, size: number): void {
  if (bytes.length !== size) throw new RangeError(`${what} must be ${size} bytes, got ${bytes.length}`);
}
