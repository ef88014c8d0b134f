// A hand-driven fcp peer for hostile-input tests: it speaks raw frames over a loopback socket, as a client
// dialling fcpd or as a fake daemon that the real `fcp` dials. It can send well-formed messages, DATA
// frames and frames with a wrong checksum, a lying length or an unknown type, and it decodes whatever the
// other side sends with the real FrameDecoder. Every wait is bounded; nothing here throws on a dead socket
// (a hostile peer keeps writing into a connection the other side already dropped).
//
// Protocol v2 puts TLS and authentication first (spec/SECURITY.md): a raw client speaks TLS by default and
// the session helpers (openPush, sendPushRequest, sendAttach, ...) authenticate with the daemon's same-host
// token, so a hostile peer is an *authenticated* one and the confinement checks behind the handshake stay
// reachable. The fake daemon has its own host key and writes a token for it, which the real client uses.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type tls from 'node:tls';
import {
  type AbortMsg,
  type AuthChallengeMsg,
  AuthMethodCode,
  type DataMsg,
  type DoneEntry,
  decodeMessage,
  encodeDataPrefix,
  encodeFrame,
  encodeMessage,
  FcpError,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  type HelloMsg,
  type Message,
  MsgType,
  PIECE_SIZE,
  PROTOCOL_VERSION_MAX,
  PROTOCOL_VERSION_MIN,
  type PullMsg,
  type PushMsg,
  type ReadyEntry,
  type SessionMsg,
  typeName,
} from '../../src/protocol/index.js';
import { type HostKey, loadOrCreateHostKey, spkiDigest } from '../../src/security/host-key.js';
import { makeHostProof, makeTokenProof } from '../../src/security/proofs.js';
import {
  attachProof,
  deriveSessionSecret,
  generateKx,
  type KxKeyPair,
  x25519Shared,
} from '../../src/security/session-secret.js';
import {
  acceptTls,
  channelBinding,
  connectTls,
  createServerContext,
} from '../../src/security/tls-channel.js';
import { createLocalToken, type LocalToken, readLocalToken } from '../../src/security/token.js';
import type { Handshake } from '../../src/security/transcript.js';
import { type Hasher, loadHasher } from '../../src/transfer/checksum.js';

/** Default bound of every wait in this helper. */
export const WAIT_MS = 5_000;

export const LOOPBACK = '127.0.0.1';

/** A message type number; `MsgOf<T>` is the member of the Message union with that type. */
export type MsgTypeNumber = Message['type'];
export type MsgOf<T extends MsgTypeNumber> = Extract<Message, { type: T }>;

// ---------------------------------------------------------------------------------------------------------
// Frame builders

export interface RawFrameOptions {
  /** The header's checksum; defaults to the correct xxh32 of the payload. */
  checksum?: number;
  /** The header's length; defaults to the payload's real length. May lie either way. */
  length?: number;
}

/**
 * One frame as bytes, header fields overridable: a wrong checksum, a length that disagrees with the payload
 * or exceeds the type's limit, any type byte (unknown ones included).
 */
export function rawFrame(
  hasher: Hasher,
  type: number,
  payload: Uint8Array,
  opts: RawFrameOptions = {},
): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_SIZE);
  header.writeUInt8(type, 0);
  header.writeUInt32BE((opts.checksum ?? hasher.h32(payload)) >>> 0, 1);
  header.writeUInt16BE(opts.length ?? payload.byteLength, 5);
  return Buffer.concat([header, payload]);
}

/** A well-formed control frame, exactly as fcp would send it. */
export function messageFrame(hasher: Hasher, msg: Exclude<Message, DataMsg>): Buffer {
  return encodeFrame(msg.type, encodeMessage(msg), hasher.h32);
}

/** The payload of `msg`, for building frames with a damaged header or a truncated body. */
export function messagePayload(msg: Exclude<Message, DataMsg>): Buffer {
  return Buffer.from(encodeMessage(msg));
}

/** A well-formed DATA frame (one frame: `bytes` must fit in MAX_DATA_BYTES). */
export function dataFrame(
  hasher: Hasher,
  id: number,
  seq: number,
  offset: number,
  bytes: Uint8Array,
): Buffer {
  return encodeFrame(MsgType.Data, Buffer.concat([encodeDataPrefix(id, seq, offset), bytes]), hasher.h32);
}

