/**
 * Assembling pieces: DATA frames of one piece arrive whole and in order on one connection (spec §5.3) and
 * are gathered in a pooled buffer, most of them copied there by the decoder itself (ConnHandler.dataTarget).
 * A complete piece is hashed, handed to the sink and acknowledged on its connection once stored; a
 * connection whose stores lag stops being read.
 */
import { type DataMsg, FcpError } from '../protocol/index.js';
import type { FramedConn } from '../transport/framed-conn.js';
import { sharedPool } from './buffer-pool.js';
import { pieceLength } from './checksum.js';
import { dataReceived } from './read-garbage.js';
import { PieceAcks } from './receive-answers.js';
import { type FilesInProgress, PieceState, type ReceiveContext, type RecvFile } from './receive-files.js';
import { StoreBacklog } from './store-backlog.js';

/** Pieces written but not yet on disk, per connection, before that connection stops being read. */
const MAX_PENDING_WRITES = 2;

interface Assembly {
  file: RecvFile;
  seq: number;
  data: Buffer;
  filled: number;
}

interface ConnState {
  current: Assembly | undefined;
  pendingWrites: number;
  acks: PieceAcks;
}

export class Assembler {
  readonly #ctx: ReceiveContext;
  readonly #files: FilesInProgress;
  readonly #connState = new Map<FramedConn, ConnState>();
  readonly #pool = sharedPool;
  readonly #storing = new StoreBacklog(() => this.#connState.keys());

  constructor(ctx: ReceiveContext, files: FilesInProgress) {
    this.#ctx = ctx;
    this.#files = files;
  }

  connectionAdded(conn: FramedConn): void {
    this.#connState.set(conn, { current: undefined, pendingWrites: 0, acks: new PieceAcks(conn) });
    this.#storing.connectionAdded(conn);
  }

  connectionLost(conn: FramedConn): void {
    const cs = this.#connState.get(conn);
    this.#connState.delete(conn);
    // A half-assembled piece is forgotten; the sender re-sends it whole on another connection.
    if (cs?.current !== undefined) this.#pool.give(cs.current.data);
  }

  /** Sends every connection's waiting PIECE_ACKs now (before our DONE). */
  flushAcks(): void {
    for (const cs of this.#connState.values()) cs.acks.flush();
  }

  /** See Receiver.dataTarget. */
  dataTarget(
    conn: FramedConn,
    id: number,
    seq: number,
    offset: number,
    length: number,
  ): Uint8Array | undefined {
    const cs = this.#connState.get(conn);
    const file = this.#files.get(id);
    if (cs === undefined || file === undefined) return undefined;
    const cur = this.#assembly(cs, file, seq, offset, length);
    // A small file's piece is one frame: the piece's own buffer, not a view of it made per file.
    if (offset === 0 && length === cur.data.length) return cur.data;
    return cur.data.subarray(offset, offset + length);
  }

  dataLanded(conn: FramedConn, id: number, seq: number, offset: number, data: Uint8Array): void {
    const cs = this.#connState.get(conn);
    const cur = cs?.current;
    if (cs === undefined || cur === undefined) return;
    if (cur.file.id !== id || cur.seq !== seq || cur.filled !== offset) {
      throw new FcpError('FCP_ERR_INTERNAL', `landed DATA ${id}/${seq}@${offset} is not the piece assembled`);
    }
    if (this.#files.wasDropped(id)) {
      // Given up on while this frame arrived: only now that the decoder is done with the buffer may it go back.
      this.#pool.give(cur.data);
      cs.current = undefined;
      return;
    }
    this.#advance(conn, cs, cur, data.byteLength);
  }

  /** DATA delivered as a message: for files no longer wanted, or when the session is over. */
  onData(msg: DataMsg, conn: FramedConn): void {
    const cs = this.#connState.get(conn);
    if (cs === undefined) return;
    const file = this.#files.get(msg.id);
    if (file === undefined) {
      if (!this.#files.wasDropped(msg.id)) {
        throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `DATA for file id ${msg.id}, which was not requested`);
      }
      if (cs.current?.file.id === msg.id) {
        this.#pool.give(cs.current.data);
        cs.current = undefined;
      }
      return;
    }
    const n = msg.data.byteLength;
    const cur = this.#assembly(cs, file, msg.seq, msg.offset, n);
    cur.data.set(msg.data, cur.filled);
    this.#advance(conn, cs, cur, n);
  }

  /** The piece this DATA continues (or starts), after checking it fits: pieces travel whole, in order. */
  #assembly(cs: ConnState, file: RecvFile, seq: number, offset: number, n: number): Assembly {
    let cur = cs.current;
    if (cur === undefined) {
      // A piece starts: pieces travel whole and in order on one connection (spec §5.3).
      if (offset !== 0 || seq >= file.pieces) {
        throw new FcpError('FCP_ERR_FILE_RANGE', `DATA piece ${seq} at ${offset} for id ${file.id}`);
      }
      cur = { file, seq, data: this.#pool.take(pieceLength(file.size, seq)), filled: 0 };
      cs.current = cur;
    } else if (cur.file !== file || cur.seq !== seq) {
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'pieces interleaved on one connection');
    }
    if (offset !== cur.filled || cur.filled + n > cur.data.length) {
      throw new FcpError('FCP_ERR_FILE_RANGE', `DATA offset ${offset} does not continue piece ${seq}`);
    }
    return cur;
  }

  #advance(conn: FramedConn, cs: ConnState, cur: Assembly, n: number): void {
    cur.filled += n;
    this.#ctx.emit({ type: 'data', bytes: n });
    dataReceived(n);
    if (cur.filled === cur.data.length) {
      cs.current = undefined;
      this.#pieceComplete(cur, conn, cs);
    }
  }

  #pieceComplete(piece: Assembly, conn: FramedConn, cs: ConnState): void {
    const { file, seq, data } = piece;
    if (file.state[seq] !== PieceState.Absent) {
      // Sent again after a connection failed, but the first copy arrived after all: keep the first.
      this.#pool.give(data);
      cs.acks.add({ id: file.id, seq });
      return;
    }
    file.state[seq] = PieceState.Writing;
    const hash = this.#ctx.hasher.pieceHash(data);
    file.hashes[seq] = hash;
    if (file.pieces === 1 && file.out.writeNow !== undefined) {
      this.#writeNow(file, data);
      this.#pool.give(data);
      if (file.settled) return;
      this.#stored(file, seq, cs);
      return;
    }
    cs.pendingWrites++;
    if (cs.pendingWrites >= MAX_PENDING_WRITES) conn.pause('writes');
    this.#storing.started();
    file.out
      .writePiece(seq, data, hash)
      .then(
        () => {
          if (file.settled) return;
          this.#stored(file, seq, cs);
        },
        (err) => this.#files.failed(file, err),
      )
      .finally(() => {
        this.#pool.give(data);
        cs.pendingWrites--;
        if (cs.pendingWrites < MAX_PENDING_WRITES) conn.resume('writes');
        this.#storing.finished();
      });
  }

  /** A one-piece file, stored synchronously (the sink's optional writeNow: see posix-file.ts). */
  #writeNow(file: RecvFile, data: Buffer): void {
    try {
      file.out.writeNow!(data);
    } catch (err) {
      this.#files.failed(file, err);
    }
  }

  #stored(file: RecvFile, seq: number, cs: ConnState): void {
    this.#files.pieceWritten(file, seq);
    cs.acks.add({ id: file.id, seq });
    this.#files.maybeCommit(file);
  }
}
