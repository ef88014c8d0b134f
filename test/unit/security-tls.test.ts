import net from 'node:net';
import path from 'node:path';
import type tls from 'node:tls';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { type HostKey, loadOrCreateHostKey } from '../../src/security/host-key.js';
import {
  acceptTls,
  channelBinding,
  checkSameDaemon,
  connectTls,
  createServerContext,
  peerHostKey,
  sniffTls,
} from '../../src/security/tls-channel.js';
import { removeDir, tempDir } from '../helpers/ssh-keys.js';

// TLS 1.3 on loopback (src/security/tls-channel.ts): the daemon's self-signed certificate, pinned by the client.

const TIMEOUT_MS = 5000;
let dir = '';
let hostKey: HostKey;
let server: net.Server;
let port = 0;
/** What the server side saw, per accepted connection, in order. */
const accepted: Array<{ tls: boolean; binding?: Buffer; socket?: tls.TLSSocket; firstLine?: string }> = [];

test.before(async () => {
  dir = await tempDir('tls');
  hostKey = await loadOrCreateHostKey(path.join(dir, 'state'));
  const context = createServerContext(hostKey);
  const serve = async (socket: net.Socket, record: (typeof accepted)[number]) => {
    record.tls = await sniffTls(socket, TIMEOUT_MS);
    if (!record.tls) {
      socket.resume();
      socket.once('data', (d) => {
        record.firstLine = d.toString();
        socket.end('plain-bye');
      });
      return;
    }
    const secure = await acceptTls(socket, context, TIMEOUT_MS);
    secure.on('error', () => {});
    record.socket = secure;
    record.binding = channelBinding(secure);
    secure.on('data', (d) => secure.write(Buffer.concat([Buffer.from('echo:'), d])));
  };
  server = net.createServer((socket) => {
    socket.on('error', () => {});
    const record: (typeof accepted)[number] = { tls: false };
    accepted.push(record);
    serve(socket, record).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});
test.after(async () => {
  for (const a of accepted) a.socket?.destroy();
  await new Promise((resolve) => server.close(resolve));
  await removeDir(dir);
});

function dialRaw(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

function readOnce(s: net.Socket): Promise<string> {
  return new Promise((resolve) => s.once('data', (d) => resolve(d.toString())));
}

test('tls: TLS 1.3 with the host certificate; the client pins the fingerprint; both exporters agree', async () => {
  const client = await connectTls(await dialRaw(), TIMEOUT_MS);
  try {
    assert.is(client.getProtocol(), 'TLSv1.3');
    assert.is(client.alpnProtocol, 'fcp/1');
    const peer = peerHostKey(client);
    assert.is(peer.fingerprint, hostKey.fingerprint, 'the pin matches the daemon key');
    assert.ok(peer.spki.equals(hostKey.spki));
    client.write('ping');
    assert.is(await readOnce(client), 'echo:ping');
    const server = accepted.at(-1)!;
    assert.ok(server.tls);
    const mine = channelBinding(client);
    assert.is(mine.length, 32);
    assert.ok(mine.equals(server.binding!), 'same exporter value on both ends');
  } finally {
    client.destroy();
  }
});

test('tls: every connection has its own exporter value; a resumed session keeps the pin', async () => {
  const first = await connectTls(await dialRaw(), TIMEOUT_MS);
  // TLS 1.3 tickets follow the handshake, before the server's first data: once a reply is in, one is here.
  first.write('x');
  await readOnce(first);
  const ticket = first.getSession();
  assert.ok(ticket, 'a session ticket arrived');
  const firstBinding = channelBinding(first);
  const second = await connectTls(await dialRaw(), TIMEOUT_MS, ticket);
  try {
    assert.ok(second.isSessionReused(), 'resumed');
    // No certificate on resumption: the PSK only the pinned daemon can know stands for it.
    assert.throws(() => peerHostKey(second), /no certificate/);
    checkSameDaemon(second, hostKey.fingerprint);
    assert.not.ok(channelBinding(second).equals(firstBinding), 'fresh exporter per connection');
    second.write('y');
    assert.is(await readOnce(second), 'echo:y');
    assert.ok(channelBinding(second).equals(accepted.at(-1)!.binding!));
  } finally {
    first.destroy();
    second.destroy();
  }
});

test('tls: a plaintext fcp HELLO is told apart from a ClientHello and left unconsumed', async () => {
  const raw = await dialRaw();
  raw.write(Buffer.from([0x10, 0, 0, 0, 0, 0, 0]));
  assert.is(await readOnce(raw), 'plain-bye');
  const server = accepted.at(-1)!;
  assert.not.ok(server.tls);
  assert.is(server.firstLine, Buffer.from([0x10, 0, 0, 0, 0, 0, 0]).toString(), 'sniffed bytes pushed back');
  raw.destroy();
});

test('tls: a server with another key shows another fingerprint (what the pin check refuses)', async () => {
  const otherKey = await loadOrCreateHostKey(path.join(dir, 'other'));
  const other = net.createServer((s) => {
    s.on('error', () => {});
    acceptTls(s, createServerContext(otherKey), TIMEOUT_MS).then(
      (secure) => secure.on('error', () => {}),
      () => s.destroy(),
    );
  });
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  const otherPort = (other.address() as net.AddressInfo).port;
  const raw = await new Promise<net.Socket>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: otherPort }, () => resolve(s));
  });
  const client = await connectTls(raw, TIMEOUT_MS);
  assert.is.not(peerHostKey(client).fingerprint, hostKey.fingerprint);
  assert.is(peerHostKey(client).fingerprint, otherKey.fingerprint);
  assert.throws(() => checkSameDaemon(client, hostKey.fingerprint), /another daemon/);
  // end(), not destroy(): the client's Finished must reach the server, or it waits out its handshake timeout.
  await new Promise<void>((resolve) => client.end(() => resolve()));
  await new Promise((resolve) => other.close(resolve));
});

test('tls: a client that is not TLS gets FCP_ERR_AUTH_CHANNEL from connectTls against a plaintext peer', async () => {
  const plain = net.createServer((s) => {
    s.on('error', () => {});
    s.resume(); // read the ClientHello away, so the client's close is seen and close() can finish
    s.end(Buffer.from([0x0c, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0]));
  });
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  const plainPort = (plain.address() as net.AddressInfo).port;
  const raw = await new Promise<net.Socket>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: plainPort }, () => resolve(s));
  });
  try {
    await connectTls(raw, TIMEOUT_MS);
    assert.unreachable('TLS over a plaintext peer');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'FCP_ERR_AUTH_CHANNEL');
  } finally {
    await new Promise((resolve) => plain.close(resolve));
  }
});

test.run();
