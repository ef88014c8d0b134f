import net from 'node:net';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FramedConn } from '../../src/transport/framed-conn.js';
import {
  type FcpError,
  FRAME_HEADER_SIZE,
  MAX_DATA_BYTES,
  type Message,
  MsgType,
} from '../../src/protocol/index.js';
import { loadOrCreateHostKey } from '../../src/security/host-key.js';
import { acceptTls, connectTls, createServerContext } from '../../src/security/tls-channel.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import { channelOf, socketPair } from '../helpers/socket-pair.js';
import { removeDir, tempDir } from '../helpers/ssh-keys.js';

// FramedConn (src/transport/framed-conn.ts) over a real loopback socket: DATA sent by reference (big frames) or
// copied (small ones), received in place through dataTarget/dataLanded or as messages.

const hasher = await loadHasher();

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

test('a piece sent as frames lands in place; onWritten waits for the socket even for the short last frame', async () => {
  const [a, b] = await socketPair();
  // A 1 MiB piece: 16 full frames and a 208-byte last one, which takes the small (copied) path.
  const piece = pattern(1 << 20, 1);
  const original = Buffer.from(piece);
  const received = Buffer.alloc(piece.length);
  let landedBytes = 0;
  const messages: Message[] = [];
  const done = new Promise<void>((resolve) => {
    const rx = new FramedConn(channelOf(b), hasher, {
      onMessage: (msg) => messages.push(msg),
      onClose: () => {},
      dataTarget: (_conn, id, seq, offset, length) =>
        id === 5 && seq === 0 ? received.subarray(offset, offset + length) : undefined,
      dataLanded: (_conn, _id, _seq, _offset, data) => {
        landedBytes += data.byteLength;
        if (landedBytes === piece.length) resolve();
      },
    });
    void rx;
  });
  const tx = new FramedConn(channelOf(a), hasher, { onMessage: () => {}, onClose: () => {} });
  let released = false;
  a.cork();
  for (let offset = 0; offset < piece.length; offset += MAX_DATA_BYTES) {
    const end = Math.min(offset + MAX_DATA_BYTES, piece.length);
    const last = end === piece.length;
    tx.sendData(5, 0, offset, piece.subarray(offset, end), last ? () => (released = true) : undefined);
  }
  assert.not.ok(released, 'onWritten must not run before the corked frames are written');
  a.uncork();
  await done;
  assert.ok(released, 'onWritten ran once the socket took the bytes');
  // The sender may now reuse its buffer: what arrived is what was sent.
  piece.fill(0);
  assert.ok(received.equals(original));
  // A DATA frame the sink declines arrives as a message (copied path and reference path alike).
  const small = pattern(100, 7);
  tx.sendData(9, 2, 0, small);
  while (messages.length === 0) await new Promise((r) => setTimeout(r, 5));
  const msg = messages[0]!;
  assert.is(msg.type, MsgType.Data);
  if (msg.type === MsgType.Data) {
    assert.equal([msg.id, msg.seq, msg.offset], [9, 2, 0]);
    assert.ok(Buffer.from(msg.data).equals(small));
  }
  a.destroy();
  b.destroy();
});

/** A TLS 1.3 pair over loopback, with a throwaway host key. */
async function tlsPair(): Promise<[net.Socket, net.Socket]> {
  const dir = await tempDir('framed-conn-tls');
  try {
    const context = createServerContext(await loadOrCreateHostKey(path.join(dir, 'state')));
    const [rawClient, rawServer] = await socketPair();
    const [client, server] = await Promise.all([
      connectTls(rawClient, 5000),
      acceptTls(rawServer, context, 5000),
    ]);
    return [client, server];
  } finally {
    await removeDir(dir);
  }
}

/** The chksum field of every DATA frame in a stream of whole frames, as the receiving socket saw it. */
function dataChecksums(stream: Buffer): number[] {
  const sums: number[] = [];
  for (let at = 0; at + FRAME_HEADER_SIZE <= stream.length;) {
    const length = stream.readUInt16BE(at + 5);
    if (stream[at] === MsgType.Data) sums.push(stream.readUInt32BE(at + 1));
    at += FRAME_HEADER_SIZE + length;
  }
  return sums;
}

/** Sends a 1 MiB piece from a to b after both agreed to omit DATA checksums; returns what b's socket read. */
async function sendPieceUnsummed(a: net.Socket, b: net.Socket): Promise<{ wire: Buffer; received: Buffer }> {
  const piece = pattern(1 << 20, 3);
  const received = Buffer.alloc(piece.length);
  const seen: Buffer[] = [];
  b.on('data', (chunk: Buffer) => seen.push(Buffer.from(chunk)));
  let landedBytes = 0;
  const done = new Promise<void>((resolve) => {
    const rx = new FramedConn(channelOf(b), hasher, {
      onMessage: () => {},
      onClose: () => {},
      dataTarget: (_conn, _id, _seq, offset, length) => received.subarray(offset, offset + length),
      dataLanded: (_conn, _id, _seq, _offset, data) => {
        landedBytes += data.byteLength;
        if (landedBytes === piece.length) resolve();
      },
    });
    rx.omitDataChecksums();
  });
  const tx = new FramedConn(channelOf(a), hasher, { onMessage: () => {}, onClose: () => {} });
  tx.omitDataChecksums();
  for (let offset = 0; offset < piece.length; offset += MAX_DATA_BYTES) {
    tx.sendData(1, 0, offset, piece.subarray(offset, Math.min(offset + MAX_DATA_BYTES, piece.length)));
  }
  await done;
  assert.ok(received.equals(piece), 'the piece arrived intact');
  return { wire: Buffer.concat(seen), received };
}

