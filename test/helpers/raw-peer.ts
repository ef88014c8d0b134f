// A hand-driven fcp peer for hostile-input tests: it speaks raw frames over a loopback socket, as a client
// dialling fcpd or as a fake daemon that the real `fcp` dials. It can send well-formed messages, DATA
// frames and frames with a wrong checksum, a lying length or an unknown type, and it decodes whatever the
// other side sends with the real FrameDecoder. Every wait is bounded; nothing here throws on a dead socket
// (a hostile peer keeps writing into a connection the other side already dropped).
import net, { type AddressInfo, type Socket } from 'node:net';
import {
  type AbortMsg,
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

  /** Dials `port` on loopback. */
  static async connect(port: number, host = LOOPBACK, timeoutMs = WAIT_MS): Promise<RawPeer> {
    const hasher = await loadHasher();
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = net.connect({ host, port });
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
    return new RawPeer(socket, hasher);
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

/** Sends HELLO and waits for the daemon's. */
export async function exchangeHello(peer: RawPeer, hello: HelloMsg = helloMsg()): Promise<HelloMsg> {
  await peer.send(hello);
  return peer.expect(MsgType.Hello);
}

export interface OpenOptions {
  flags?: number;
  connections?: number;
}

/** HELLO, then PUSH `dest`; resolves with the peer and its SESSION (rejects on ABORT). */
export async function openPush(
  port: number,
  dest: string,
  opts: OpenOptions = {},
): Promise<{ peer: RawPeer; session: SessionMsg }> {
  const peer = await RawPeer.connect(port);
  try {
    await exchangeHello(peer);
    await peer.send({ type: MsgType.Push, flags: opts.flags ?? 0, connections: opts.connections ?? 1, dest });
    return { peer, session: await peer.expect(MsgType.Session) };
  } catch (err) {
    peer.destroy();
    throw err;
  }
}

/** HELLO, then PUSH `dest`, without waiting for the answer: for requests the daemon must refuse. */
export async function sendPushRequest(port: number, dest: string, opts: OpenOptions = {}): Promise<RawPeer> {
  const peer = await RawPeer.connect(port);
  await exchangeHello(peer);
  await peer.send({ type: MsgType.Push, flags: opts.flags ?? 0, connections: opts.connections ?? 1, dest });
  return peer;
}

/** HELLO, then PULL `source` (no patterns), without waiting for the answer. */
export async function sendPullRequest(
  port: number,
  source: string,
  opts: OpenOptions = {},
): Promise<RawPeer> {
  const peer = await RawPeer.connect(port);
  await exchangeHello(peer);
  await peer.send({
    type: MsgType.Pull,
    flags: opts.flags ?? 0,
    connections: opts.connections ?? 1,
    source,
    include: [],
    exclude: [],
  });
  return peer;
}

/** HELLO, then ATTACH `sessionId`, without waiting for the answer (an echoed ATTACH or an ABORT). */
export async function sendAttach(port: number, sessionId: Uint8Array): Promise<RawPeer> {
  const peer = await RawPeer.connect(port);
  await exchangeHello(peer);
  await peer.send({ type: MsgType.Attach, sessionId });
  return peer;
}

// ---------------------------------------------------------------------------------------------------------
// A fake daemon

/** Listens on an ephemeral loopback port and hands out each accepted connection as a RawPeer. */
export class RawListener {
  readonly #server: net.Server;
  readonly #hasher: Hasher;
  readonly #accepted: RawPeer[] = [];
  readonly #all = new Set<RawPeer>();
  #waiter: (() => void) | undefined;

  private constructor(server: net.Server, hasher: Hasher) {
    this.#server = server;
    this.#hasher = hasher;
    server.on('connection', (socket) => {
      const peer = new RawPeer(socket, this.#hasher);
      this.#all.add(peer);
      this.#accepted.push(peer);
      this.#waiter?.();
    });
  }

  static async listen(): Promise<RawListener> {
    const hasher = await loadHasher();
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, LOOPBACK, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new RawListener(server, hasher);
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
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

  /** Stops listening and destroys every connection it accepted. */
  async close(): Promise<void> {
    for (const peer of this.#all) peer.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

export interface ServeOptions {
  flags?: number;
  maxConnections?: number;
  sessionId?: Uint8Array;
}

/** The daemon's side of the handshake: HELLO <-> HELLO, the request, then SESSION. Returns the request. */
export async function serveSession(peer: RawPeer, opts: ServeOptions = {}): Promise<PushMsg | PullMsg> {
  await peer.expect(MsgType.Hello);
  await peer.send(helloMsg({ agent: 'fcp-hostile-daemon' }));
  const request = await peer.next();
  if (request.type !== MsgType.Push && request.type !== MsgType.Pull) {
    throw new Error(`expected PUSH or PULL, got ${typeName(request.type)}`);
  }
  await peer.send({
    type: MsgType.Session,
    sessionId: opts.sessionId ?? Buffer.alloc(16, 0xab),
    flags: opts.flags ?? 0,
    maxConnections: opts.maxConnections ?? 1,
    pieceSize: PIECE_SIZE,
  });
  return request;
}
