/**
 * The sender's pumps, one per connection: each takes pieces from the read-ahead and writes them as DATA
 * frames, corked in batches, with at most a few tenths of a second of its own rate sent but not yet
 * acknowledged as written (PIECE_ACK; ack-window.ts).
 * A piece stays unacknowledged on the connection that carried it; when that connection dies, lost() hands
 * its pieces back to be read and sent again over the others (spec/PROTOCOL.md §7.2).
 */
import { performance } from 'node:perf_hooks';
import { FcpError, MAX_DATA_BYTES, PIECE_SIZE } from '../protocol/index.js';
import type { FramedConn } from '../transport/framed-conn.js';
import { AckWindow } from './ack-window.js';
import { sharedPool } from './buffer-pool.js';
import { Signal } from './engine.js';
import type { ReadAhead } from './sender-read-ahead.js';
import type { ReadPiece, SendContext, SendFile } from './sender-file.js';

/** A pump queues what is ready under one cork up to this many bytes (see #pump). */
const CORK_BYTES = 256 * 1024;
/**
 * Piece bytes queued on the session's sockets and not yet taken by the kernel, across all connections. A
 * socket holds the piece it was given (and, under TLS, its ciphertext) until the kernel takes the last byte,
 * so with one piece per connection the sender's memory grew with the connection count: a 1 GiB push with
 * -n 32 peaked the client at 139-143 MiB against 88 with -n 8. Past this, pumps wait for a write to finish.
 */
export const MAX_QUEUED_BYTES = 16 * PIECE_SIZE;

export interface Unacked {
  file: SendFile;
  seq: number;
  bytes: number;
  /** When it was queued, if nothing was unacknowledged ahead of it on its connection (AckWindow's probe). */
  probeAt?: number | undefined;
}

/** Pieces of a file below this have a number as their key in ConnState.unacked (see pieceKey). */
const NUMBER_KEYED_PIECES = 2 ** 21;

/**
 * The key of piece `seq` of file `id`: a number (id * 2^21 + seq stays below 2^53 for a u32 id), where a
 * string built per piece, twice, was a share of a small-file sender's garbage; a piece of a file past
 * 2 TiB gets a string.
 */
function pieceKey(id: number, seq: number): number | string {
  return seq < NUMBER_KEYED_PIECES ? id * NUMBER_KEYED_PIECES + seq : `${id}:${seq}`;
}

interface ConnState {
  unacked: Map<number | string, Unacked>;
  unackedBytes: number;
  window: AckWindow;
  acked: Signal;
  /** Set by retire(): called once, when the connection has nothing unacknowledged left. */
  onRetired?: (() => void) | undefined;
}

export class Pumps {
  readonly #ctx: SendContext;
  readonly #readAhead: ReadAhead;
  readonly #connState = new Map<FramedConn, ConnState>();
  readonly #pool = sharedPool;
  /** With --bwlimit a batch is one piece, paid for before it goes: a cork's worth would burst past the cap. */
  readonly #corkBytes: number;
  /** Piece bytes handed to sockets and not yet written (see MAX_QUEUED_BYTES). */
  #queuedBytes = 0;
  readonly #written = new Signal();

  constructor(ctx: SendContext, readAhead: ReadAhead) {
    this.#ctx = ctx;
    this.#readAhead = readAhead;
    this.#corkBytes = ctx.rateLimit === undefined ? CORK_BYTES : 0;
  }

