import { Duplex } from 'node:stream';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { dataFramesSize, PIECE_SIZE } from '../../src/protocol/index.js';
import { loadHasher } from '../../src/transfer/checksum.js';
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

test('with 32 connections whose writes do not finish, at most MAX_QUEUED_BYTES of pieces are queued', async () => {
  const conns = 32;
  const pieces = 40;
  const streams = Array.from({ length: conns }, () => new HeldWrites());
  const framed = streams.map(
    (stream) =>
      new FramedConn({ stream, encrypted: false, binding: new Uint8Array(0), peer: 'test' }, hasher, {
        onMessage: () => {},
        onClose: () => {},
      }),
  );
  const file = { id: 1 } as SendFile;
  let handed = 0;
  let written = 0;
  let maxQueued = 0;
  // The read-ahead is the pumps' source, not what is tested: a stand-in that hands out `pieces` full ones.
  const readAhead = {
    next: async (): Promise<ReadPiece | undefined> => {
      if (handed === pieces) return undefined;
      const seq = handed++;
      maxQueued = Math.max(maxQueued, handed - written);
      return {
        file,
        seq,
        data: Buffer.allocUnsafeSlow(dataFramesSize(PIECE_SIZE)),
        framed: true,
        bytes: PIECE_SIZE,
      };
    },
    take: (): ReadPiece | undefined => undefined,
    putBack: () => assert.unreachable('no connection dies here'),
  } as unknown as ReadAhead;
  const ctx = {
    control: framed[0]!,
    rateLimit: undefined,
    emit: () => {},
    warn: () => {},
    finished: () => false,
    fail: (err: unknown) => assert.unreachable(String(err)),
  } as unknown as SendContext;
  const pumps = new Pumps(ctx, readAhead);
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

test.run();
