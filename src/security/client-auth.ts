/**
 * The client's side of the session handshake (spec/SECURITY.md §4.2, §5, §6): a fresh AUTH_START, the checks of
 * AUTH_CHALLENGE (host key = TLS key, host proof, pin or same-host token), then one proof per credential in the
 * order of §5.1 until the daemon accepts one. No socket I/O: the transfer client sends and receives.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type AuthChallengeMsg,
  AuthMethodCode,
  type AuthProofMsg,
  type AuthStartMsg,
  errorArea,
  FcpError,
  MsgType,
} from '../protocol/index.js';
import { authError } from './auth-errors.js';
import { spkiDigest, spkiFingerprint } from './host-key.js';
import { vetFirstContact } from './first-contact.js';
import { encryptedKeyMessage, loadIdentityFile } from './identity-file.js';
import { checkHostKey, knownHostName, replaceHostKey, verifyHostKey } from './known-hosts.js';
import { checkHostProof, makePublicKeyProof, makeTokenProof } from './proofs.js';
import { deriveSessionSecret, generateKx, type KxKeyPair, x25519Shared } from './session-secret.js';
import { SshAgentClient } from './ssh-agent.js';
import { parsePublicKeyLine, type SshSigner } from './ssh-keys.js';
import { type LocalToken, readLocalToken } from './token.js';
import { type Handshake, NONCE_SIZE, type RequestBinding } from './transcript.js';

/** Default key files, in ssh's order, tried after the agent (spec/SECURITY.md §5.1). */
const DEFAULT_KEY_FILES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

export interface ClientAuthOptions {
  /** Host and port as connected to (after ssh-config HostName): the known_hosts name. */
  readonly host: string;
  readonly port: number;
  readonly knownHostsFile: string;
  /** `--accept-host-key SHA256:...`: replace the pin when the daemon presents exactly this key. */
  readonly acceptHostKey: string | undefined;
  /** The address the connection reached (a TCP socket's remote address), '' for another kind of channel. */
  readonly peerAddress?: string;
  /** The account asked for (`user@host` or ssh-config User); empty for the daemon's own. */
  readonly user: string;
  /** `-i FILE`. */
  readonly identityFile: string | undefined;
  /** IdentityFile entries of the host's ssh-config block. */
  readonly configIdentityFiles: readonly string[];
  /** Where ~/.ssh is. */
  readonly homeDir: string;
  /** $SSH_AUTH_SOCK, if any. */
  readonly agentSocket: string | undefined;
  /** Lines worth showing with -v (why the token was not used, an offered key, ...). */
  readonly onNotice: (text: string) => void;
  /** A host key written to known_hosts: shown unless -q, as ssh's "Permanently added" line is. */
  readonly onHostKeyRecorded: (text: string) => void;
  /**
   * A daemon started by fcp over ssh (spec/SECURITY.md §14): its key must have exactly this fingerprint,
   * known_hosts is neither read nor written, and the only proof offered is the one-time secret's.
   */
  readonly oneTime?: OneTimeCredential;
  /** fcp --dry-run: known_hosts is checked as always but never written; a new key is only reported. */
  readonly knownHostsReadOnly?: boolean;
}

/** What the bootstrap line of `fcpd --serve-once` gave the client, through ssh. */
export interface OneTimeCredential {
  readonly hostFingerprint: string;
  readonly secret: Buffer;
}

/** The channel the handshake runs on: TLS (the daemon's certificate key and the exporter) or plaintext. */
export interface ChannelInfo {
  /** SPKI of the certificate TLS verified; undefined in plaintext mode. */
  readonly tlsHostKey: Uint8Array | undefined;
  /** TLS exporter (32 bytes), or empty in plaintext mode. */
  readonly binding: Uint8Array;
}

/** What the control connection's handshake leaves for the ATTACH connections. */
export interface AuthenticatedSession {
  readonly sessionSecret: Buffer;
  readonly hostFingerprint: string;
}

