/**
 * A client of ssh-agent (draft-miller-ssh-agent §3, §4.4, §4.5): list the identities it holds and ask it to
 * sign. Only the messages fcp needs; every reply is length-checked before it is buffered.
 */
import net from 'node:net';
import { authError } from './auth-errors.js';
import {
  isSupportedKeyType,
  parsePublicKeyBlob,
  parseSignatureBlob,
  type RsaSigAlgorithm,
  type SshPublicKey,
  type SshSigner,
} from './ssh-keys.js';
import { SshReader, SshWriter } from './ssh-wire.js';

const SSH_AGENT_FAILURE = 5;
const SSH_AGENTC_REQUEST_IDENTITIES = 11;
const SSH_AGENT_IDENTITIES_ANSWER = 12;
const SSH_AGENTC_SIGN_REQUEST = 13;
const SSH_AGENT_SIGN_RESPONSE = 14;
/** Sign-request flags selecting the RSA signature hash (draft-miller-ssh-agent §4.5.1). */
export const SSH_AGENT_RSA_SHA2_256 = 0x02;
export const SSH_AGENT_RSA_SHA2_512 = 0x04;

/** OpenSSH's agent caps its messages at 256 KiB; a longer length means a broken or hostile socket. */
export const MAX_AGENT_MESSAGE = 256 * 1024;
/** Listing is instant; signing may wait for a confirmation prompt (`ssh-add -c`) or a hardware token. */
export const AGENT_LIST_TIMEOUT_MS = 10_000;
export const AGENT_SIGN_TIMEOUT_MS = 60_000;
/** More keys than this in one agent is not a setup fcp tries one by one. */
export const MAX_AGENT_KEYS = 64;

export interface AgentIdentity {
  /** undefined when the agent holds a key type fcp does not support (it is then never offered). */
  readonly publicKey: SshPublicKey | undefined;
  readonly blob: Buffer;
  readonly comment: string;
}

