/**
 * A channel's stream wrapped with the frame decoder and backpressure-aware writes. It never learns what
 * carries the stream (TLS, plain TCP, an ssh child's stdio): only what its Channel says of it.
 *
 * Reading: every complete frame is decoded into a Message and handed to the current handler; a protocol
 * error sends ABORT and closes without a reset (see abort()). Writing: send() and sendData() return write()'s
 * verdict, and drained() waits for 'drain' *or* close, so a dead peer never hangs a writer (STYLE rule 4).
 */
import type { Duplex } from 'node:stream';
import {
  decodeMessage,
  FcpError,
  FRAME_HEADER_SIZE,
  type FrameChecksums,
  FrameDecoder,
  type Message,
  MsgType,
  toFcpError,
} from '../protocol/index.js';
import type { Channel } from './channel.js';
import { FrameWriter } from './frame-writer.js';
import { placeReads } from './placed-reads.js';
import type { RateLimit } from './rate-limit.js';

export interface ConnHandler {
  /** `frameBytes`: the frame's size on the wire (what an Inbox bounds before authentication). */
  onMessage(msg: Message, conn: FramedConn, frameBytes: number): void;
  /** Called once. `err` is undefined for a clean close at a frame boundary. */
  onClose(err: FcpError | undefined, conn: FramedConn): void;
  /**
   * A frame that failed to decode, or a handler that threw. Without this the connection sends ABORT and
   * closes; an engine overrides it to drop just a data connection and re-send what it carried.
   */
  onFrameError?(err: FcpError, conn: FramedConn): void;
  /**
   * Optional in-place receipt of DATA (see DataSink in protocol/frame.ts): the buffer a DATA frame's data is
   * to be copied into, or undefined to get it as a DataMsg through onMessage.
   */
  dataTarget?(
    conn: FramedConn,
    id: number,
    seq: number,
    offset: number,
    length: number,
  ): Uint8Array | undefined;
  /** The data asked for by dataTarget() arrived and its frame checksum matched. */
  dataLanded?(conn: FramedConn, id: number, seq: number, offset: number, data: Uint8Array): void;
}

/**
 * Why a connection stopped reading: messages held for the handshake (Inbox), piece writes behind (this
 * connection's, or the session's stores), our answers unsent, entry decisions behind (Receiver), a
 * --bwlimit debt being paid (rate).
 */
export type PauseReason = 'inbox' | 'writes' | 'stores' | 'backlog' | 'decisions' | 'rate' | 'output';

let nextConnId = 1;

/** Where reads go once a connection is aborting or closed: read and thrown away, never looked at. */
const DISCARD = new Uint8Array(16 * 1024);

/** How long an aborted connection reads and discards while waiting for the peer to close (see abort()). */
const ABORT_LINGER_MS = 2000;
/** How long what we still have queued gets to leave once the peer has closed its side (see #streamOnEnd). */
const PEER_END_LINGER_MS = 2000;

export class FramedConn extends FrameWriter {
  readonly #channel: Channel;
  readonly #stream: Duplex;
  /** Process-unique, for logs. */
  readonly connId = nextConnId++;
  readonly #decoder: FrameDecoder;
  #handler: ConnHandler | undefined;
  #closeError: FcpError | undefined;
  #closed = false;
  /** abort() ran: incoming bytes are read and thrown away until the stream closes. */
  #aborted = false;
  readonly #pausedBy = new Set<PauseReason>();
  #drainWaiters: Array<{ resolve: () => void; reject: (err: FcpError) => void }> = [];
  /** performance.now() of the last byte received (see lastSentMs); liveness checks read it. */
  lastReceivedMs = performance.now();
  /** Who is at the other end, for the message when it goes away ("the daemon at h:p"); else the address. */
  peerName: string | undefined;
  /** --bwlimit on what we read (a pull's receiver): see limitReading(). */
  #readLimit: RateLimit | undefined;
  /** Reads go where the decoder says (placed-reads.ts), not through 'data'. */
  #placed = false;
  /** Resumes reading once the --bwlimit debt is paid (see #payForRead). */
  #rateTimer: NodeJS.Timeout | undefined;

