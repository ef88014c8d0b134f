// The sender's list window (src/transfer/send-window.ts, spec/PROTOCOL.md §5.1), seen from the daemon's end
// of the wire: a fake daemon wants the data of every entry a real client announces, and settles them one at
// a time. The client must keep at most SEND_WINDOW_FLOOR of them open, not the protocol's LIST_WINDOW: each
// settled entry lets exactly one more through, so FILE_COUNT comes only once all but the window are settled.
// Order on the control connection, not a quiet interval, shows that nothing more was sent.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { push } from '../../src/client/transfer-client.js';
import { type Message, MsgType, ReadyAction } from '../../src/protocol/index.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import { SEND_WINDOW_FLOOR } from '../../src/transfer/send-window.js';
import { createStats } from '../../src/transfer/stats.js';
import { abortFakeSession } from '../helpers/fake-session.js';
import { LOOPBACK, RawListener, type RawPeer, serveSession, WAIT_MS } from '../helpers/raw-peer.js';

let base = '';

test.before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'fcp-send-window-'));
});

test.after(async () => {
  await rm(base, { recursive: true, force: true });
});

/** The ids of the list entries received so far, in order, and whether FILE_COUNT came. */
function listSeen(peer: RawPeer): () => { ids: number[]; counted: boolean } {
  const ids: number[] = [];
  let scanned = 0;
  let counted = false;
  return () => {
    for (; scanned < peer.received.length; scanned++) {
      const m: Message = peer.received[scanned]!;
      if (m.type === MsgType.FileInfo || m.type === MsgType.DirInfo) ids.push(m.id);
      if (m.type === MsgType.FileCount) counted = true;
    }
    return { ids, counted };
  };
}

test('a receiver that wants every file: the client keeps at most SEND_WINDOW_FLOOR entries open', async () => {
  const dir = path.join(base, 'many');
  await mkdir(dir);
  const files = SEND_WINDOW_FLOOR + 200;
  for (let i = 0; i < files; i++) await writeFile(path.join(dir, `f${i}`), '');
  const total = files + 1; // and the directory
  const listener = await RawListener.listen();
  try {
    const pushing = push({
      endpoint: { host: LOOPBACK, port: listener.port },
      security: { knownHostsFile: path.join(base, 'known_hosts') },
      connections: 1,
      checksum: false,
      select: {},
      hasher: await loadHasher(),
      stats: createStats(performance.now()),
      onWarning: () => {},
      sources: [dir],
      dest: 'dst/',
    }).then(
      () => new Error('the push succeeded against a daemon that wrote nothing'),
      (err: unknown) => err,
    );
    const peer = await listener.accept();
    await serveSession(peer, {});
    const seen = listSeen(peer);
    await peer.until(() => seen().ids.length >= SEND_WINDOW_FLOOR, WAIT_MS, 'a full window of entries');
    let settled = 0;
    while (!seen().counted && settled < total) {
      const id = seen().ids[settled]!;
      // Wanted (the window shrinks to its floor, not below), then done: one slot frees.
      await peer.send({ type: MsgType.FileReady, entries: [{ id, action: ReadyAction.Need, code: 0 }] });
      await peer.send({ type: MsgType.FileDone, entries: [{ id, code: 0 }] });
      settled++;
      const next = Math.min(total, SEND_WINDOW_FLOOR + settled);
      await peer.until(() => seen().counted || seen().ids.length >= next, WAIT_MS, `entry ${next}`);
    }
    assert.ok(
      settled >= total - SEND_WINDOW_FLOOR,
      `FILE_COUNT after ${settled} of ${total} entries were settled: more than ${SEND_WINDOW_FLOOR} were open`,
    );
    await abortFakeSession(peer, pushing);
  } finally {
    await listener.close();
  }
});

test.run();