/** One control connection's handshake. Call start(), acceptChallenge(), then proofs() until one is accepted. */
export class ClientAuthExchange {
  readonly #opts: ClientAuthOptions;
  readonly #channel: ChannelInfo;
  readonly #kx: KxKeyPair;
  readonly start: AuthStartMsg;
  #handshake: Handshake | undefined;
  #token: LocalToken | undefined;
  #shared: Buffer | undefined;
  #hostFingerprint = '';
  #agent: SshAgentClient | undefined;
  #offered = 0;
  #encryptedKey: string | undefined;

  constructor(opts: ClientAuthOptions, channel: ChannelInfo) {
    this.#opts = opts;
    this.#channel = channel;
    this.#kx = generateKx();
    this.start = {
      type: MsgType.AuthStart,
      clientNonce: randomBytes(NONCE_SIZE),
      clientKx: this.#kx.publicRaw,
      user: opts.user,
    };
  }

  /**
   * Verifies AUTH_CHALLENGE before any proof is made: the host key is the one TLS proved, its proof signs
   * this handshake, and it is either vouched for by our own same-host token or pinned in known_hosts.
   */
  async acceptChallenge(ch: AuthChallengeMsg): Promise<void> {
    const tlsKey = this.#channel.tlsHostKey;
    if (tlsKey !== undefined && !Buffer.from(tlsKey).equals(Buffer.from(ch.hostKey))) {
      throw authError(
        'FCP_ERR_AUTH_HOST_PROOF',
        'the daemon signed with a key other than its TLS certificate',
      );
    }
    const handshake: Handshake = {
      clientNonce: this.start.clientNonce,
      serverNonce: ch.serverNonce,
      channelBinding: this.#channel.binding,
      hostKeyFingerprint: spkiDigest(ch.hostKey),
      clientKx: this.start.clientKx,
      serverKx: ch.serverKx,
      user: this.start.user,
    };
    if (!checkHostProof(ch.hostKey, handshake, ch.hostProof)) throw authError('FCP_ERR_AUTH_HOST_PROOF');
    this.#shared = x25519Shared(this.#kx.privateKey, ch.serverKx);
    this.#hostFingerprint = spkiFingerprint(ch.hostKey);
    if (this.#opts.oneTime !== undefined) {
      // The fingerprint came through ssh, which authenticated the host: it is the pin, and nothing else is.
      this.#checkOneTimeKey(this.#opts.oneTime);
      this.#handshake = handshake;
      return;
    }
    this.#checkAcceptedKey();
    this.#token = await this.#usableToken(ch.tokenPath);
    // Only a token of our own is ever used, and it vouches for the key (§4.2): no pin needed.
    if (this.#token === undefined) {
      await this.#vetFirstContact();
      await this.#checkPin();
    }
    this.#handshake = handshake;
  }

  /** The daemon's host key fingerprint, once the challenge is accepted. */
  get hostFingerprint(): string {
    return this.#hostFingerprint;
  }

