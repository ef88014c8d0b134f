import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { resetSocket, startWanProxy, type WanProxyOptions } from '../../bench/wan-proxy.js';

// Timing assertions are lower bounds only: a loaded machine can always be slower, never faster than the model.

interface Target {
  server: net.Server;
  port: number;
  sockets: Set<net.Socket>;
}

async function listen(onConnection: (socket: net.Socket) => void): Promise<Target> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return { server, port: address.port, sockets };
}

/** Closes the target, ending connections a test left half-open (allowHalfOpen keeps them otherwise). */
function closeTarget(target: Target): Promise<void> {
  for (const s of target.sockets) s.destroy();
  return new Promise((resolve) => target.server.close(() => resolve()));
}

function options(port: number, extra: Partial<WanProxyOptions>): WanProxyOptions {
  return { listenPort: 0, target: { host: '127.0.0.1', port }, rttMs: 10, windowBytes: 256 * 1024, ...extra };
}

function sha(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

function collect(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    socket.on('data', (b: Buffer) => parts.push(b));
    socket.on('end', () => resolve(Buffer.concat(parts)));
    socket.on('error', reject);
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

test('bytes pass intact both ways, with the window forcing pauses', async () => {
  const up = randomBytes(3 * 1024 * 1024 + 17);
  const down = randomBytes(2 * 1024 * 1024 + 5);
  let received: Promise<Buffer> | undefined;
  const target = await listen((socket) => {
    received = collect(socket);
    socket.end(down);
  });
  const proxy = await startWanProxy(options(target.port, { rttMs: 4, windowBytes: 128 * 1024 }));
  const client = await connect(proxy.port);
  const back = collect(client);
  client.end(up);
  assert.is(sha(await back), sha(down));
  assert.ok(received);
  assert.is(sha(await received), sha(up));
  assert.ok(proxy.stats.windowPauses > 0, 'the window should have paused the source');
  assert.ok(proxy.stats.maxInFlight <= 128 * 1024 + 64 * 1024, `in flight ${proxy.stats.maxInFlight}`);
  client.destroy();
  await proxy.close();
  await closeTarget(target);
});

test('each direction is delayed by at least half the RTT', async () => {
  let firstByteAt = 0;
  const target = await listen((socket) => {
    socket.once('data', () => {
      firstByteAt = performance.now();
      socket.write('pong');
    });
  });
  const proxy = await startWanProxy(options(target.port, { rttMs: 100 }));
  const client = await connect(proxy.port);
  const sentAt = performance.now();
  const reply = new Promise<number>((resolve) => client.once('data', () => resolve(performance.now())));
  client.write('ping');
  const replyAt = await reply;
  // 1 ms of slack for the clock's rounding, none for scheduling (which only ever adds delay).
  assert.ok(firstByteAt - sentAt >= 49, `one way took ${(firstByteAt - sentAt).toFixed(1)} ms`);
  assert.ok(replyAt - sentAt >= 99, `round trip took ${(replyAt - sentAt).toFixed(1)} ms`);
  client.destroy();
  await proxy.close();
  await closeTarget(target);
});

test('the window bounds throughput to about window per RTT', async () => {
  let done: Promise<Buffer> | undefined;
  const target = await listen((socket) => {
    done = collect(socket);
    socket.end();
  });
  const windowBytes = 64 * 1024;
  const proxy = await startWanProxy(options(target.port, { rttMs: 40, windowBytes }));
  const client = await connect(proxy.port);
  client.resume();
  const t0 = performance.now();
  client.end(randomBytes(10 * windowBytes));
  await new Promise((resolve) => client.once('end', resolve));
  assert.ok(done);
  assert.is((await done).length, 10 * windowBytes);
  // The model allows at most ~2 windows in the first RTT and one per RTT after: >= 8 RTTs for 10 windows.
  const ms = performance.now() - t0;
  assert.ok(ms >= 200, `10 windows took only ${ms.toFixed(0)} ms at 40 ms RTT`);
  client.destroy();
  await proxy.close();
  await closeTarget(target);
});

test('a per-connection rate cap holds the flow down', async () => {
  let done: Promise<Buffer> | undefined;
  const target = await listen((socket) => {
    done = collect(socket);
    socket.end();
  });
  const proxy = await startWanProxy(
    options(target.port, { rttMs: 2, windowBytes: 4 * 1024 * 1024, perConnRateBps: 1e6 }),
  );
  const client = await connect(proxy.port);
  client.resume();
  const t0 = performance.now();
  client.end(randomBytes(400_000));
  await new Promise((resolve) => client.once('end', resolve));
  assert.ok(done);
  assert.is((await done).length, 400_000);
  // 400 kB at 1 MB/s with a 64 KiB burst allowance: at least ~330 ms.
  const ms = performance.now() - t0;
  assert.ok(ms >= 250, `400 kB at 1 MB/s took only ${ms.toFixed(0)} ms`);
  client.destroy();
  await proxy.close();
  await closeTarget(target);
});

test('half-close travels both ways and the connection then closes', async () => {
  let serverSawEnd = false;
  const target = await listen((socket) => {
    socket.resume();
    socket.on('end', () => {
      serverSawEnd = true;
      socket.end('bye');
    });
  });
  const proxy = await startWanProxy(options(target.port, {}));
  const client = await connect(proxy.port);
  const reply = collect(client);
  client.end('hello');
  assert.is((await reply).toString(), 'bye');
  assert.ok(serverSawEnd);
  await new Promise((resolve) => client.once('close', resolve));
  await proxy.close();
  await closeTarget(target);
});

test('closed names the side whose FIN came first, in the order connections closed', async () => {
  // The target closes the first connection it is given; the client closes the second itself.
  let accepted = 0;
  const target = await listen((socket) => {
    socket.resume();
    if (accepted++ === 0) socket.end();
    else socket.on('end', () => socket.end());
  });
  const proxy = await startWanProxy(options(target.port, {}));
  const byTarget = await connect(proxy.port);
  byTarget.resume();
  byTarget.on('end', () => byTarget.end());
  await new Promise((resolve) => byTarget.once('close', resolve));
  const byClient = await connect(proxy.port);
  byClient.resume();
  byClient.end();
  await new Promise((resolve) => byClient.once('close', resolve));
  // As in 'a refused target closes the client': the proxy's own sockets may close a turn later.
  for (let waited = 0; proxy.closed.length < 2 && waited < 5000; waited += 5) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.equal(proxy.closed, [
    { index: 0, firstEnd: 'target' },
    { index: 1, firstEnd: 'client' },
  ]);
  await proxy.close();
  await closeTarget(target);
});

test('a reset on the target side closes the client', async () => {
  const target = await listen((socket) => {
    socket.once('data', () => socket.resetAndDestroy());
  });
  const proxy = await startWanProxy(options(target.port, {}));
  const client = await connect(proxy.port);
  client.on('error', () => {});
  const closed = new Promise((resolve) => client.once('close', resolve));
  client.write('x');
  await closed;
  await proxy.close();
  await closeTarget(target);
});

test("resetSocket closes a socket whose end() is still being flushed (regression: no 'close' after EINVAL)", async () => {
  // The peer keeps its half open and never answers the FIN, so our shutdown is still pending when we reset.
  const closed = new Promise<string>((resolve) => {
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => {});
      socket.on('close', () => {
        server.close();
        resolve('closed');
      });
      socket.end();
      assert.not.ok(socket.writableFinished, 'the shutdown is still pending');
      resetSocket(socket);
    });
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      const peer = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      peer.on('error', () => {});
      peer.on('close', () => {});
      peer.resume();
      setTimeout(() => peer.destroy(), 3_000).unref();
    });
  });
  const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('no close'), 2_000).unref());
  assert.is(await Promise.race([closed, timeout]), 'closed');
});

test('a refused target closes the client', async () => {
  const target = await listen(() => {});
  const port = target.port;
  await closeTarget(target);
  const proxy = await startWanProxy(options(port, {}));
  const client = await connect(proxy.port);
  client.on('error', () => {});
  client.resume();
  await new Promise((resolve) => client.once('close', resolve));
  // The proxy counts the connection gone when its own two sockets have closed, which may come a turn of
  // the event loop after the client's: wait for that (bounded), rather than for a fixed few milliseconds.
  for (let waited = 0; proxy.stats.active !== 0 && waited < 5000; waited += 5) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.is(proxy.stats.active, 0);
  await proxy.close();
});

test.run();
