import { setTimeout as sleep } from 'node:timers/promises';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FramedConn } from '../../src/transport/framed-conn.js';
import { Inbox, MAX_QUEUED_BYTES, MAX_QUEUED_MESSAGES } from '../../src/transport/inbox.js';
import { type FileInfoMsg, FileKind, type Message, MsgType } from '../../src/protocol/index.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import { channelOf, socketPair } from '../helpers/socket-pair.js';

// The handshake-phase queue (src/transport/inbox.ts) over a real loopback socket: a peer that writes faster than
// the handshake reads must meet backpressure, not grow our memory, and nothing it sent may be lost.

const hasher = await loadHasher();
/** Far more than the queue holds: 200,000 frames of 19 bytes, ~3.8 MB, more than the socket buffers take. */
const FLOOD = 200_000;
/** A socket chunk is at most 64 KiB: that many FILE_COUNT frames can arrive after the pause. */
const ONE_CHUNK_OF_FRAMES = Math.ceil(65536 / 19);

interface InboxPair {
  inbox: Inbox;
  rx: FramedConn;
  tx: FramedConn;
  close: () => void;
}

/** An Inbox on one end of a loopback socket pair, a plain FramedConn to write into it on the other. */
async function inboxPair(): Promise<InboxPair> {
  const [a, b] = await socketPair();
  const rx = new FramedConn(channelOf(b), hasher);
  const inbox = new Inbox(rx);
  const tx = new FramedConn(channelOf(a), hasher, { onMessage: () => {}, onClose: () => {} });
  return {
    inbox,
    rx,
    tx,
    close: () => {
      a.destroy();
      b.destroy();
    },
  };
}

/**
 * Waits (bounded: 5 s) until the inbox has paused the socket. The frames of the chunk being read when it
 * paused are queued in that same synchronous decode, and a paused socket reads no further chunk: from then
 * on the queue cannot grow, so what it holds can be asserted without waiting for it to "settle".
 */
async function untilPaused(rx: FramedConn): Promise<void> {
  for (let waited = 0; !rx.paused; waited += 5) {
    if (waited >= 5000) throw new Error('the inbox never paused the socket');
    await sleep(5);
  }
}

async function flooded(): Promise<InboxPair> {
  const pair = await inboxPair();
  for (let i = 0; i < FLOOD; i++) pair.tx.send({ type: MsgType.FileCount, entries: i, bytes: 0n });
  await untilPaused(pair.rx);
  return pair;
}

function entriesOf(msg: Message): number {
  if (msg.type !== MsgType.FileCount) throw new Error(`unexpected message type ${msg.type}`);
  return msg.entries;
}

test('a flood before anyone reads pauses the socket once the queue is full; next() drains it all, in order', async () => {
  const { inbox, rx, close } = await flooded();
  try {
    assert.ok(rx.paused, 'the receiving socket is paused');
    assert.ok(inbox.queued >= MAX_QUEUED_MESSAGES, `queued ${inbox.queued}`);
    assert.ok(inbox.queued <= MAX_QUEUED_MESSAGES + ONE_CHUNK_OF_FRAMES, `queued ${inbox.queued}`);
    // The rest waits in the kernel's socket buffers or the peer's own, not in our heap.
    assert.ok(inbox.queued < FLOOD / 10, `queued ${inbox.queued} of ${FLOOD}`);
    for (let i = 0; i < FLOOD; i++) assert.is(entriesOf(await inbox.next(5000, 'FILE_COUNT')), i);
    assert.not.ok(rx.paused, 'reading again once drained');
  } finally {
    close();
  }
});

test('handOver resumes a socket the queue paused and the new handler gets every message, in order', async () => {
  const { inbox, rx, close } = await flooded();
  try {
    assert.ok(rx.paused);
    let next = 0;
    const all = new Promise<void>((resolve, reject) => {
      inbox.handOver({
        onMessage: (msg) => {
          if (entriesOf(msg) !== next) reject(new Error(`got ${entriesOf(msg)}, expected ${next}`));
          next++;
          if (next === FLOOD) resolve();
        },
        onClose: () => {},
      });
    });
    await all;
    assert.is(next, FLOOD);
  } finally {
    close();
  }
});

test('large frames pause the socket by bytes long before the message count is reached', async () => {
  const { inbox, rx, tx, close } = await inboxPair();
  try {
    // FILE_INFO with a 4,000-byte path: ~4 KiB a frame, 400 of them ~1.6 MiB, well under 1024 messages.
    const big = (id: number): FileInfoMsg => ({
      type: MsgType.FileInfo,
      id,
      kind: FileKind.File,
      mode: 0o644,
      size: 1n,
      mtimeNs: 0n,
      checksum: undefined,
      path: 'p'.repeat(4000),
      linkTarget: '',
    });
    const total = 400;
    for (let i = 1; i <= total; i++) tx.send(big(i));
    await untilPaused(rx);
    assert.ok(rx.paused, 'paused by bytes');
    assert.ok(inbox.queuedBytes >= MAX_QUEUED_BYTES, `queued ${inbox.queuedBytes} bytes`);
    assert.ok(inbox.queuedBytes <= MAX_QUEUED_BYTES + 65536 + 4096, `queued ${inbox.queuedBytes} bytes`);
    assert.ok(inbox.queued < total, `queued ${inbox.queued} messages`);
    for (let i = 1; i <= total; i++) {
      const msg = await inbox.next(5000, 'FILE_INFO');
      assert.is(msg.type === MsgType.FileInfo ? msg.id : -1, i);
    }
    assert.is(inbox.queuedBytes, 0);
    assert.not.ok(rx.paused, 'reading again once drained');
  } finally {
    close();
  }
});

test('putBack puts taken messages back in front, in order, and only before handOver', async () => {
  const { inbox, tx, close } = await inboxPair();
  try {
    for (let i = 0; i < 4; i++) tx.send({ type: MsgType.FileCount, entries: i, bytes: 0n });
    const first = await inbox.next(5000, 'FILE_COUNT');
    const second = await inbox.next(5000, 'FILE_COUNT');
    inbox.putBack([first, second]);
    const got: number[] = [];
    await new Promise<void>((resolve) => {
      inbox.handOver({
        onMessage: (msg) => {
          got.push(entriesOf(msg));
          if (got.length === 4) resolve();
        },
        onClose: () => {},
      });
    });
    assert.equal(got, [0, 1, 2, 3]);
    assert.throws(() => inbox.putBack([first]), /after handOver/);
  } finally {
    close();
  }
});

test.run();
