/**
 * The daemon's side of the session handshake (spec/SECURITY.md §6): answer AUTH_START with a signed challenge,
 * judge each AUTH_PROOF against the served account's authorized_keys or the local token, and derive the
 * session secret once a proof is accepted. No I/O but reading authorized_keys; the server drives the sockets.
 */
import { randomBytes } from 'node:crypto';
import {
  type AuthChallengeMsg,
  AuthMethodCode,
  type AuthProofMsg,
  type AuthStartMsg,
  encodeMessage,
  MsgType,
  type PullMsg,
  type PushMsg,
} from '../protocol/index.js';
import { authError } from './auth-errors.js';
import { checkAuthorizedKey } from './authorized-keys.js';
import type { AuthorizedKeysFile } from './authorized-keys-file.js';
import type { HostKey } from './host-key.js';
import { checkPublicKeyProof, checkTokenProof, makeHostProof } from './proofs.js';
import { deriveSessionSecret, generateKx, x25519Shared } from './session-secret.js';
import { parsePublicKeyBlob } from './ssh-keys.js';
import type { LocalToken } from './token.js';
import { type Handshake, NONCE_SIZE, type RequestBinding } from './transcript.js';

/** Proofs one connection may offer before it is refused (sshd's MaxAuthTries is 6 too). */
export const MAX_AUTH_ATTEMPTS = 6;

export interface DaemonAuthConfig {
  readonly hostKey: HostKey;
  /** The account this daemon serves; AUTH_START may name it or nobody. */
  readonly account: string;
  /** The same-host token, when the daemon wrote one. */
  readonly token: LocalToken | undefined;
  /** authorized_keys of the served account; undefined when SSH-key logins are refused. */
  readonly authorizedKeys: AuthorizedKeysFile | undefined;
  /** Why SSH-key logins are refused, sent to the client (e.g. root without --user, spec/SECURITY.md §8). */
  readonly publicKeyRefusal: string | undefined;
  /**
   * fcpd --serve-once: the one-time secret is then the only credential, good for one login
   * (spec/SECURITY.md §14); the token and SSH keys are not looked at.
   */
  readonly oneTime?: OneTimeLogin;
  readonly log: (line: string) => void;
}

/** Why a serve-once daemon refuses an SSH key: it was started for one client, which holds its secret. */
export const ONE_TIME_ONLY = 'this fcpd was started by fcp over ssh and accepts only its one-time secret';
/** Why a serve-once daemon refuses every login after the first. */
export const ONE_TIME_SPENT =
  'this fcpd was started by fcp over ssh for one session, and its one-time secret has been used';

/**
 * The one-time secret of a serve-once daemon (spec/SECURITY.md §14.2): accepted for one control login,
 * then never again, whatever the connection; later connections of that session join it by ATTACH.
 */
export class OneTimeLogin {
  readonly #secret: Buffer;
  #spent = false;

  constructor(secret: Buffer) {
    this.#secret = secret;
  }

  get spent(): boolean {
    return this.#spent;
  }

  /** True, once, for a proof made with the secret. Synchronous: two racing logins cannot both win. */
  accept(h: Handshake, binding: RequestBinding, proof: Uint8Array): boolean {
    if (this.#spent || !checkTokenProof(this.#secret, h, binding, proof)) return false;
    this.#spent = true;
    return true;
  }
}

/** What an accepted proof established. */
export interface AuthResult {
  /** How the client proved itself, for the log: `publickey SHA256:... (comment)` or `local token`. */
  readonly who: string;
  readonly sessionSecret: Buffer;
}

/** The PUSH or PULL a proof covers: its type and the exact payload bytes (spec/SECURITY.md §6.3). */
export function requestBinding(request: PushMsg | PullMsg): RequestBinding {
  // Re-encoding a decoded message gives back its bytes: every layout is exact and strings are strict UTF-8.
  return { type: request.type, payload: encodeMessage(request) };
}

/** One connection's handshake, from AUTH_START to an accepted proof (or refusal). */
export class DaemonAuthExchange {
  readonly #config: DaemonAuthConfig;
  readonly #handshake: Handshake;
  readonly #shared: Buffer;
  readonly challenge: AuthChallengeMsg;
  #attempts = 0;

  /**
   * Checks the key share, then signs the challenge. Throws FCP_ERR_AUTH_MALFORMED for a bad key share.
   * `sameHost`: the client is on this host, the only place the token can be read, so the only client told
   * its path (which names the served account's state directory: §5.3 tells that to nobody else).
   */
  constructor(config: DaemonAuthConfig, start: AuthStartMsg, channelBinding: Uint8Array, sameHost: boolean) {
    this.#config = config;
    const kx = generateKx();
    this.#shared = x25519Shared(kx.privateKey, start.clientKx);
    this.#handshake = {
      clientNonce: start.clientNonce,
      serverNonce: randomBytes(NONCE_SIZE),
      channelBinding,
      hostKeyFingerprint: config.hostKey.fingerprintBytes,
      clientKx: start.clientKx,
      serverKx: kx.publicRaw,
      user: start.user,
    };
    this.challenge = {
      type: MsgType.AuthChallenge,
      serverNonce: this.#handshake.serverNonce,
      serverKx: kx.publicRaw,
      hostKey: config.hostKey.spki,
      hostProof: makeHostProof(config.hostKey, this.#handshake),
      tokenPath: sameHost ? (config.token?.path ?? '') : '',
    };
  }

