import { Duplex } from 'node:stream';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { dataFramesSize, PIECE_SIZE } from '../../src/protocol/index.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import { START_WINDOW_BYTES } from '../../src/transfer/ack-window.js';
import { MAX_QUEUED_BYTES, Pumps } from '../../src/transfer/sender-pump.js';
import type { ReadAhead } from '../../src/transfer/sender-read-ahead.js';
import type { ReadPiece, SendContext, SendFile } from '../../src/transfer/sender-file.js';
import { FramedConn } from '../../src/transport/framed-conn.js';

// Pumps (src/transfer/sender-pump.ts): the piece bytes queued on a session's sockets are bounded across its
// connections, so the sender's memory does not grow with the connection count (-n 32 held one piece per
// connection, and under TLS its ciphertext too).

const hasher = await loadHasher();

/** A stream whose writes finish only when the test says: a peer that stopped reading, made exact. */
class HeldWrites extends Duplex {
  readonly held: Array<() => void> = [];
  override _read(): void {}
  override _write(_chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.held.push(done);
  }
}

/** A framed connection over `stream`, plaintext, whose messages nobody reads. */
function framedOver(stream: Duplex): FramedConn {
  return new FramedConn({ stream, encrypted: false, binding: new Uint8Array(0), peer: 'test' }, hasher, {
    onMessage: () => {},
    onClose: () => {},
  });
}

/**
 * The read-ahead is the pumps' source, not what is tested: a stand-in that hands out `pieces` full ones,
 * calling `onHand` for each.
 */
function pieceSource(pieces: number, onHand: () => void): ReadAhead {
  const file = { id: 1 } as SendFile;
  let seq = 0;
  return {
    next: async (): Promise<ReadPiece | undefined> => {
      if (seq === pieces) return undefined;
      onHand();
      return {
        file,
        seq: seq++,
        data: Buffer.allocUnsafeSlow(dataFramesSize(PIECE_SIZE)),
        framed: true,
        bytes: PIECE_SIZE,
      };
    },
    take: (): ReadPiece | undefined => undefined,
    putBack: () => assert.unreachable('no connection dies here'),
  } as unknown as ReadAhead;
}

/** The session as the pumps see it: `finished` says when it is over; nothing may fail. */
function sendContext(control: FramedConn, finished: () => boolean): SendContext {
  return {
    control,
    rateLimit: undefined,
    emit: () => {},
    warn: () => {},
    finished,
    fail: (err: unknown) => assert.unreachable(String(err)),
  } as unknown as SendContext;
}

test('with 32 connections whose writes do not finish, at most MAX_QUEUED_BYTES of pieces are queued', async () => {
  const conns = 32;
  const pieces = 40;
  const streams = Array.from({ length: conns }, () => new HeldWrites());
  const framed = streams.map(framedOver);
  let handed = 0;
  let written = 0;
  let maxQueued = 0;
  const readAhead = pieceSource(pieces, () => {
    handed++;
    maxQueued = Math.max(maxQueued, handed - written);
  });
  const pumps = new Pumps(
    sendContext(framed[0]!, () => false),
    readAhead,
  );
  for (const conn of framed) pumps.add(conn);
  // Let every pump that can take a piece do so, then finish the writes one at a time, as a slow link would.
  await new Promise((resolve) => setImmediate(resolve));
  const bound = MAX_QUEUED_BYTES / PIECE_SIZE + 1;
  for (let round = 0; written < pieces && round < 10_000; round++) {
    const stream = streams.find((s) => s.held.length > 0);
    if (stream === undefined) {
      await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    written++;
    stream.held.shift()!();
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.is(written, pieces, 'every piece was written');
  assert.ok(maxQueued <= bound, `${maxQueued} pieces queued at once, at most ${bound} allowed`);
  for (const s of streams) s.destroy();
});

/** A stream that takes every write at once: a socket whose peer keeps reading. */
class TakesAll extends Duplex {
  override _read(): void {}
  override _write(_chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    done();
  }
}

test('a connection whose pieces are not acknowledged yet holds at most its start window, not 64 pieces', async () => {
  // Behind a per-flow shaper each connection's socket buffers and the shaper's queue took all it was given:
  // up to 18 MB of a 32-connection push's end sat on single 10 MB/s connections (ack-window.ts).
  const stream = new TakesAll();
  const conn = framedOver(stream);
  let handed = 0;
  let finished = false;
  const pumps = new Pumps(
    sendContext(conn, () => finished),
    pieceSource(100, () => handed++),
  );
  pumps.add(conn);
  // Every write is taken at once: the pump stops only at its window. 200 turns of the event loop is far
  // more than the 64 pieces the old fixed window took.
  for (let i = 0; i < 200; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(handed <= START_WINDOW_BYTES / PIECE_SIZE, `${handed} pieces unacknowledged on one connection`);
  finished = true;
  pumps.wake();
  stream.destroy();
});

test.run();