  constructor(channel: Channel, sums: FrameChecksums, handler?: ConnHandler) {
    super(channel.stream, sums);
    this.#channel = channel;
    const stream = channel.stream;
    this.#stream = stream;
    this.#handler = handler;
    this.#decoder = new FrameDecoder(sums.h32, (type, payload) => this.#deliver(type, payload));
    this.#decoder.setDataSink(
      {
        target: (id, seq, offset, length) => this.#handler?.dataTarget?.(this, id, seq, offset, length),
        landed: (id, seq, offset, data) => this.#handler?.dataLanded?.(this, id, seq, offset, data),
      },
      (a, b) => sums.h32Parts(a, b),
    );
    stream.on('data', (chunk: Buffer) => this.#streamOnData(chunk));
    stream.on('end', () => this.#streamOnEnd());
    stream.on('error', (err) => this.#streamOnError(err));
    stream.on('close', () => this.#streamOnClose());
    stream.on('drain', () => this.#settleDrain(undefined));
    // A stream may come paused (the daemon's first-byte sniff pauses a plaintext socket), and a 'data'
    // listener does not restart a stream paused by hand: reading starts here.
    this.#placeReads();
    stream.resume();
  }

  /** Switches to placed reads once nothing read the old way is left in the stream (see placed-reads.ts). */
  #placeReads(): void {
    this.#placed = placeReads(this.#stream, {
      next: () => (this.#closed || this.#aborted ? DISCARD : this.#decoder.readTarget()),
      read: (n) => this.#placedOnRead(n),
    });
  }

  /** What carries this connection: whether it encrypts, what proofs bind to, who is at the other end. */
  get channel(): Channel {
    return this.#channel;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True while we stopped reading because our consumer is behind. */
  get paused(): boolean {
    return this.#pausedBy.size > 0;
  }

  /** peerName, else the address: who to name when the connection goes away. */
  get peer(): string {
    return this.peerName ?? this.remote;
  }

  get remote(): string {
    return this.#channel.peer;
  }

  setHandler(handler: ConnHandler): void {
    this.#handler = handler;
  }

  /**
   * Called when both HELLOs offered Capability.TlsDataUnsummed. On an encrypted channel, DATA frames then go
   * out with chksum 0 and come in unchecked (spec/PROTOCOL.md §2): TLS's AEAD tag already authenticates every
   * byte and the piece hashes verify each file end to end, while xxh32 over every data byte cost each side
   * about 0.34 s of CPU per 2 GiB. On a plaintext channel nothing changes: there the checksum is what
   * catches a flipped bit.
   */
  omitDataChecksums(): void {
    if (!this.#channel.encrypted) return;
    this.omitSentDataChecksums();
    this.#decoder.skipDataChecksums();
  }

  /**
   * Caps what this connection reads at `limit`'s rate, shared with the session's other connections: each
   * chunk read is paid for, and reading stops until the debt is paid. The sender's window and socket buffers
   * fill meanwhile and hold it back, so a receiver caps a transfer whose sender does not know of the limit.
   */
  limitReading(limit: RateLimit): void {
    this.#readLimit = limit;
  }

  /** Resolves when the stream can take more, rejects if it closes first. */
  drained(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closeError ?? new FcpError('FCP_ERR_NET_CLOSED'));
    // A destroyed stream has not said 'close' yet: wait for it, rather than call it drained.
    if (!this.#stream.writableNeedDrain && !this.#stream.destroyed) return Promise.resolve();
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  /**
   * Stops reading for `reason` (a consumer is behind); frames already received are still delivered. Reading
   * goes on only once every reason has resumed: one consumer catching up must not undo another's pause.
   */
  pause(reason: PauseReason): void {
    if (this.#aborted) return;
    if (this.#pausedBy.size === 0) this.#stream.pause();
    this.#pausedBy.add(reason);
  }

  resume(reason: PauseReason): void {
    if (!this.#pausedBy.delete(reason) || this.#pausedBy.size > 0) return;
    this.#stream.resume();
  }

  /**
   * Sends ABORT for a fatal error, then closes without a reset: our FIN goes after it, and until the peer
   * closes too we go on reading and discard what it sends. A socket closed with unread bytes in its receive
   * buffer makes the kernel send RST, and a reset peer may lose what we sent before it: a daemon still
   * flooding a pull saw EPIPE on its next write and never read the ABORT (hostile-tables e2e). A peer that
   * keeps sending and never closes is cut off after ABORT_LINGER_MS.
   */
  abort(err: FcpError): void {
    if (this.#closed || this.#aborted) return;
    this.#aborted = true;
    this.#closeError ??= err;
    try {
      // ABORT carries no path field: a message that does not name its path would reach the peer without it.
      const named = err.path !== undefined && !err.message.includes(err.path);
      this.send({
        type: MsgType.Abort,
        code: err.wireCode,
        text: named ? `${err.path}: ${err.message}` : err.message,
      });
    } catch {
      // The socket may already be half-dead; the destroy below is what matters.
    }
    this.#stream.end();
    // Whoever paused reading is done with this connection: read on, so the peer's FIN is seen.
    this.#pausedBy.clear();
    this.#stream.resume();
    // Give the ABORT a moment to leave, but never wait on a peer that stopped reading or never closes.
    setTimeout(() => this.#stream.destroy(), ABORT_LINGER_MS).unref();
  }

  /** Graceful close after everything queued has been written. */
  end(): void {
    this.#stream.end();
  }

  /** Runs `listener` once the stream has closed (at once if it has). */
  onceClosed(listener: () => void): void {
    if (this.#stream.destroyed) listener();
    else this.#stream.once('close', listener);
  }

  /**
   * Resolves once what was queued before end() has left (or the stream closed), or after `timeoutMs`: the
   * last message must not be cut off by a process exit right after (TLS encrypts and writes asynchronously).
   * After abort(), only the close will do: exiting earlier resets a peer that is still sending (see abort()).
   */
  flushed(timeoutMs: number): Promise<void> {
    const stream = this.#stream;
    if (stream.destroyed || (stream.writableFinished && !this.#aborted)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stream.off('finish', done);
        stream.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      if (!this.#aborted) stream.once('finish', done);
      stream.once('close', done);
    });
  }

  destroy(err?: FcpError): void {
    if (err) this.#closeError ??= err;
    this.#stream.destroy();
  }

  #deliver(type: number, payload: Uint8Array): void {
    // The rest of a chunk that made us abort: the session is over, nobody is to act on it.
    if (this.#aborted) return;
    const msg = decodeMessage(type, payload);
    if (msg.type === MsgType.Ping) return;
    this.#handler?.onMessage(msg, this, FRAME_HEADER_SIZE + payload.byteLength);
  }

  #streamOnData(chunk: Buffer): void {
    if (this.#closed || this.#aborted) return;
    this.lastReceivedMs = performance.now();
    if (this.#readLimit !== undefined) this.#payForRead(this.#readLimit, chunk.byteLength);
    try {
      this.#decoder.push(chunk);
    } catch (err) {
      this.#decodeFailed(err);
    }
    if (!this.#placed && this.#stream.readableLength === 0) this.#placeReads();
  }

  /** `n` bytes were read where the decoder said (its readTarget()). */
  #placedOnRead(n: number): void {
    // After abort() reads went to DISCARD (all but one already asked for): nothing to decode.
    if (this.#closed || this.#aborted) return;
    this.lastReceivedMs = performance.now();
    if (this.#readLimit !== undefined) this.#payForRead(this.#readLimit, n);
    try {
      this.#decoder.written(n);
    } catch (err) {
      this.#decodeFailed(err);
    }
  }

  #decodeFailed(err: unknown): void {
    const e = toFcpError(err);
    // A handler's per-file problem must never surface here; anything that does is fatal for the link.
    const fatal = e.fatal ? e : new FcpError(e.code, e.message, { fatal: true, path: e.path });
    this.#closeError ??= fatal;
    if (this.#handler?.onFrameError) this.#handler.onFrameError(fatal, this);
    else this.abort(fatal);
  }

  #payForRead(limit: RateLimit, bytes: number): void {
    const waitMs = limit.reserve(bytes);
    if (waitMs === 0) return;
    this.pause('rate');
    // One timer, for the latest debt: what TLS had already decrypted is still read (and paid for) after the
    // pause (placed-reads.ts), and the timer of an earlier read would resume reading before that is paid.
    // unref'd: a closed connection's resume is a no-op, and the engine's own timers decide the process's life.
    if (this.#rateTimer !== undefined) clearTimeout(this.#rateTimer);
    this.#rateTimer = setTimeout(() => {
      this.#rateTimer = undefined;
      this.resume('rate');
    }, Math.ceil(waitMs)).unref();
  }

  #streamOnEnd(): void {
    try {
      this.#decoder.end();
    } catch (err) {
      // Said as what happened to the user (the peer went away, most likely it died), not as decoder state.
      this.#closeError ??= new FcpError(
        'FCP_ERR_PROTO_TRUNCATED',
        `${this.peer} closed the connection in the middle of a message`,
        { cause: err },
      );
    }
    // We never half-close on purpose; end our side too once queued writes flush (unless already ended:
    // a second end() builds an ERR_STREAM_ALREADY_FINISHED error for nothing).
    if (!this.#stream.writableEnded) this.#stream.end();
    this.#closeAfterLinger();
  }

  /**
   * The peer closed its side, and it may have stopped reading too (a dead host, or a link silent both
   * ways): what we still have queued then never leaves, and the stream would wait for it forever, holding
   * its pieces and any writer waiting for drained(). It gets PEER_END_LINGER_MS, then the connection closes.
   * A later write would notice too (it fails with EPIPE), but a connection may have nothing more to write.
   */
  #closeAfterLinger(): void {
    if (this.#stream.writableFinished) return;
    setTimeout(() => {
      if (this.#closed) return;
      this.#closeError ??= new FcpError(
        'FCP_ERR_NET_CLOSED',
        `${this.peer} closed the connection and stopped reading (${this.#stream.writableLength} bytes unsent)`,
      );
      this.#stream.destroy();
    }, PEER_END_LINGER_MS).unref();
  }

  #streamOnError(err: NodeJS.ErrnoException): void {
    const what =
      err.code === 'ECONNRESET' || err.code === 'EPIPE'
        ? `${this.peer} closed the connection (reset)`
        : `connection to ${this.peer} lost: ${err.message}`;
    this.#closeError ??= new FcpError('FCP_ERR_NET_CLOSED', what, { cause: err });
  }

  #streamOnClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#closeError === undefined && !this.#decoder.atBoundary) {
      this.#closeError = new FcpError(
        'FCP_ERR_PROTO_TRUNCATED',
        `${this.peer} closed the connection in the middle of a message`,
      );
    }
    this.#settleDrain(
      this.#closeError ?? new FcpError('FCP_ERR_NET_CLOSED', `${this.peer} closed the connection`),
    );
    try {
      this.#handler?.onClose(this.#closeError, this);
    } catch (err) {
      // A bug in a close handler must not take the whole daemon down with it; surface it loudly instead.
      process.emitWarning(`fcp: error in connection close handler: ${(err as Error).stack ?? String(err)}`);
    }
  }

  #settleDrain(err: FcpError | undefined): void {
    const waiters = this.#drainWaiters;
    if (waiters.length === 0) return;
    this.#drainWaiters = [];
    for (const w of waiters) {
      if (err) w.reject(err);
      else w.resolve();
    }
  }
}
