/**
 * The authentication handshake and the proof that admits an extra connection: AUTH_START, AUTH_CHALLENGE,
 * AUTH_PROOF, AUTH_RETRY, ATTACH_CHALLENGE, ATTACH_PROOF (spec/SECURITY.md §6.1, §7).
 */
import {
  ATTACH_PROOF_SIZE,
  AUTH_KX_SIZE,
  AUTH_NONCE_SIZE,
  AuthMethodCode,
  type AuthMethodCodeValue,
  MAX_AUTH_KEY_BLOB_BYTES,
  MAX_AUTH_PROOF_BYTES,
  MAX_AUTH_USER_BYTES,
  MAX_HOST_KEY_BYTES,
  MAX_HOST_PROOF_BYTES,
  MAX_PATH_BYTES,
  MsgType,
} from '../constants.js';
import { FcpError } from '../errors.js';
import type { MessageCodec } from './codec.js';
import { capped, cappedText, checkedPath, copied, fixed } from './fields.js';

/** Client -> daemon, right after HELLO on a control connection (spec/SECURITY.md §6.1). */
export interface AuthStartMsg {
  type: typeof MsgType.AuthStart;
  clientNonce: Uint8Array;
  clientKx: Uint8Array;
  /** The account the client asks for; empty = whichever the daemon serves. */
  user: string;
}
export interface AuthChallengeMsg {
  type: typeof MsgType.AuthChallenge;
  serverNonce: Uint8Array;
  serverKx: Uint8Array;
  /** DER SubjectPublicKeyInfo of the daemon's Ed25519 host key. */
  hostKey: Uint8Array;
  hostProof: Uint8Array;
  /** Absolute path of the daemon's local token file, '' when it has none. */
  tokenPath: string;
}
export interface AuthProofMsg {
  type: typeof MsgType.AuthProof;
  method: AuthMethodCodeValue;
  /** SSH public key blob (publickey), empty for a token proof. */
  keyBlob: Uint8Array;
  proof: Uint8Array;
}
export interface AuthRetryMsg {
  type: typeof MsgType.AuthRetry;
  attemptsLeft: number;
}
export interface AttachChallengeMsg {
  type: typeof MsgType.AttachChallenge;
  nonce: Uint8Array;
}
export interface AttachProofMsg {
  type: typeof MsgType.AttachProof;
  proof: Uint8Array;
}

export const authStartCodec: MessageCodec<AuthStartMsg> = {
  type: MsgType.AuthStart,
  maxPayload: AUTH_NONCE_SIZE + AUTH_KX_SIZE + 2 + MAX_AUTH_USER_BYTES,
  encode(w, msg) {
    w.bytes(fixed(msg.clientNonce, AUTH_NONCE_SIZE, 'client nonce'));
    w.bytes(fixed(msg.clientKx, AUTH_KX_SIZE, 'client key share'));
    w.str16(cappedText(msg.user, MAX_AUTH_USER_BYTES, 'user'));
  },
  decode(r) {
    return {
      type: MsgType.AuthStart,
      clientNonce: copied(r, AUTH_NONCE_SIZE, 'client nonce'),
      clientKx: copied(r, AUTH_KX_SIZE, 'client key share'),
      user: r.str16('user', MAX_AUTH_USER_BYTES),
    };
  },
};

export const authChallengeCodec: MessageCodec<AuthChallengeMsg> = {
  type: MsgType.AuthChallenge,
  maxPayload:
    AUTH_NONCE_SIZE + AUTH_KX_SIZE + 2 + MAX_HOST_KEY_BYTES + 2 + MAX_HOST_PROOF_BYTES + 2 + MAX_PATH_BYTES,
  encode(w, msg) {
    w.bytes(fixed(msg.serverNonce, AUTH_NONCE_SIZE, 'server nonce'));
    w.bytes(fixed(msg.serverKx, AUTH_KX_SIZE, 'server key share'));
    w.bytes16(capped(msg.hostKey, MAX_HOST_KEY_BYTES, 'host key'));
    w.bytes16(capped(msg.hostProof, MAX_HOST_PROOF_BYTES, 'host proof'));
    w.str16(checkedPath(msg.tokenPath, 'token path'));
  },
  decode(r) {
    return {
      type: MsgType.AuthChallenge,
      serverNonce: copied(r, AUTH_NONCE_SIZE, 'server nonce'),
      serverKx: copied(r, AUTH_KX_SIZE, 'server key share'),
      hostKey: r.bytes16('host key', MAX_HOST_KEY_BYTES),
      hostProof: r.bytes16('host proof', MAX_HOST_PROOF_BYTES),
      tokenPath: r.str16('token path', MAX_PATH_BYTES),
    };
  },
};

export const authProofCodec: MessageCodec<AuthProofMsg> = {
  type: MsgType.AuthProof,
  maxPayload: 1 + 2 + MAX_AUTH_KEY_BLOB_BYTES + 2 + MAX_AUTH_PROOF_BYTES,
  encode(w, msg) {
    w.u8(msg.method);
    w.bytes16(capped(msg.keyBlob, MAX_AUTH_KEY_BLOB_BYTES, 'key blob'));
    w.bytes16(capped(msg.proof, MAX_AUTH_PROOF_BYTES, 'proof'));
  },
  decode(r) {
    const method = r.u8('method');
    if (method !== AuthMethodCode.PublicKey && method !== AuthMethodCode.Token) {
      throw new FcpError('FCP_ERR_PROTO_MALFORMED', `unknown authentication method ${method}`);
    }
    return {
      type: MsgType.AuthProof,
      method,
      keyBlob: r.bytes16('key blob', MAX_AUTH_KEY_BLOB_BYTES),
      proof: r.bytes16('proof', MAX_AUTH_PROOF_BYTES),
    };
  },
};

export const authRetryCodec: MessageCodec<AuthRetryMsg> = {
  type: MsgType.AuthRetry,
  maxPayload: 1,
  encode(w, msg) {
    w.u8(msg.attemptsLeft);
  },
  decode(r) {
    return { type: MsgType.AuthRetry, attemptsLeft: r.u8('attempts left') };
  },
};

export const attachChallengeCodec: MessageCodec<AttachChallengeMsg> = {
  type: MsgType.AttachChallenge,
  maxPayload: AUTH_NONCE_SIZE,
  encode(w, msg) {
    w.bytes(fixed(msg.nonce, AUTH_NONCE_SIZE, 'attach nonce'));
  },
  decode(r) {
    return { type: MsgType.AttachChallenge, nonce: copied(r, AUTH_NONCE_SIZE, 'attach nonce') };
  },
};

export const attachProofCodec: MessageCodec<AttachProofMsg> = {
  type: MsgType.AttachProof,
  maxPayload: ATTACH_PROOF_SIZE,
  encode(w, msg) {
    w.bytes(fixed(msg.proof, ATTACH_PROOF_SIZE, 'attach proof'));
  },
  decode(r) {
    return { type: MsgType.AttachProof, proof: copied(r, ATTACH_PROOF_SIZE, 'attach proof') };
  },
};