  /** Starts the connection's pump. */
  add(conn: FramedConn): void {
    const window = new AckWindow(performance.now());
    this.#connState.set(conn, { unacked: new Map(), unackedBytes: 0, window, acked: new Signal() });
    this.#pump(conn).catch((err) => {
      if (!conn.closed) this.#ctx.fail(err);
    });
  }

  /** The connection is gone: its pump stops; returns the pieces it carried that were never acknowledged. */
  lost(conn: FramedConn): Iterable<Unacked> | undefined {
    const cs = this.#connState.get(conn);
    this.#connState.delete(conn);
    if (cs === undefined) return undefined;
    cs.acked.wake();
    return cs.unacked.values();
  }

  /**
   * The connection takes no new piece; `onRetired` runs once every piece it carried is acknowledged (the
   * client's connection tuner retiring a step that did not pay, spec/PROTOCOL.md §3.2).
   */
  retire(conn: FramedConn, onRetired: () => void): void {
    const cs = this.#connState.get(conn);
    if (cs === undefined) return;
    cs.onRetired = onRetired;
    cs.acked.wake();
    this.#settleRetired(cs);
  }

  #settleRetired(cs: ConnState): void {
    const done = cs.onRetired;
    if (done === undefined || cs.unackedBytes > 0) return;
    cs.onRetired = () => {};
    done();
  }

  /** Wakes every pump waiting for acknowledgements or for the sockets (the session ended). */
  wake(): void {
    for (const cs of this.#connState.values()) cs.acked.wake();
    this.#written.wake();
  }

  /** Piece bytes handed to the sockets and not yet written; at most MAX_QUEUED_BYTES plus one batch. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  onPieceAck(pieces: readonly { id: number; seq: number }[], conn: FramedConn): void {
    const cs = this.#connState.get(conn);
    if (cs === undefined) return;
    const now = performance.now();
    let bytes = 0;
    let probeMs: number | undefined;
    for (const p of pieces) {
      const key = pieceKey(p.id, p.seq);
      const u = cs.unacked.get(key);
      if (u === undefined)
        throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'PIECE_ACK for a piece not sent here');
      cs.unacked.delete(key);
      cs.unackedBytes -= u.bytes;
      bytes += u.bytes;
      if (u.probeAt !== undefined) probeMs = now - u.probeAt;
    }
    // One event for the message, not one per piece: 'data' only counts, and a PIECE_ACK of small files
    // acknowledges dozens of them.
    if (bytes > 0) this.#ctx.emit({ type: 'data', bytes });
    cs.window.acked(bytes, now, probeMs);
    cs.acked.wake();
    this.#settleRetired(cs);
  }

  /**
   * The receiver answers DONE only once every file is settled, so pieces still unacknowledged were written:
   * their PIECE_ACKs wait a few ms to share a frame, on connections DONE may overtake. Counted here, the
   * summary's bytes are exact.
   */
  creditUnacked(): void {
    for (const cs of this.#connState.values()) {
      this.#ctx.emit({ type: 'data', bytes: cs.unackedBytes });
      cs.unacked.clear();
      cs.unackedBytes = 0;
    }
  }

  /**
   * One per connection: takes read pieces and queues them on the socket. Whatever is ready at once goes
   * under one cork, up to CORK_BYTES: a big piece's 17 frames leave in one writev, and so do dozens of
   * small files (one syscall and, with TLS, full records instead of one of each per file). The socket may
   * hold up to one batch beyond its high-water mark; the pump waits for 'drain' after the batch.
   */
  async #pump(conn: FramedConn): Promise<void> {
    const cs = this.#connState.get(conn);
    if (cs === undefined) return;
    for (;;) {
      if (cs.onRetired !== undefined) return;
      await this.#reserveRoom(conn);
      let ok: boolean;
      try {
        const piece = await this.#readAhead.next();
        if (piece === undefined) return;
        if (this.#ctx.rateLimit !== undefined) await this.#ctx.rateLimit.take(piece.bytes);
        if (conn.closed || cs.onRetired !== undefined) {
          // Died or retired while we waited: put the piece back for another connection.
          this.#readAhead.putBack(piece);
          return;
        }
        ok = conn.corked(() => this.#queueBatch(conn, cs, piece));
      } finally {
        this.#writtenOut(undefined, PIECE_SIZE);
      }
      // The connection may die while we wait (drained() rejects): lost() re-sends its pieces elsewhere and
      // the conn.closed checks below end this pump; nothing else to handle here.
      if (!ok && !conn.closed) await conn.drained().catch(() => {});
      while (cs.unackedBytes >= cs.window.bytes && !conn.closed && !this.#ctx.finished() && !cs.onRetired)
        await cs.acked.wait();
      if (conn.closed) return;
    }
  }

  /**
   * Waits until the session's sockets hold less than MAX_QUEUED_BYTES (or the session is over), then holds
   * a piece's worth of the bound for the piece this pump is about to take, until it is queued. The check and
   * the hold are one synchronous step: pumps that all passed the check first would each queue one more.
   */
  async #reserveRoom(conn: FramedConn): Promise<void> {
    while (this.#queuedBytes >= MAX_QUEUED_BYTES && !conn.closed && !this.#ctx.finished())
      await this.#written.wait();
    this.#queuedBytes += PIECE_SIZE;
  }

  /**
   * Queues `first` and whatever else is ready, up to CORK_BYTES or the window; false when the connection
   * wants 'drain' before more.
   */
  #queueBatch(conn: FramedConn, cs: ConnState, first: ReadPiece): boolean {
    let ok = true;
    let batched = 0;
    for (let piece: ReadPiece | undefined = first; piece !== undefined; piece = this.#readAhead.take()) {
      const key = pieceKey(piece.file.id, piece.seq);
      let probeAt: number | undefined;
      if (cs.unackedBytes === 0) {
        probeAt = performance.now();
        cs.window.restarted(probeAt);
      }
      cs.unacked.set(key, { file: piece.file, seq: piece.seq, bytes: piece.bytes, probeAt });
      cs.unackedBytes += piece.bytes;
      // Past this point a dying connection hands the piece to lost(), which re-sends it.
      ok = this.#queuePiece(conn, piece) && ok;
      batched += piece.bytes;
      if (conn.closed || batched >= this.#corkBytes || cs.unackedBytes >= cs.window.bytes) break;
    }
    return ok;
  }

  /** Queues a piece's DATA frames (by reference); its buffer returns to the pool once the socket wrote it. */
  #queuePiece(conn: FramedConn, piece: ReadPiece): boolean {
    const { data } = piece;
    // A socket that died first never calls back: nothing references the buffer, and nothing is queued.
    if (!conn.writable) {
      this.#pool.give(data);
      return false;
    }
    this.#queuedBytes += data.length;
    const release = () => this.#writtenOut(data, data.length);
    if (piece.framed) return conn.sendDataFrames(piece.file.id, piece.seq, data, piece.bytes, release);
    let ok = true;
    for (let offset = 0; offset < data.length; offset += MAX_DATA_BYTES) {
      const end = Math.min(offset + MAX_DATA_BYTES, data.length);
      const last = end === data.length;
      // A write that is made calls back, even on a socket destroyed later; one that is not never does.
      if (last && !conn.writable) {
        release();
        break;
      }
      ok =
        conn.sendData(
          piece.file.id,
          piece.seq,
          offset,
          data.subarray(offset, end),
          last ? release : undefined,
        ) && ok;
    }
    return ok;
  }

  /** A piece's buffer is the socket's no longer: it goes back to the pool, and a pump waiting may go on. */
  #writtenOut(data: Buffer | undefined, bytes: number): void {
    this.#queuedBytes -= bytes;
    if (data !== undefined) this.#pool.give(data);
    this.#written.wake();
  }
}
