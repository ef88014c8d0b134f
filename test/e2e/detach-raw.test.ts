// DETACH (spec/PROTOCOL.md §3.2) sent where it has no meaning, by a hand-driven client: on the control
// connection of a pull, as the first message of a connection that joined no session, and to the receiving
// end of a push. Each gets a clear refusal on that connection only, and the daemon goes on serving. A pull
// that really shrinks by DETACH is in e2e/auto-connections.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { ERROR_CODES, Capability, MsgType, type PullMsg } from '../../src/protocol/index.js';
import { authenticate, exchangeHello, openPush, RawPeer, sendAttach } from '../helpers/raw-peer.js';
import { test } from '../helpers/test.js';
import { servedTree } from '../helpers/transfers.js';

const { daemon } = servedTree('fcp-e2e-detach-', async (t) => {
  await writeFile(path.join(t.served, 'a.txt'), 'detach me if you can\n');
});

const peers: RawPeer[] = [];
test.after.each(() => {
  for (const p of peers.splice(0)) p.destroy();
});

async function connect(): Promise<RawPeer> {
  const peer = await RawPeer.connect(daemon().port);
  peers.push(peer);
  return peer;
}

const UNEXPECTED = ERROR_CODES.FCP_ERR_PROTO_UNEXPECTED.wire;

function pullOf(source: string): PullMsg {
  return { type: MsgType.Pull, flags: 0, connections: 2, source, include: [], exclude: [] };
}

/** A pull of a.txt, authenticated, its SESSION in hand. */
async function openPull(): Promise<{ peer: RawPeer; sessionId: Uint8Array; secret: Buffer }> {
  const peer = await connect();
  const auth = await authenticate(peer, pullOf('a.txt'));
  const session = await peer.expect(MsgType.Session);
  return { peer, sessionId: session.sessionId, secret: auth.secret };
}

/** The daemon still serves: a new pull gets its SESSION and a data connection joins it. */
async function assertDaemonServes(): Promise<void> {
  const { sessionId, secret } = await openPull();
  const extra = await sendAttach(daemon().port, sessionId, secret);
  peers.push(extra);
  await extra.expect(MsgType.Attach);
}

test('the daemon offers Detach in its HELLO', async () => {
  const peer = await connect();
  const hello = await exchangeHello(peer);
  assert.ok(
    (hello.capabilities & Capability.Detach) !== 0,
    `capabilities 0x${hello.capabilities.toString(16)}`,
  );
});

test('DETACH on the control connection of a pull: ABORT FCP_ERR_PROTO_UNEXPECTED saying so; the daemon goes on', async () => {
  const { peer } = await openPull();
  await peer.send({ type: MsgType.Detach });
  assert.is(await peer.expectAbortAndClose(), UNEXPECTED);
  assert.match(peer.aborts[0]?.text ?? '', /DETACH on the control connection/);
  await assertDaemonServes();
});

test('DETACH as the first message of a connection that joined no session: ABORT, the daemon goes on', async () => {
  const peer = await connect();
  await exchangeHello(peer);
  await peer.send({ type: MsgType.Detach });
  assert.is(await peer.expectAbortAndClose(), UNEXPECTED);
  await assertDaemonServes();
});

test('DETACH to the receiving end (a push): that data connection is dropped, the session goes on', async () => {
  const { peer, session } = await openPush(daemon().port, 'in/', { connections: 2 });
  peers.push(peer);
  const extra = await sendAttach(daemon().port, session.sessionId);
  peers.push(extra);
  await extra.expect(MsgType.Attach);
  await extra.send({ type: MsgType.Detach });
  await extra.waitClose();
  // The control connection still carries the session to its end.
  await peer.send({ type: MsgType.FileCount, entries: 0, bytes: 0n });
  await peer.send({ type: MsgType.Done, filesSent: 0, filesSkipped: 0, filesFailed: 0, bytes: 0n });
  await peer.expect(MsgType.Done);
});

test.run();