test('over TLS, omitDataChecksums sends DATA with chksum 0 and the receiver takes it', async () => {
  const [a, b] = await tlsPair();
  const { wire } = await sendPieceUnsummed(a, b);
  const sums = dataChecksums(wire);
  assert.is(sums.length, 17, '16 full frames and a short last one');
  assert.ok(
    sums.every((sum) => sum === 0),
    sums.join(','),
  );
  a.destroy();
  b.destroy();
});

test('over plain TCP, omitDataChecksums changes nothing: every DATA frame carries its xxh32', async () => {
  const [a, b] = await socketPair();
  const { wire } = await sendPieceUnsummed(a, b);
  const sums = dataChecksums(wire);
  assert.is(sums.length, 17);
  let at = 0;
  for (const sum of sums) {
    const length = wire.readUInt16BE(at + 5);
    assert.is(sum, hasher.h32(wire.subarray(at + FRAME_HEADER_SIZE, at + FRAME_HEADER_SIZE + length)));
    at += FRAME_HEADER_SIZE + length;
  }
  a.destroy();
  b.destroy();
});

test('sendCorked holds the control messages of one tick under one cork and releases them in order', async () => {
  const [a, b] = await socketPair();
  const got: Message[] = [];
  const all = new Promise<void>((resolve) => {
    const rx = new FramedConn(channelOf(b), hasher, {
      onMessage: (msg) => {
        got.push(msg);
        if (got.length === 3) resolve();
      },
      onClose: () => {},
    });
    void rx;
  });
  const tx = new FramedConn(channelOf(a), hasher, { onMessage: () => {}, onClose: () => {} });
  const ends = [1, 2, 3].map((id) => ({ type: MsgType.FileEnd, id, code: 0, checksum: BigInt(id) }) as const);
  for (const end of ends) tx.sendCorked(end);
  assert.is(a.writableCorked, 1, 'one cork for the whole tick, however many messages');
  assert.is(a.writableLength > 0, true, 'the messages wait in the socket');
  await new Promise<void>((resolve) => process.nextTick(resolve));
  assert.is(a.writableCorked, 0, 'uncorked once the tick is over');
  await all;
  assert.equal(got, ends);
  a.destroy();
  b.destroy();
});

test(
  'a peer that closes its side after it stopped reading: our stuck writes do not hold the connection open',
  async () => {
    // The stalled-socket hang of e2e/reliability-network: the daemon dropped a data socket that had gone
    // silent both ways; the client read its FIN, but the writes queued behind the stall never left, so the
    // socket waited for them forever and its pieces were never sent again elsewhere.
    const [a, b] = await socketPair();
    b.pause();
    let closeError: FcpError | undefined;
    const closed = new Promise<void>((resolve) => {
      const tx = new FramedConn(channelOf(a), hasher, {
        onMessage: () => {},
        onClose: (err) => {
          closeError = err;
          resolve();
        },
      });
      // Far more than both sockets' kernel buffers hold: most of it stays queued on our side.
      const block = pattern(MAX_DATA_BYTES, 3);
      for (let seq = 0; seq < 1024; seq++) tx.sendData(1, seq, 0, block);
    });
    assert.ok(a.writableLength > 0, 'our writes are queued behind the peer');
    b.end();
    await closed;
    assert.is(closeError?.code, 'FCP_ERR_NET_CLOSED');
    assert.match(closeError?.message ?? '', /stopped reading/);
    b.destroy();
  },
  { timeoutMs: 15_000 },
);

test('a control message sent after the peer ended the stream is not reported as sent; drained() rejects', async () => {
  // The peer's FIN arrived while our writes were stuck behind it. A send now must fail (Node fails a write
  // after the FIN with EPIPE and destroys the stream), not be dropped and reported as sent: the FrameBatch
  // control writer of 7c2dc48 skipped writes on an ended stream, so the engine's PING, which used to find the
  // dead socket, found nothing (e2e/reliability-network's stalled socket). And a caller waiting for
  // drained() must learn of the close, not be told the stream drained because it was destroyed.
  const [a, b] = await socketPair();
  b.pause();
  const tx = new FramedConn(channelOf(a), hasher, { onMessage: () => {}, onClose: () => {} });
  const block = pattern(MAX_DATA_BYTES, 4);
  for (let seq = 0; seq < 1024; seq++) tx.sendData(1, seq, 0, block);
  const peerEnded = new Promise((resolve) => a.once('end', resolve));
  b.end();
  await peerEnded;
  assert.ok(a.writableEnded && !tx.closed, 'our side is ended, its writes still queued');
  assert.is(tx.send({ type: MsgType.Ping }), false, 'the message was not sent');
  let rejected = false;
  await tx.drained().catch(() => (rejected = true));
  assert.ok(rejected, 'drained() learns of the close');
  b.destroy();
});

test.run();
