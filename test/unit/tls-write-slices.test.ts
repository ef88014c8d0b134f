import { once } from 'node:events';
import path from 'node:path';
import type tls from 'node:tls';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { loadOrCreateHostKey } from '../../src/security/host-key.js';
import { acceptTls, connectTls, createServerContext } from '../../src/security/tls-channel.js';
import { socketChannel } from '../../src/transport/channel.js';
import { TLS_WRITE_SLICE, toSlices } from '../../src/transport/tls-write-slices.js';
import { socketPair } from '../helpers/socket-pair.js';
import { removeDir, tempDir } from '../helpers/ssh-keys.js';

// src/transport/tls-write-slices.ts: what a TLS channel hands to TLS per write, and that nothing is lost or
// reordered on the way.

const TIMEOUT_MS = 5000;
let dir = '';
const sockets: tls.TLSSocket[] = [];

test.after(async () => {
  for (const s of sockets) s.destroy();
  if (dir) await removeDir(dir);
});

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

test('toSlices regroups buffers in order into runs of at most the slice, cutting long ones into views', () => {
  const a = pattern(10, 1);
  const b = pattern(25, 2);
  const c = pattern(3, 3);
  const slices = toSlices([a, b, c], 16);
  assert.equal(
    slices.map((run) => run.reduce((n, x) => n + x.length, 0)),
    [16, 16, 6],
  );
  assert.equal(Buffer.concat(slices.flat()), Buffer.concat([a, b, c]));
  assert.is(slices[0]![0], a, 'a buffer that fits whole is passed as it is');
  assert.is(slices[0]![1]!.buffer, b.buffer, 'a cut buffer is a view, not a copy');
});

/** [client, server] TLS sockets over loopback, the client's channel made as the dialers make it. */
async function tlsPair(): Promise<[tls.TLSSocket, tls.TLSSocket]> {
  dir ||= await tempDir('tls-slices');
  const context = createServerContext(await loadOrCreateHostKey(path.join(dir, 'state')));
  const [c, s] = await socketPair();
  const [client, server] = await Promise.all([connectTls(c, TIMEOUT_MS), acceptTls(s, context, TIMEOUT_MS)]);
  sockets.push(client, server);
  socketChannel(client, true);
  return [client, server];
}

/** Records the byte count of every write that reaches the TLS handle (what TLS encrypts in one go). */
function recordHandleWrites(socket: tls.TLSSocket): number[] {
  const sizes: number[] = [];
  // The handle is node's TLSWrap: each call is one SSL_write into the socket's output BIO.
  const handle = (socket as unknown as { _handle: Record<string, (...a: unknown[]) => unknown> })._handle;
  for (const name of ['writeBuffer', 'writev', 'writeLatin1String', 'writeUtf8String']) {
    const orig = handle[name]!.bind(handle);
    handle[name] = (req: unknown, data: unknown, ...rest: unknown[]) => {
      const list = Array.isArray(data) ? data : [data];
      sizes.push(list.reduce((n: number, x) => n + (Buffer.isBuffer(x) ? x.length : 0), 0));
      return orig(req, data, ...rest);
    };
  }
  return sizes;
}

test('a TLS channel hands TLS its writes in slices, and the peer reads every byte in order', async () => {
  const [client, server] = await tlsPair();
  const sizes = recordHandleWrites(client);
  const piece = pattern(1024 * 1024 + 300, 7);
  const small = Array.from({ length: 40 }, (_, i) => pattern(10_000, i));
  const expected = Buffer.concat([piece, ...small, piece]);
  const received: Buffer[] = [];
  let got = 0;
  server.on('data', (d: Buffer) => {
    received.push(d);
    got += d.length;
  });
  const written: string[] = [];
  client.write(piece, () => written.push('piece'));
  client.cork();
  for (const s of small) client.write(s);
  client.write(piece, () => written.push('batch'));
  client.uncork();
  await once(client, 'drain');
  for (let i = 0; i < 1000 && got < expected.length; i++) await once(server, 'data');
  assert.equal(written, ['piece', 'batch'], 'each write calls back once, in order');
  assert.ok(Buffer.concat(received).equals(expected), 'the peer got every byte, in order');
  const biggest = Math.max(...sizes);
  assert.ok(biggest <= TLS_WRITE_SLICE, `largest write handed to TLS: ${biggest} bytes`);
});

test.run();
