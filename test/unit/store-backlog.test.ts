import type { Socket } from 'node:net';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { loadHasher } from '../../src/transfer/checksum.js';
import { MAX_STORING, StoreBacklog } from '../../src/transfer/store-backlog.js';
import { FramedConn } from '../../src/transport/framed-conn.js';
import { channelOf, socketPair } from '../helpers/socket-pair.js';

// StoreBacklog (src/transfer/store-backlog.ts): the session's pieces being stored are bounded across all its
// connections, so the daemon's memory does not grow with the connection count (a -n 32 push held ~64).

const hasher = await loadHasher();

async function receivingConns(n: number): Promise<{ conns: FramedConn[]; close(): void }> {
  const conns: FramedConn[] = [];
  const sockets: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const pair = await socketPair();
    sockets.push(...pair);
    conns.push(new FramedConn(channelOf(pair[1]), hasher, { onMessage: () => {}, onClose: () => {} }));
  }
  return { conns, close: () => sockets.forEach((s) => s.destroy()) };
}

test('past MAX_STORING pieces every connection stops reading, one that joins too, until half are stored', async () => {
  const { conns, close } = await receivingConns(3);
  const live = conns.slice(0, 2);
  const backlog = new StoreBacklog(() => live);
  for (const c of live) backlog.connectionAdded(c);
  for (let i = 0; i < MAX_STORING - 1; i++) backlog.started();
  assert.ok(
    live.every((c) => !c.paused),
    'below the bound every connection reads',
  );
  backlog.started();
  assert.ok(
    live.every((c) => c.paused),
    'at the bound every connection of the session stops',
  );
  const late = conns[2]!;
  live.push(late);
  backlog.connectionAdded(late);
  assert.ok(late.paused, 'a connection that joins over the bound starts paused');
  while (backlog.storing > MAX_STORING / 2 + 1) backlog.finished();
  assert.ok(
    live.every((c) => c.paused),
    'still paused above half the bound',
  );
  backlog.finished();
  assert.is(backlog.storing, MAX_STORING / 2);
  assert.ok(
    live.every((c) => !c.paused),
    'reading again at half the bound',
  );
  close();
});

test("the session's pause leaves a connection's own pause alone", async () => {
  const { conns, close } = await receivingConns(1);
  const conn = conns[0]!;
  const backlog = new StoreBacklog(() => conns);
  conn.pause('writes');
  for (let i = 0; i < MAX_STORING; i++) backlog.started();
  for (let i = 0; i < MAX_STORING; i++) backlog.finished();
  assert.ok(conn.paused, "the connection's own writes still hold it");
  conn.resume('writes');
  assert.not.ok(conn.paused);
  close();
});

test.run();
