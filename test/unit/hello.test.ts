import { once } from 'node:events';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FramedConn } from '../../src/transport/framed-conn.js';
import {
  applyCapabilities,
  attachProven,
  listsBeforeSession,
  peerDetaches,
  servesDryRun,
  servesFsync,
  negotiateVersion,
  ourHello,
} from '../../src/transport/hello.js';
import { Capability, FcpError, type HelloMsg, MsgType } from '../../src/protocol/index.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import { channelOf, socketPair } from '../helpers/socket-pair.js';

// The HELLO exchange (src/transport/hello.ts): version negotiation and the capability bits (spec/PROTOCOL.md §3.1).

const hasher = await loadHasher();

function hello(versionMin: number, versionMax: number, capabilities = 0): HelloMsg {
  return { type: MsgType.Hello, versionMin, versionMax, capabilities, agent: 'test' };
}

/** A FramedConn over a plain loopback socket, and what it writes for one DATA frame. */
async function dataChecksumAfter(theirs: HelloMsg): Promise<number> {
  const [client, peer] = await socketPair();
  const conn = new FramedConn(channelOf(client), hasher, { onMessage: () => {}, onClose: () => {} });
  applyCapabilities(conn, theirs);
  conn.sendData(1, 0, 0, Buffer.from('some data'));
  const [chunk] = (await once(peer, 'data')) as [Buffer];
  client.destroy();
  peer.destroy();
  return chunk.readUInt32BE(1);
}

test('our HELLO offers every capability we know and speaks version 2 only', () => {
  const ours = ourHello();
  assert.is(
    ours.capabilities,
    Capability.TlsDataUnsummed |
      Capability.ListBeforeSession |
      Capability.DryRun |
      Capability.Detach |
      Capability.AttachProven |
      Capability.Fsync,
  );
  assert.ok(listsBeforeSession(ours));
  assert.ok(servesDryRun(ours));
  assert.ok(servesFsync(ours));
  assert.not.ok(servesFsync({ ...ours, capabilities: Capability.DryRun | Capability.Detach }));
  assert.not.ok(servesDryRun({ ...ours, capabilities: Capability.ListBeforeSession }));
  assert.not.ok(listsBeforeSession({ ...ours, capabilities: Capability.TlsDataUnsummed }));
  assert.equal([ours.versionMin, ours.versionMax], [2, 2]);
  assert.is(negotiateVersion(hello(1, 5)), 2);
  assert.throws(
    () => negotiateVersion(hello(1, 1)),
    (err: unknown) => err instanceof FcpError && err.code === 'FCP_ERR_PROTO_VERSION',
  );
});

test('applyCapabilities: a plain connection keeps DATA checksums whatever the peer offers', async () => {
  // The bit only matters on TLS (framed-conn.test.ts shows chksum 0 there); here xxh32 stays either way.
  for (const caps of [0, Capability.TlsDataUnsummed, 0xffffffff]) {
    assert.is.not(await dataChecksumAfter(hello(2, 2, caps)), 0, `capabilities ${caps}`);
  }
});

test('applyCapabilities: DETACH and AttachProven only with a peer whose HELLO offered each', async () => {
  for (const [caps, detaches, proven] of [
    [0, false, false],
    [Capability.TlsDataUnsummed | Capability.DryRun, false, false],
    [Capability.Detach, true, false],
    [Capability.AttachProven, false, true],
  ] as const) {
    const [client, peer] = await socketPair();
    const conn = new FramedConn(channelOf(client), hasher, { onMessage: () => {}, onClose: () => {} });
    applyCapabilities(conn, hello(2, 2, caps));
    assert.is(peerDetaches(conn), detaches, `capabilities ${caps}`);
    assert.is(attachProven(conn), proven, `capabilities ${caps}: AttachProven`);
    client.destroy();
    peer.destroy();
  }
});

test.run();
