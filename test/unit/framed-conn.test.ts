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
import { encodeFrame } from '../../src/protocol/frame-encode.js';
import { payload } from '../helpers/frame-builder.js';
import { waitUntil } from '../helpers/reliability.js';
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

/** The chksum field of every DATA frame in a stream of whole frames. */
function dataChecksums(stream: Buffer): number[] {
  const sums: number[] = [];
  for (let at = 0; at + FRAME_HEADER_SIZE <= stream.length;) {
    const length = stream.readUInt16BE(at + 5);
    if (stream[at] === MsgType.Data) sums.push(stream.readUInt32BE(at + 1));
    at += FRAME_HEADER_SIZE + length;
  }
  return sums;
}

/**
 * Sends a 1 MiB piece from a to b after both agreed to omit DATA checksums; returns what was written to a (in
 * TLS: the plaintext). b reads into the piece itself, so its socket emits no 'data' to watch.
 */
async function sendPieceUnsummed(a: net.Socket, b: net.Socket): Promise<{ wire: Buffer; received: Buffer }> {
  const piece = pattern(1 << 20, 3);
  const received = Buffer.alloc(piece.length);
  const seen: Buffer[] = [];
  const write = a.write.bind(a) as (chunk: Uint8Array, cb?: () => void) => boolean;
  a.write = ((chunk: Uint8Array, cb?: () => void) => {
    seen.push(Buffer.from(chunk));
    return write(chunk, cb);
  }) as typeof a.write;
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

/** Sends `frames` DATA frames of MAX_DATA_BYTES (id 1, piece 0) from a and resolves once b has landed them. */
function receiveFrames(
  a: net.Socket,
  b: net.Socket,
  frames: number,
  opts: { onLanded?: (rx: FramedConn, count: number) => void; messages?: Message[] } = {},
): { rx: FramedConn; landed: Promise<Buffer[]> } {
  const block = pattern(MAX_DATA_BYTES, 5);
  const got: Buffer[] = [];
  let resolve: (bufs: Buffer[]) => void = () => {};
  const landed = new Promise<Buffer[]>((r) => (resolve = r));
  const rx = new FramedConn(channelOf(b), hasher, {
    onMessage: (msg) => opts.messages?.push(msg),
    onClose: () => {},
    dataTarget: (_conn, _id, _seq, _offset, length) => Buffer.alloc(length),
    dataLanded: (conn, _id, _seq, _offset, data) => {
      got.push(Buffer.from(data));
      opts.onLanded?.(conn, got.length);
      if (got.length === frames) resolve(got);
    },
  });
  const tx = new FramedConn(channelOf(a), hasher, { onMessage: () => {}, onClose: () => {} });
  for (let i = 0; i < frames; i++) tx.sendData(1, 0, 0, block);
  return { rx, landed: landed.then((bufs) => (bufs.every((d) => d.equals(block)) ? bufs : [])) };
}

test('a socket reads DATA straight into its targets: it emits no data event of its own', async () => {
  for (const pair of [socketPair, tlsPair]) {
    const [a, b] = await pair();
    let dataEvents = 0;
    b.on('data', () => dataEvents++);
    const { landed } = receiveFrames(a, b, 64);
    assert.is((await landed).length, 64, 'every frame landed intact');
    assert.is(dataEvents, 0, `${pair.name}: no read went through a Buffer of node's`);
    a.destroy();
    b.destroy();
  }
});

test('bytes read the old way before the connection began are decoded first, then reads are placed', async () => {
  const [a, b] = await socketPair();
  // As the daemon's first-byte sniff leaves a socket: paused, with what it read put back.
  b.pause();
  const ping = encodeFrame(MsgType.Ping, new Uint8Array(0), hasher.h32);
  const ack = encodeFrame(MsgType.PieceAck, payload.pieceAck([{ id: 9, seq: 2 }]), hasher.h32);
  b.unshift(Buffer.concat([ack, ping.subarray(0, 3)]));
  a.write(ping.subarray(3));
  const messages: Message[] = [];
  const { landed } = receiveFrames(a, b, 32, { messages });
  assert.is((await landed).length, 32);
  assert.equal(messages, [{ type: MsgType.PieceAck, pieces: [{ id: 9, seq: 2 }] }]);
  a.destroy();
  b.destroy();
});

test('a paused connection stops reading placed bytes; resumed, it takes the rest intact', async () => {
  for (const pair of [socketPair, tlsPair]) {
    const [a, b] = await pair();
    const frames = 512; // 32 MiB: far more than both kernel buffers hold
    const { rx, landed } = receiveFrames(a, b, frames, {
      onLanded: (conn, count) => {
        if (count === 1) conn.pause('writes');
      },
    });
    // Wait for the sender to be stuck: its queue stops shrinking once the receiver stops reading.
    let last = -1;
    await waitUntil(
      () => {
        const queued = a.writableLength;
        const still = queued === last;
        last = queued;
        return still;
      },
      'the sender to be held back',
      10_000,
      100,
    );
    assert.ok(
      b.bytesRead < (frames * MAX_DATA_BYTES) / 2,
      `${pair.name}: read ${b.bytesRead} bytes while paused`,
    );
    assert.ok(a.writableLength > 0, 'the rest waits on the sender');
    rx.resume('writes');
    assert.is((await landed).length, frames, 'every frame landed intact');
    a.destroy();
    b.destroy();
  }
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