  /** Proofs this connection may still offer. */
  get attemptsLeft(): number {
    return MAX_AUTH_ATTEMPTS - this.#attempts;
  }

  /**
   * Judges one proof for `request`: the result when accepted, undefined when refused with attempts left (the
   * caller sends AUTH_RETRY). Throws FCP_ERR_AUTH_DENIED when the attempts are used up, or at once when
   * SSH-key logins are refused by policy or another account is asked for. The reason a key is refused is
   * logged, never sent.
   */
  async verify(
    request: PushMsg | PullMsg,
    proof: AuthProofMsg,
    remote: string,
    remoteAddress: string,
  ): Promise<AuthResult | undefined> {
    this.#attempts++;
    const binding = requestBinding(request);
    const who = await this.#check(binding, proof, remote, remoteAddress);
    if (who !== undefined) {
      return { who, sessionSecret: deriveSessionSecret(this.#shared, this.#handshake) };
    }
    if (this.#attempts >= MAX_AUTH_ATTEMPTS) {
      throw authError('FCP_ERR_AUTH_DENIED', `authentication refused after ${MAX_AUTH_ATTEMPTS} attempts`);
    }
    return undefined;
  }

  async #check(
    binding: RequestBinding,
    proof: AuthProofMsg,
    remote: string,
    remoteAddress: string,
  ): Promise<string | undefined> {
    const refuse = (why: string): undefined => {
      this.#config.log(`${remote}: authentication refused: ${why}`);
      return undefined;
    };
    const user = this.#handshake.user;
    if (user !== '' && user !== this.#config.account) {
      // No other proof can help, so the client is told at once and why. It learns only that the name it
      // asked for is not served, never the served name: one account per daemon leaves little to enumerate.
      refuse(`asked for account ${JSON.stringify(user)}, this daemon serves ${this.#config.account}`);
      throw authError(
        'FCP_ERR_AUTH_DENIED',
        `this daemon does not serve the account ${JSON.stringify(user)} (ask without user@, or reach the fcpd of that account)`,
      );
    }
    const oneTime = this.#config.oneTime;
    if (oneTime !== undefined) return this.#checkOneTime(oneTime, binding, proof, remote, refuse);
    if (proof.method === AuthMethodCode.Token) {
      const token = this.#config.token;
      if (token === undefined) return refuse('token proof, but this daemon has no local token');
      if (proof.keyBlob.length !== 0) return refuse('token proof with a key blob');
      if (!checkTokenProof(token.token, this.#handshake, binding, proof.proof))
        return refuse('wrong token proof');
      return 'local token';
    }
    if (this.#config.publicKeyRefusal !== undefined) {
      this.#config.log(`${remote}: SSH-key login refused: ${this.#config.publicKeyRefusal}`);
      throw authError('FCP_ERR_AUTH_DENIED', this.#config.publicKeyRefusal);
    }
    let key: ReturnType<typeof parsePublicKeyBlob>;
    try {
      key = parsePublicKeyBlob(proof.keyBlob);
    } catch (err) {
      return refuse(`unusable public key: ${(err as Error).message}`);
    }
    const file = this.#config.authorizedKeys;
    if (file === undefined) return refuse('no authorized_keys file');
    const decision = checkAuthorizedKey(await file.load(), key.blob, { remoteAddress, nowMs: Date.now() });
    if (!decision.ok) return refuse(`${key.type} ${key.fingerprint}: ${decision.reason}`);
    if (!checkPublicKeyProof(key, this.#handshake, binding, proof.proof)) {
      return refuse(`${key.type} ${key.fingerprint}: bad signature`);
    }
    const comment = decision.entry.comment === '' ? '' : ` (${decision.entry.comment})`;
    return `publickey ${key.fingerprint}${comment}`;
  }

  /** A serve-once login: the token proof made with the one-time secret, once; SSH keys never. */
  #checkOneTime(
    oneTime: OneTimeLogin,
    binding: RequestBinding,
    proof: AuthProofMsg,
    remote: string,
    refuse: (why: string) => undefined,
  ): string | undefined {
    // No other proof can help in either case: the client is told at once, and why.
    const deny = (why: string): never => {
      this.#config.log(`${remote}: login refused: ${why}`);
      throw authError('FCP_ERR_AUTH_DENIED', why);
    };
    if (oneTime.spent) deny(ONE_TIME_SPENT);
    if (proof.method !== AuthMethodCode.Token) deny(ONE_TIME_ONLY);
    if (proof.keyBlob.length !== 0) return refuse('token proof with a key blob');
    if (!oneTime.accept(this.#handshake, binding, proof.proof)) return refuse('wrong one-time secret');
    return 'one-time secret';
  }
}