/** Every DATA frame that carries `content` as file `id`, piece by piece, in order (spec §5.3). */
export function dataFramesFor(hasher: Hasher, id: number, content: Buffer, maxChunk = 60_000): Buffer[] {
  const frames: Buffer[] = [];
  for (let seq = 0; seq * PIECE_SIZE < content.length; seq++) {
    const piece = content.subarray(seq * PIECE_SIZE, Math.min((seq + 1) * PIECE_SIZE, content.length));
    for (let off = 0; off < piece.length; off += maxChunk) {
      frames.push(
        dataFrame(hasher, id, seq, off, piece.subarray(off, Math.min(off + maxChunk, piece.length))),
      );
    }
  }
  return frames;
}

/** The FILE_END checksum of `content`: xxh64 over the big-endian xxh64 of each piece (spec §4). */
export function fileChecksum(hasher: Hasher, content: Buffer): bigint {
  const pieces = Math.ceil(content.length / PIECE_SIZE);
  const hashes = new BigUint64Array(pieces);
  for (let seq = 0; seq < pieces; seq++) {
    hashes[seq] = hasher.pieceHash(content.subarray(seq * PIECE_SIZE, (seq + 1) * PIECE_SIZE));
  }
  return hasher.fileHash(hashes);
}

export function helloMsg(overrides: Partial<Omit<HelloMsg, 'type'>> = {}): HelloMsg {
  return {
    type: MsgType.Hello,
    versionMin: PROTOCOL_VERSION_MIN,
    versionMax: PROTOCOL_VERSION_MAX,
    capabilities: 0,
    agent: 'fcp-hostile-test',
    ...overrides,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The peer

type Waiter = () => void;

/** What the receiving side said about one entry so far. */
export interface EntryAnswer {
  ready: ReadyEntry | undefined;
  done: DoneEntry | undefined;
}

export class RawPeer {
  readonly socket: Socket;
  readonly hasher: Hasher;
  /** The TLS exporter of this connection (empty for a plaintext one): what proofs bind (§3.1). */
  binding: Uint8Array = Buffer.alloc(0);
  /** Set by a RawListener: the fake daemon's identity, for serveSession. */
  daemon: FakeDaemonIdentity | undefined;
  /** Every message decoded so far, in arrival order; DATA bytes are copied, so they stay valid. */
  readonly received: Message[] = [];
  /** Set when the other side sent bytes our decoder refused; decoding stops there. */
  decodeError: FcpError | undefined;
  /** The first socket error, if any (a reset is normal when the other side aborts). */
  socketError: Error | undefined;
  readonly #decoder: FrameDecoder;
  #cursor = 0;
  #closed = false;
  #waiters = new Set<Waiter>();

  constructor(socket: Socket, hasher: Hasher) {
    this.socket = socket;
    this.hasher = hasher;
    this.#decoder = new FrameDecoder(hasher.h32, (type, payload) => this.#deliver(type, payload));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#socketOnData(chunk));
    socket.on('error', (err) => {
      this.socketError ??= err;
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  /** Dials `port` on loopback and runs TLS 1.3 (any certificate: hostile tests do not pin). */
  static async connect(port: number, host = LOOPBACK, timeoutMs = WAIT_MS): Promise<RawPeer> {
    const raw = await dialRaw(port, host, timeoutMs);
    let secure: tls.TLSSocket;
    try {
      secure = await connectTls(raw, timeoutMs);
    } catch (err) {
      raw.destroy();
      throw err;
    }
    const peer = new RawPeer(secure, await loadHasher());
    peer.binding = channelBinding(secure);
    return peer;
  }

  /** Dials without TLS: a --no-encryption client (or a v1 one). `localAddress` picks the source address. */
  static async connectPlain(
    port: number,
    opts: { host?: string; localAddress?: string; timeoutMs?: number } = {},
  ): Promise<RawPeer> {
    const raw = await dialRaw(port, opts.host ?? LOOPBACK, opts.timeoutMs ?? WAIT_MS, opts.localAddress);
    return new RawPeer(raw, await loadHasher());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Every ABORT received so far. */
  get aborts(): AbortMsg[] {
    return this.received.filter((m): m is AbortMsg => m.type === MsgType.Abort);
  }

  /**
   * Writes raw bytes and waits until they are handed to the kernel. Resolves false instead of throwing when
   * the socket is gone, the write failed, or the other side stopped reading for `timeoutMs` (a hostile test
   * must not hang on a peer that applies backpressure).
   */
  write(bytes: Uint8Array, timeoutMs = WAIT_MS): Promise<boolean> {
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      const onClose = () => {
        clearTimeout(timer);
        resolve(false);
      };
      this.socket.once('close', onClose);
      this.socket.write(bytes, (err) => {
        clearTimeout(timer);
        this.socket.off('close', onClose);
        resolve(err === null || err === undefined);
      });
    });
  }

  send(msg: Exclude<Message, DataMsg>): Promise<boolean> {
    return this.write(messageFrame(this.hasher, msg));
  }

  sendData(id: number, seq: number, offset: number, bytes: Uint8Array): Promise<boolean> {
    return this.write(dataFrame(this.hasher, id, seq, offset, bytes));
  }

  /** Sends `content` as file `id` in DATA frames, then FILE_END with `checksum` (default: the right one). */
  async sendFile(
    id: number,
    content: Buffer,
    checksum = fileChecksum(this.hasher, content),
  ): Promise<boolean> {
    for (const frame of dataFramesFor(this.hasher, id, content)) {
      if (!(await this.write(frame))) return false;
    }
    return this.send({ type: MsgType.FileEnd, id, code: 0, checksum });
  }

  /**
   * The next message not yet taken by next()/expect(). Rejects on timeout, or when the connection closed
   * with nothing left to read.
   */
  async next(timeoutMs = WAIT_MS): Promise<Message> {
    await this.until(() => this.#cursor < this.received.length || this.#closed, timeoutMs, 'a message');
    const msg = this.received[this.#cursor];
    if (msg === undefined) throw new Error(`connection closed${this.#why()}`);
    this.#cursor++;
    return msg;
  }

  /**
   * The next message of `type`, skipping others (PIECE_ACK, FILE_DONE, ...). An ABORT met on the way
   * rejects, naming its code and text, unless ABORT is what was asked for.
   */
  async expect<T extends MsgTypeNumber>(type: T, timeoutMs = WAIT_MS): Promise<MsgOf<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const msg = await this.next(Math.max(1, deadline - Date.now())).catch((err: Error) => {
        throw new Error(`waiting for ${typeName(type)}: ${err.message}`);
      });
      if (msg.type === type) return msg as MsgOf<T>;
      if (msg.type === MsgType.Abort) {
        throw new Error(
          `waiting for ${typeName(type)}: got ABORT 0x${msg.code.toString(16)} ${JSON.stringify(msg.text)}`,
        );
      }
    }
  }

  /** The FILE_READY and FILE_DONE entries received for `id` so far. */
  answerFor(id: number): EntryAnswer {
    let ready: ReadyEntry | undefined;
    let done: DoneEntry | undefined;
    for (const m of this.received) {
      if (m.type === MsgType.FileReady) ready ??= m.entries.find((e) => e.id === id);
      if (m.type === MsgType.FileDone) done ??= m.entries.find((e) => e.id === id);
    }
    return { ready, done };
  }

  /**
   * Waits until the receiver answered entry `id`: a FILE_READY entry, or a FILE_DONE alone (links are
   * settled by FILE_DONE). Rejects if the connection closes first.
   */
  async waitAnswer(id: number, timeoutMs = WAIT_MS): Promise<EntryAnswer> {
    const answered = () => {
      const a = this.answerFor(id);
      return a.ready !== undefined || a.done !== undefined;
    };
    await this.until(() => answered() || this.#closed, timeoutMs, `an answer for entry ${id}`);
    if (!answered()) throw new Error(`connection closed before entry ${id} was answered${this.#why()}`);
    return this.answerFor(id);
  }

  /** Waits for the FILE_DONE entry of `id`; rejects if the connection closes first. */
  async waitFileDone(id: number, timeoutMs = WAIT_MS): Promise<DoneEntry> {
    const done = () => this.answerFor(id).done;
    await this.until(() => done() !== undefined || this.#closed, timeoutMs, `FILE_DONE for entry ${id}`);
    const entry = done();
    if (entry === undefined) throw new Error(`connection closed before FILE_DONE ${id}${this.#why()}`);
    return entry;
  }

  /** Resolves once the socket is closed (after the other side ended or reset it); rejects on timeout. */
  waitClose(timeoutMs = WAIT_MS): Promise<void> {
    return this.until(() => this.#closed, timeoutMs, 'the connection to close');
  }

  /** Waits for an ABORT and the close that follows; returns the ABORT's wire code. */
  async expectAbortAndClose(timeoutMs = WAIT_MS): Promise<number> {
    await this.waitClose(timeoutMs);
    const abort = this.aborts[0];
    if (abort === undefined) throw new Error(`connection closed without ABORT${this.#why()}`);
    return abort.code;
  }

  /** Resolves when `ready()` holds; re-checked on every message and on close. */
  until(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = () => {
        if (!ready()) return;
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${this.#why()}`));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** Half-closes our side (FIN) after queued writes. */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  #why(): string {
    const types = this.received.map((m) => typeName(m.type)).join(',');
    const abort = this.aborts[0];
    const a = abort === undefined ? '' : `; ABORT 0x${abort.code.toString(16)} ${JSON.stringify(abort.text)}`;
    const d = this.decodeError === undefined ? '' : `; undecodable input: ${this.decodeError.message}`;
    return ` (received: [${types}]${a}${d})`;
  }

  #deliver(type: number, payload: Uint8Array): void {
    const msg = decodeMessage(type, payload);
    this.received.push(msg.type === MsgType.Data ? { ...msg, data: Buffer.from(msg.data) } : msg);
  }

  #socketOnData(chunk: Buffer): void {
    if (this.decodeError !== undefined) return;
    try {
      this.#decoder.push(chunk);
    } catch (err) {
      this.decodeError = err instanceof FcpError ? err : new FcpError('FCP_ERR_INTERNAL', String(err));
    }
    this.#wake();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Handshakes by hand, as a client

/** Dials TCP (optionally from `localAddress`), bounded. */
function dialRaw(port: number, host: string, timeoutMs: number, localAddress?: string): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const s = net.connect({ host, port, ...(localAddress === undefined ? {} : { localAddress }) });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect to ${host}:${port} timed out`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Sends HELLO and waits for the daemon's. */
export async function exchangeHello(peer: RawPeer, hello: HelloMsg = helloMsg()): Promise<HelloMsg> {
  await peer.send(hello);
  return peer.expect(MsgType.Hello);
}

/** Session secrets of the sessions opened here, by session id (hex), for sendAttach's proofs. */
const secrets = new Map<string, Buffer>();

/** What a client handshake established, once the proof is sent. */
export interface ClientAuth {
  handshake: Handshake;
  kx: KxKeyPair;
  challenge: AuthChallengeMsg;
  /** The session secret both ends derive (spec/SECURITY.md §6.4). */
  secret: Buffer;
}

/** What authenticate() sends besides the usual. */
export interface AuthenticateOptions {
  hello?: HelloMsg;
  /** Sent right after the request, before any proof. */
  beforeProofs?: ReadonlyArray<Exclude<Message, DataMsg>>;
  /** Before the good proof: one refused token proof per element, each followed by that element's messages. */
  refusedFirst?: ReadonlyArray<ReadonlyArray<Exclude<Message, DataMsg>>>;
}

/**
 * HELLO, AUTH_START, the daemon's HELLO and AUTH_CHALLENGE, then `request` and an AUTH_PROOF made with the
 * daemon's same-host token (it must be readable by us: the in-process daemon's, or one of ours).
 */
export async function authenticate(
  peer: RawPeer,
  request: PushMsg | PullMsg,
  opts: AuthenticateOptions = {},
): Promise<ClientAuth> {
  const kx = generateKx();
  const clientNonce = randomBytes(32);
  await peer.send(opts.hello ?? helloMsg());
  await peer.send({ type: MsgType.AuthStart, clientNonce, clientKx: kx.publicRaw, user: '' });
  await peer.expect(MsgType.Hello);
  const challenge = await peer.expect(MsgType.AuthChallenge);
  const handshake: Handshake = {
    clientNonce,
    serverNonce: challenge.serverNonce,
    channelBinding: peer.binding,
    hostKeyFingerprint: spkiDigest(challenge.hostKey),
    clientKx: kx.publicRaw,
    serverKx: challenge.serverKx,
    user: '',
  };
  const token = await readLocalToken(challenge.tokenPath);
  await peer.send(request);
  const binding = { type: request.type, payload: encodeMessage(request) };
  for (const msg of opts.beforeProofs ?? []) await peer.send(msg);
  for (const after of opts.refusedFirst ?? []) {
    const wrong = { ...handshake, serverNonce: randomBytes(32) };
    await peer.send({
      type: MsgType.AuthProof,
      method: AuthMethodCode.Token,
      keyBlob: new Uint8Array(0),
      proof: makeTokenProof(token.token, wrong, binding),
    });
    for (const msg of after) await peer.send(msg);
  }
  await peer.send({
    type: MsgType.AuthProof,
    method: AuthMethodCode.Token,
    keyBlob: new Uint8Array(0),
    proof: makeTokenProof(token.token, handshake, binding),
  });
  const secret = deriveSessionSecret(x25519Shared(kx.privateKey, challenge.serverKx), handshake);
  return { handshake, kx, challenge, secret };
}

export interface OpenOptions {
  flags?: number;
  connections?: number;
}

function pushMsg(dest: string, opts: OpenOptions): PushMsg {
  return { type: MsgType.Push, flags: opts.flags ?? 0, connections: opts.connections ?? 1, dest };
}

/** TLS, authentication, PUSH `dest`; resolves with the peer and its SESSION (rejects on ABORT). */
export async function openPush(
  port: number,
  dest: string,
  opts: OpenOptions = {},
): Promise<{ peer: RawPeer; session: SessionMsg; secret: Buffer }> {
  const peer = await RawPeer.connect(port);
  try {
    const auth = await authenticate(peer, pushMsg(dest, opts));
    const session = await peer.expect(MsgType.Session);
    secrets.set(Buffer.from(session.sessionId).toString('hex'), auth.secret);
    return { peer, session, secret: auth.secret };
  } catch (err) {
    peer.destroy();
    throw err;
  }
}

/** TLS, authentication and PUSH `dest`, without waiting for the answer: for requests the daemon must refuse. */
export async function sendPushRequest(port: number, dest: string, opts: OpenOptions = {}): Promise<RawPeer> {
  const peer = await RawPeer.connect(port);
  await authenticate(peer, pushMsg(dest, opts));
  return peer;
}

/** TLS, authentication and PULL `source` (no patterns), without waiting for the answer. */
export async function sendPullRequest(
  port: number,
  source: string,
  opts: OpenOptions = {},
): Promise<RawPeer> {
  const peer = await RawPeer.connect(port);
  await authenticate(peer, {
    type: MsgType.Pull,
    flags: opts.flags ?? 0,
    connections: opts.connections ?? 1,
    source,
    include: [],
    exclude: [],
  });
  return peer;
}

/**
 * TLS, HELLO, ATTACH `sessionId`, the daemon's ATTACH_CHALLENGE, and ATTACH_PROOF made with `secret` (by
 * default the secret of a session openPush opened, else random bytes), without waiting for the answer (an
 * echoed ATTACH or an ABORT).
 */
export async function sendAttach(
  port: number,
  sessionId: Uint8Array,
  secret?: Uint8Array,
  opts: { plain?: boolean } = {},
): Promise<RawPeer> {
  const peer = opts.plain === true ? await RawPeer.connectPlain(port) : await RawPeer.connect(port);
  await exchangeHello(peer);
  await peer.send({ type: MsgType.Attach, sessionId });
  const challenge = await peer.expect(MsgType.AttachChallenge);
  const key = secret ?? secrets.get(Buffer.from(sessionId).toString('hex')) ?? randomBytes(32);
  await peer.send({
    type: MsgType.AttachProof,
    proof: attachProof(key, sessionId, challenge.nonce, peer.binding),
  });
  return peer;
}

// ---------------------------------------------------------------------------------------------------------
// A fake daemon

/** The fake daemon's host key and the same-host token it wrote for it (so the real client logs in). */
export interface FakeDaemonIdentity {
  hostKey: HostKey;
  token: LocalToken;
}

/**
 * Listens on an ephemeral loopback port, runs the server side of TLS with its own host key, and hands out
 * each accepted connection as a RawPeer. It writes a same-host token for its key in a private directory, so
 * a client running as us authenticates (and takes the key as vouched for, touching no known_hosts).
 */
export class RawListener {
  readonly #server: net.Server;
  readonly #hasher: Hasher;
  readonly #identity: FakeDaemonIdentity;
  readonly #dir: string;
  readonly #accepted: RawPeer[] = [];
  readonly #all = new Set<RawPeer>();
  #waiter: (() => void) | undefined;

  private constructor(server: net.Server, hasher: Hasher, identity: FakeDaemonIdentity, dir: string) {
    this.#server = server;
    this.#hasher = hasher;
    this.#identity = identity;
    this.#dir = dir;
    const context = createServerContext(identity.hostKey);
    server.on('connection', (socket) => {
      socket.on('error', () => {});
      acceptTls(socket, context, WAIT_MS).then(
        (secure) => {
          secure.on('error', () => {});
          const peer = new RawPeer(secure, this.#hasher);
          peer.binding = channelBinding(secure);
          peer.daemon = this.#identity;
          this.#all.add(peer);
          this.#accepted.push(peer);
          this.#waiter?.();
        },
        () => socket.destroy(),
      );
    });
  }

  static async listen(): Promise<RawListener> {
    const hasher = await loadHasher();
    const dir = await mkdtemp(path.join(tmpdir(), 'fcp-fake-daemon-'));
    const hostKey = await loadOrCreateHostKey(path.join(dir, 'state'));
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, LOOPBACK, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    const token = await createLocalToken(path.join(dir, 'state'), port, hostKey.fingerprint);
    return new RawListener(server, hasher, { hostKey, token }, dir);
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get identity(): FakeDaemonIdentity {
    return this.#identity;
  }

  /** The next accepted connection, oldest first. */
  async accept(timeoutMs = WAIT_MS): Promise<RawPeer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const peer = this.#accepted.shift();
      if (peer !== undefined) return peer;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no connection accepted within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
  }

  /** Stops listening, destroys every connection it accepted, removes its key and token. */
  async close(): Promise<void> {
    for (const peer of this.#all) peer.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await rm(this.#dir, { recursive: true, force: true });
  }
}

export interface ServeOptions {
  flags?: number;
  maxConnections?: number;
  sessionId?: Uint8Array;
  /** HELLO capability bits of the fake daemon (default none). */
  capabilities?: number;
  /** Runs between the client's AUTH_PROOF and our SESSION. */
  beforeSession?: (peer: RawPeer) => Promise<void>;
}

/**
 * The daemon's side of the handshake: HELLO <-> HELLO, AUTH_START -> AUTH_CHALLENGE (signed with the fake
 * daemon's key, naming its token), the request, any AUTH_PROOF (accepted unchecked: a hostile daemon lets
 * anyone in), then SESSION. Returns the request.
 */
export async function serveSession(peer: RawPeer, opts: ServeOptions = {}): Promise<PushMsg | PullMsg> {
  const identity = peer.daemon;
  if (identity === undefined) throw new Error('serveSession needs a peer accepted by a RawListener');
  await peer.expect(MsgType.Hello);
  await peer.send(helloMsg({ agent: 'fcp-hostile-daemon', capabilities: opts.capabilities ?? 0 }));
  const start = await peer.expect(MsgType.AuthStart);
  const kx = generateKx();
  const handshake: Handshake = {
    clientNonce: start.clientNonce,
    serverNonce: randomBytes(32),
    channelBinding: peer.binding,
    hostKeyFingerprint: identity.hostKey.fingerprintBytes,
    clientKx: start.clientKx,
    serverKx: kx.publicRaw,
    user: start.user,
  };
  await peer.send({
    type: MsgType.AuthChallenge,
    serverNonce: handshake.serverNonce,
    serverKx: kx.publicRaw,
    hostKey: identity.hostKey.spki,
    hostProof: makeHostProof(identity.hostKey, handshake),
    tokenPath: identity.token.path,
  });
  const request = await peer.next();
  if (request.type !== MsgType.Push && request.type !== MsgType.Pull) {
    throw new Error(`expected PUSH or PULL, got ${typeName(request.type)}`);
  }
  await peer.expect(MsgType.AuthProof);
  await opts.beforeSession?.(peer);
  await peer.send({
    type: MsgType.Session,
    sessionId: opts.sessionId ?? Buffer.alloc(16, 0xab),
    flags: opts.flags ?? 0,
    maxConnections: opts.maxConnections ?? 1,
    pieceSize: PIECE_SIZE,
  });
  return request;
}