  /** One AUTH_PROOF per credential (spec/SECURITY.md §5.1), made lazily: an agent is asked only when needed. */
  async *proofs(request: RequestBinding): AsyncGenerator<AuthProofMsg> {
    const h = this.#handshake;
    if (h === undefined) throw new Error('proofs() before acceptChallenge()');
    const oneTime = this.#opts.oneTime;
    if (oneTime !== undefined) {
      // Only the secret: an agent or a key file offered to a daemon we started would tell it nothing new.
      this.#offered++;
      yield tokenProof(oneTime.secret, h, request);
      return;
    }
    if (this.#token !== undefined) {
      this.#offered++;
      yield tokenProof(this.#token.token, h, request);
    }
    for await (const signer of this.#signers()) {
      let proof: Buffer;
      try {
        proof = await makePublicKeyProof(signer, h, request);
      } catch (err) {
        this.#opts.onNotice(
          `${signer.source}: cannot sign with ${signer.publicKey.fingerprint}: ${msg(err)}`,
        );
        continue;
      }
      this.#offered++;
      this.#opts.onNotice(
        `offering ${signer.publicKey.type} ${signer.publicKey.fingerprint} (${signer.source})`,
      );
      yield {
        type: MsgType.AuthProof,
        method: AuthMethodCode.PublicKey,
        keyBlob: signer.publicKey.blob,
        proof,
      };
    }
  }

  /** The error to report once proofs() has nothing more to offer. */
  exhausted(): FcpError {
    if (this.#offered > 0) return authError('FCP_ERR_AUTH_DENIED');
    if (this.#encryptedKey !== undefined) {
      return authError('FCP_ERR_AUTH_KEY_ENCRYPTED', encryptedKeyMessage(this.#encryptedKey), {
        path: this.#encryptedKey,
      });
    }
    return authError('FCP_ERR_AUTH_NO_IDENTITY', 'no SSH key or local token: run ssh-add, or pass -i FILE');
  }

  /** The secret the ATTACH proofs are made with (spec/SECURITY.md §6.4). */
  session(): AuthenticatedSession {
    if (this.#handshake === undefined || this.#shared === undefined) throw new Error('not authenticated');
    return {
      sessionSecret: deriveSessionSecret(this.#shared, this.#handshake),
      hostFingerprint: this.#hostFingerprint,
    };
  }

  close(): void {
    this.#agent?.close();
    this.#agent = undefined;
  }

  /**
   * §5.4: used only when the file is our own (root too uses no other account's: another account's daemon
   * could have named it to take root's login) and a token of this very daemon; anything else is skipped.
   */
  async #usableToken(path: string): Promise<LocalToken | undefined> {
    if (path === '') return undefined;
    try {
      const token = await readLocalToken(path);
      if (token.hostFingerprint !== this.#hostFingerprint) {
        this.#opts.onNotice(`not using the token ${path}: it belongs to another daemon`);
        return undefined;
      }
      return token;
    } catch (err) {
      this.#opts.onNotice(`not using the token ${path}: ${msg(err)}`);
      return undefined;
    }
  }

  /**
   * A fingerprint given with --accept-host-key is what the user checked out of band: any other key fails
   * the run, first contact included (where trust on first use would otherwise pin it), and even when a
   * same-host token would vouch for the key.
   */
  #checkAcceptedKey(): void {
    const expected = this.#opts.acceptHostKey;
    if (expected === undefined || expected === this.#hostFingerprint) return;
    const name = knownHostName(this.#opts.host, this.#opts.port);
    throw authError(
      'FCP_ERR_AUTH_HOST_KEY_CHANGED',
      `the daemon at ${name} presented the host key ${this.#hostFingerprint}, not ${expected} ` +
        `as --accept-host-key requires; refusing to connect (${this.#opts.knownHostsFile} left unchanged)`,
    );
  }

  #checkOneTimeKey(oneTime: OneTimeCredential): void {
    if (oneTime.hostFingerprint === this.#hostFingerprint) return;
    throw authError(
      'FCP_ERR_AUTH_HOST_PROOF',
      `the daemon at ${knownHostName(this.#opts.host, this.#opts.port)} presented the host key ` +
        `${this.#hostFingerprint}, not ${oneTime.hostFingerprint} as the fcpd started over ssh announced`,
    );
  }

  /**
   * A daemon on this host never pinned: trusted on first use only when it listens as us or root
   * (first-contact.ts), or when --accept-host-key names its key.
   */
  async #vetFirstContact(): Promise<void> {
    const contact = {
      host: this.#opts.host,
      port: this.#opts.port,
      peerAddress: this.#opts.peerAddress ?? '',
      fingerprint: this.#hostFingerprint,
    };
    await vetFirstContact(contact, this.#opts.acceptHostKey, this.#opts.knownHostsFile);
  }

  async #checkPin(): Promise<void> {
    const { knownHostsFile: file, acceptHostKey } = this.#opts;
    const name = knownHostName(this.#opts.host, this.#opts.port);
    const fingerprint = this.#hostFingerprint;
    try {
      if (this.#opts.knownHostsReadOnly === true) {
        if ((await checkHostKey(file, name, fingerprint)) === 'unknown')
          this.#opts.onHostKeyRecorded(
            `not pinning host key ${fingerprint} for ${name}: a dry run writes nothing`,
          );
        return;
      }
      const recorded =
        acceptHostKey === fingerprint
          ? await replaceHostKey(file, name, fingerprint)
          : (await verifyHostKey(file, name, fingerprint)) === 'pinned';
      if (recorded) this.#opts.onHostKeyRecorded(`pinned host key ${fingerprint} for ${name} in ${file}`);
    } catch (err) {
      if (err instanceof FcpError && errorArea(err.code) === 'AUTH') throw err;
      // As ssh: a known_hosts we cannot write does not stop a connection whose key did not change.
      this.#opts.onNotice(`cannot record the host key in ${file}: ${msg(err)}`);
    }
  }

  /** -i FILE, then the agent's keys, then IdentityFile and the default key files (spec/SECURITY.md §5.1). */
  async *#signers(): AsyncGenerator<SshSigner> {
    const offered = new Set<string>();
    const agentKeys = await this.#agentSigners();
    const explicit = this.#opts.identityFile;
    if (explicit !== undefined) {
      const pub = await publicKeyOf(explicit);
      const viaAgent = agentKeys.find((s) => pub !== undefined && s.publicKey.blob.equals(pub));
      const signer = viaAgent ?? (await this.#loadKeyFile(explicit, true));
      if (signer !== undefined) {
        offered.add(signer.publicKey.blob.toString('base64'));
        yield signer;
      }
    }
    for (const signer of agentKeys) {
      const id = signer.publicKey.blob.toString('base64');
      if (offered.has(id)) continue;
      offered.add(id);
      yield signer;
    }
    const files = [
      ...this.#opts.configIdentityFiles,
      ...DEFAULT_KEY_FILES.map((f) => join(this.#opts.homeDir, '.ssh', f)),
    ];
    for (const file of files) {
      if (file === explicit || !existsSync(file)) continue;
      const pub = await publicKeyOf(file);
      if (pub !== undefined && offered.has(pub.toString('base64'))) continue;
      const signer = await this.#loadKeyFile(file, false);
      if (signer === undefined) continue;
      const id = signer.publicKey.blob.toString('base64');
      if (offered.has(id)) continue;
      offered.add(id);
      yield signer;
    }
  }

  async #agentSigners(): Promise<SshSigner[]> {
    const socket = this.#opts.agentSocket;
    if (socket === undefined || socket === '') return [];
    try {
      this.#agent = await SshAgentClient.connect(socket);
      const identities = await this.#agent.listIdentities();
      const out: SshSigner[] = [];
      for (const id of identities) {
        if (id.publicKey !== undefined) out.push(this.#agent.signer({ ...id, publicKey: id.publicKey }));
      }
      return out;
    } catch (err) {
      this.#opts.onNotice(`ssh-agent: ${msg(err)}`);
      return [];
    }
  }

  /** A key file's signer; an encrypted one is remembered for the final message. `-i` errors are fatal. */
  async #loadKeyFile(file: string, explicit: boolean): Promise<SshSigner | undefined> {
    try {
      return await loadIdentityFile(file);
    } catch (err) {
      if (err instanceof FcpError && err.code === 'FCP_ERR_AUTH_KEY_ENCRYPTED') {
        this.#encryptedKey ??= file;
        return undefined;
      }
      if (explicit) throw err instanceof FcpError ? err : new FcpError('FCP_ERR_AUTH_MALFORMED', msg(err));
      this.#opts.onNotice(`skipping ${file}: ${msg(err)}`);
      return undefined;
    }
  }
}

/** The proof of a shared secret: the same-host token's, or the one-time secret's (same HMAC, §6.3). */
function tokenProof(secret: Buffer, h: Handshake, request: RequestBinding): AuthProofMsg {
  return {
    type: MsgType.AuthProof,
    method: AuthMethodCode.Token,
    keyBlob: new Uint8Array(0),
    proof: makeTokenProof(secret, h, request),
  };
}

/** The public key blob from FILE.pub, if there is a readable one. */
async function publicKeyOf(file: string): Promise<Buffer | undefined> {
  try {
    return parsePublicKeyLine(await readFile(`${file}.pub`, 'utf8')).key.blob;
  } catch {
    return undefined;
  }
}

function msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