/** One connection to an agent; requests are answered in order, one at a time. */
export class SshAgentClient {
  readonly #socket: net.Socket;
  /** An answer's bytes so far, as they came (#socketOnData joins them when the answer is whole). */
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;
  /** The answer's whole length (its 4-byte length field included), once that field is in. */
  #answerBytes: number | undefined;
  #waiter:
    { resolve: (msg: Buffer) => void; reject: (err: Error) => void; timer: NodeJS.Timeout } | undefined;
  #failed: Error | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#socketOnData(chunk));
    socket.on('error', (err) => this.#fail(authError('FCP_ERR_AUTH_AGENT', `ssh-agent: ${err.message}`)));
    socket.on('close', () => this.#fail(authError('FCP_ERR_AUTH_AGENT', 'ssh-agent closed the connection')));
  }

  /** Connects to the agent at `path` (normally $SSH_AUTH_SOCK). */
  static connect(path: string): Promise<SshAgentClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ path });
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        resolve(new SshAgentClient(socket));
      });
      socket.once('error', (err) =>
        reject(
          authError('FCP_ERR_AUTH_AGENT', `cannot reach ssh-agent at ${path}: ${err.message}`, {
            cause: err,
          }),
        ),
      );
    });
  }

  /** The keys the agent holds, in its order. */
  listIdentities(): Promise<AgentIdentity[]> {
    return this.#serial(async () => {
      const reply = await this.#request(Buffer.of(SSH_AGENTC_REQUEST_IDENTITIES), AGENT_LIST_TIMEOUT_MS);
      const r = new SshReader(reply, 'ssh-agent identities answer');
      if (r.u8() !== SSH_AGENT_IDENTITIES_ANSWER)
        throw authError('FCP_ERR_AUTH_AGENT', 'ssh-agent refused to list keys');
      const count = r.u32();
      if (count > MAX_AGENT_KEYS) throw authError('FCP_ERR_AUTH_AGENT', `ssh-agent holds ${count} keys`);
      const out: AgentIdentity[] = [];
      for (let i = 0; i < count; i++) {
        const blob = Buffer.from(r.string());
        const comment = r.string().toString('utf8');
        out.push({ publicKey: tryParse(blob), blob, comment });
      }
      r.end();
      return out;
    });
  }

  /** Asks the agent to sign `data` with the key `blob`; returns the SSH signature blob. */
  sign(blob: Uint8Array, data: Uint8Array, flags: number): Promise<Buffer> {
    return this.#serial(async () => {
      const req = new SshWriter().u8(SSH_AGENTC_SIGN_REQUEST).string(blob).string(data).u32(flags).toBuffer();
      const reply = await this.#request(req, AGENT_SIGN_TIMEOUT_MS);
      const r = new SshReader(reply, 'ssh-agent sign response');
      const type = r.u8();
      if (type === SSH_AGENT_FAILURE) throw authError('FCP_ERR_AUTH_AGENT', 'ssh-agent refused to sign');
      if (type !== SSH_AGENT_SIGN_RESPONSE)
        throw authError('FCP_ERR_AUTH_AGENT', `ssh-agent answered type ${type}`);
      const sig = Buffer.from(r.string());
      r.end();
      parseSignatureBlob(sig);
      return sig;
    });
  }

  /** A signer for one of the agent's keys. */
  signer(identity: AgentIdentity & { publicKey: SshPublicKey }): SshSigner {
    return {
      publicKey: identity.publicKey,
      comment: identity.comment,
      source: 'ssh-agent',
      sign: async (data: Uint8Array, rsaAlgorithm: RsaSigAlgorithm = 'rsa-sha2-512') => {
        const isRsa = identity.publicKey.type === 'ssh-rsa';
        const sig = await this.sign(identity.blob, data, isRsa ? rsaFlag(rsaAlgorithm) : 0);
        const want = isRsa ? rsaAlgorithm : identity.publicKey.type;
        const got = parseSignatureBlob(sig).algorithm;
        // An agent that ignores the flags signs with ssh-rsa (SHA-1), which the daemon refuses anyway.
        if (got !== want) throw authError('FCP_ERR_AUTH_AGENT', `ssh-agent signed with ${got}, not ${want}`);
        return sig;
      },
    };
  }

  close(): void {
    this.#socket.destroy();
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    // The queue only orders requests: the caller gets `next` with its error, the next request runs anyway.
    this.#queue = next.catch(() => {});
    return next;
  }

  #request(body: Buffer, timeoutMs: number): Promise<Buffer> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(authError('FCP_ERR_AUTH_AGENT', `ssh-agent did not answer within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.#waiter = { resolve, reject, timer };
      const len = Buffer.allocUnsafe(4);
      len.writeUInt32BE(body.length);
      this.#socket.write(Buffer.concat([len, body]));
    });
  }

  #socketOnData(chunk: Buffer): void {
    // Chunks are kept as they came and joined once the answer is whole: joining on every chunk copied what
    // was buffered again each time, and an agent that dripped a 256 KiB answer a byte at a time cost ~0.65
    // CPU s before the timeout.
    this.#buffered.push(chunk);
    this.#bufferedBytes += chunk.length;
    if (this.#answerBytes === undefined) {
      if (this.#bufferedBytes < 4) return;
      const len = Buffer.concat(this.#buffered, this.#bufferedBytes).readUInt32BE(0);
      if (len === 0 || len > MAX_AGENT_MESSAGE) {
        this.#fail(authError('FCP_ERR_AUTH_AGENT', `ssh-agent sent a message of ${len} bytes`));
        return;
      }
      this.#answerBytes = 4 + len;
    }
    if (this.#bufferedBytes < this.#answerBytes) return;
    if (this.#bufferedBytes > this.#answerBytes || this.#waiter === undefined) {
      this.#fail(authError('FCP_ERR_AUTH_AGENT', 'ssh-agent sent an unrequested message'));
      return;
    }
    const msg = Buffer.concat(this.#buffered, this.#bufferedBytes).subarray(4);
    this.#buffered = [];
    this.#bufferedBytes = 0;
    this.#answerBytes = undefined;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    clearTimeout(waiter.timer);
    waiter.resolve(msg);
  }

  #fail(err: Error): void {
    if (this.#failed !== undefined) return;
    this.#failed = err;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter !== undefined) {
      clearTimeout(waiter.timer);
      waiter.reject(err);
    }
    this.#socket.destroy();
  }
}

function rsaFlag(algorithm: RsaSigAlgorithm): number {
  return algorithm === 'rsa-sha2-256' ? SSH_AGENT_RSA_SHA2_256 : SSH_AGENT_RSA_SHA2_512;
}

function tryParse(blob: Buffer): SshPublicKey | undefined {
  try {
    const type = new SshReader(blob, 'agent key').name();
    return isSupportedKeyType(type) ? parsePublicKeyBlob(blob) : undefined;
  } catch {
    return undefined;
  }
}
