import { createHash, randomBytes } from 'node:crypto';
import net, { type AddressInfo, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { startRecordingProxy } from '../helpers/recording-proxy.js';

// Every wait in this file is bounded by this, so a broken proxy fails a test instead of hanging the run.
const LIMIT_MS = 10_000;
const KiB = 1024;
const MiB = 1024 * KiB;

const noop = (): void => {};

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${LIMIT_MS} ms: ${what}`)), LIMIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function until(ready: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + LIMIT_MS;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${LIMIT_MS} ms: ${what}`);
    await delay(2);
  }
}

/** What one side of a connection read before its socket closed. */
interface Received {
  data: Buffer;
  error: (Error & { code?: string }) | undefined;
}

/**
 * Reads until EOF or close, whichever comes first (a half-open socket may never close); errors are
 * reported, not thrown.
 */
function collect(socket: Socket): Promise<Received> {
  const chunks: Buffer[] = [];
  let error: Received['error'];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', (err) => {
    error ??= err;
  });
  const done = new Promise<Received>((resolve) => {
    const finish = (): void => resolve({ data: Buffer.concat(chunks), error });
    socket.once('end', finish);
    socket.once('close', finish);
  });
  return within(done, 'socket EOF or close');
}

function connect(port: number): Promise<Socket> {
  return within(
    new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(socket);
      });
      socket.once('error', reject);
    }),
    'connect',
  );
}

/** A loopback server; `received[i]` resolves with what its i-th connection read. */
interface TestServer {
  port: number;
  sockets: Socket[];
  received: Promise<Received>[];
  close(): Promise<void>;
}

async function startServer(onSocket: (socket: Socket) => void = noop): Promise<TestServer> {
  const sockets: Socket[] = [];
  const received: Promise<Received>[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    const read = collect(socket);
    // A test that never looks at this connection must not crash the run with an unhandled rejection.
    read.catch(noop);
    received.push(read);
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sockets,
    received,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function echo(socket: Socket): void {
  socket.pipe(socket);
}

/** Reads everything and ends its own side when the peer does. */
function sink(socket: Socket): void {
  socket.on('end', () => socket.end());
}

async function withProxy(
  onSocket: (socket: Socket) => void,
  body: (proxy: FaultProxy, server: TestServer) => Promise<void>,
): Promise<void> {
  const server = await startServer(onSocket);
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: server.port } });
  try {
    await body(proxy, server);
  } finally {
    await within(proxy.close(), 'proxy close');
    await within(server.close(), 'server close');
  }
}

/** Sends `data` through the proxy, half-closes, and returns what came back before the socket closed. */
async function roundTrip(proxy: FaultProxy, data: Buffer): Promise<Received> {
  const client = await connect(proxy.port);
  const back = collect(client);
  client.end(data);
  return back;
}

async function rejects(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await promise;
  } catch (err) {
    assert.match(String(err), pattern);
    return;
  }
  assert.unreachable('expected the promise to reject');
}

function differingOffsets(a: Buffer, b: Buffer): number[] {
  const offsets: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) offsets.push(i);
  return offsets;
}

test('forwards several MiB intact both ways and counts them', async () => {
  await withProxy(echo, async (proxy) => {
    const data = randomBytes(4 * MiB + 123);
    const back = await roundTrip(proxy, data);
    assert.is(back.error, undefined);
    assert.is(back.data.length, data.length);
    assert.is(sha256(back.data), sha256(data));
    const [connection] = await proxy.waitForConnections(1);
    await within(connection!.closed, 'proxied connection close');
    assert.is(connection!.index, 0);
    assert.is(connection!.bytesUp, data.length);
    assert.is(connection!.bytesDown, data.length);
    assert.is(connection!.open, false);
  });
});

test('propagates a half-close in each direction', async () => {
  const greet = (socket: Socket): void => {
    socket.end('hello');
  };
  await withProxy(greet, async (proxy, server) => {
    const client = await connect(proxy.port);
    const back = collect(client);
    // The server has finished sending; the client can still talk.
    await within(new Promise((resolve) => client.once('end', resolve)), 'client end');
    client.end('bye');
    assert.is((await back).data.toString(), 'hello');
    const atServer = await server.received[0]!;
    assert.is(atServer.data.toString(), 'bye');
    assert.is(atServer.error, undefined);
  });
});

test('cutAfter up: the target sees exactly N bytes, then both sides close', async () => {
  await withProxy(noop, async (proxy, server) => {
    const cutAt = 100_000 + 7;
    proxy.cutAfter(cutAt, { direction: 'up' });
    const data = randomBytes(MiB);
    const client = await connect(proxy.port);
    const back = collect(client);
    client.write(data);
    await back;
    await until(() => server.received.length === 1, 'server accept');
    const atServer = await server.received[0]!;
    assert.is(atServer.data.length, cutAt);
    assert.ok(atServer.data.equals(data.subarray(0, cutAt)));
    assert.is(proxy.connections[0]!.bytesUp, cutAt);
  });
});

test('a cut delivers the prefix the proxy still buffers to a slow reader before closing it', async () => {
  const hold = (socket: Socket): void => {
    socket.pause();
  };
  await withProxy(hold, async (proxy, server) => {
    const data = randomBytes(32 * MiB);
    const client = await connect(proxy.port);
    const back = collect(client);
    client.write(data);
    // Until the kernel buffers are full, so that part of what was forwarded still waits in the proxy.
    await proxy.waitFor(() => proxy.connections[0]?.waiting('up') === 'drain', 'proxy to wait for drain');
    const connection = proxy.connections[0]!;
    assert.ok(connection.bufferedUp > 0);
    const cutAt = connection.bytesUp;
    proxy.cutAfter(cutAt, { direction: 'up' });
    await back;
    server.sockets[0]!.resume();
    const atServer = await server.received[0]!;
    assert.is(atServer.data.length, cutAt);
    assert.ok(atServer.data.equals(data.subarray(0, cutAt)));
  });
});

test('cutAfter down: the client sees exactly N bytes, then EOF', async () => {
  const data = randomBytes(MiB);
  const send = (socket: Socket): void => {
    socket.end(data);
  };
  await withProxy(send, async (proxy) => {
    const cutAt = 300_001;
    proxy.cutAfter(cutAt, { direction: 'down' });
    const client = await connect(proxy.port);
    const back = await collect(client);
    assert.is(back.data.length, cutAt);
    assert.ok(back.data.equals(data.subarray(0, cutAt)));
  });
});

test('cutAfter on one connection index leaves the others alone', async () => {
  await withProxy(sink, async (proxy, server) => {
    proxy.cutAfter(10, { direction: 'both', connection: 1 });
    const data = randomBytes(1000);
    for (let i = 0; i < 3; i++) {
      await roundTrip(proxy, data);
      await until(() => server.received.length === i + 1, `server accept ${i}`);
      await server.received[i];
    }
    const lengths = await Promise.all(server.received.map(async (r) => (await r).data.length));
    assert.equal(lengths, [1000, 10, 1000]);
  });
});

test('cutAfter set mid-stream below the current count cuts at once', async () => {
  await withProxy(echo, async (proxy) => {
    const client = await connect(proxy.port);
    const back = collect(client);
    client.write('0123456789');
    await proxy.waitForBytes('down', 10);
    proxy.cutAfter(5, { direction: 'up' });
    const { data } = await back;
    assert.is(data.toString(), '0123456789');
    await proxy.waitForClosed(1);
  });
});

test('flipByte corrupts exactly the chosen byte of each direction', async () => {
  await withProxy(echo, async (proxy) => {
    proxy.flipByte(1000, { direction: 'up' });
    proxy.flipByte(50_000, { direction: 'down', xor: 0x01 });
    const data = randomBytes(64 * KiB);
    const back = await roundTrip(proxy, data);
    assert.is(back.data.length, data.length);
    assert.equal(differingOffsets(back.data, data), [1000, 50_000]);
    assert.is(back.data[1000], data[1000]! ^ 0xff);
    assert.is(back.data[50_000], data[50_000]! ^ 0x01);
  });
});

test('stall stops forwarding at an exact byte count and resume delivers the rest', async () => {
  await withProxy(noop, async (proxy, server) => {
    const stallAt = 4096;
    proxy.stall({ direction: 'up', afterBytes: stallAt });
    const data = randomBytes(256 * KiB);
    const client = await connect(proxy.port);
    client.end(data);
    await proxy.waitForBytes('up', stallAt);
    await until(() => (server.sockets[0]?.bytesRead ?? 0) >= stallAt, 'server reads the prefix');
    // Held at the stall point: the pump paused its source there and forwards nothing until resume().
    await proxy.waitFor(() => proxy.connections[0]!.waiting('up') === 'stall', 'the stall to hold');
    assert.is(proxy.connections[0]!.bytesUp, stallAt);
    assert.is(server.sockets[0]!.bytesRead, stallAt);
    assert.ok(proxy.connections[0]!.open);

    proxy.resume();
    const atServer = await server.received[0]!;
    assert.is(atServer.data.length, data.length);
    assert.is(sha256(atServer.data), sha256(data));
  });
});

test('stall before traffic holds both directions of that connection until resume', async () => {
  await withProxy(echo, async (proxy) => {
    proxy.stall({ connection: 0 });
    const client = await connect(proxy.port);
    const back = collect(client);
    client.end(Buffer.alloc(1000, 7));
    await proxy.waitForConnections(1);
    // The client's first bytes reached the proxy, which paused it at byte 0 instead of forwarding them.
    await proxy.waitFor(() => proxy.connections[0]!.waiting('up') === 'stall', 'the stall to hold');
    assert.is(proxy.connections[0]!.bytesUp, 0);
    assert.is(proxy.connections[0]!.bytesDown, 0);
    proxy.resume();
    assert.ok((await back).data.equals(Buffer.alloc(1000, 7)));
  });
});

test('backpressure: the proxy buffers little while the target does not read', async () => {
  const hold = (socket: Socket): void => {
    socket.pause();
  };
  await withProxy(hold, async (proxy, server) => {
    const data = Buffer.concat(Array.from({ length: 32 }, () => randomBytes(MiB)));
    const client = await connect(proxy.port);
    client.on('error', noop);
    client.end(data);
    await proxy.waitForBytes('up', 64 * KiB);
    // A proxy ignoring write() === false would never wait for 'drain', and would pull all 32 MiB in.
    await proxy.waitFor(() => proxy.connections[0]!.waiting('up') === 'drain', 'proxy to wait for drain');
    const connection = proxy.connections[0]!;
    assert.ok(connection.bufferedUp <= MiB, `proxy holds ${connection.bufferedUp} bytes`);
    assert.ok(connection.bytesUp < data.length, `proxy forwarded ${connection.bytesUp} bytes`);

    server.sockets[0]!.resume();
    const atServer = await server.received[0]!;
    assert.is(sha256(atServer.data), sha256(data));
  });
});

test('cutAll closes every live connection; new ones still work', async () => {
  await withProxy(echo, async (proxy) => {
    const clients = await Promise.all([connect(proxy.port), connect(proxy.port)]);
    const backs = clients.map(collect);
    for (const client of clients) client.write('x');
    await proxy.waitForBytes('down', 2);
    proxy.cutAll();
    const results = await Promise.all(backs);
    assert.equal(
      results.map((r) => r.data.toString()),
      ['x', 'x'],
    );
    await proxy.waitForClosed(2);
    assert.equal(proxy.liveConnections, []);

    const again = await roundTrip(proxy, Buffer.from('again'));
    assert.is(again.data.toString(), 'again');
  });
});

test('resetAll makes the peers see ECONNRESET', async () => {
  await withProxy(echo, async (proxy) => {
    const client = await connect(proxy.port);
    const back = collect(client);
    client.write('x');
    // Linux reports EOF, not ECONNRESET, for a reset that arrives while data is still unread.
    await within(new Promise((resolve) => client.once('data', resolve)), 'echo');
    proxy.resetAll();
    assert.is((await back).error?.code, 'ECONNRESET');
  });
});

test('refuseNew accepts and closes new connections without reaching the target', async () => {
  await withProxy(sink, async (proxy, server) => {
    proxy.refuseNew(true);
    const refused = await connect(proxy.port);
    const back = await collect(refused);
    assert.is(back.data.length, 0);
    await proxy.waitForRefused(1);
    assert.is(proxy.connections.length, 0);
    assert.is(server.sockets.length, 0);

    proxy.refuseNew(false);
    await roundTrip(proxy, Buffer.from('ok'));
    await until(() => server.received.length === 1, 'server accept');
    assert.is((await server.received[0]!).data.toString(), 'ok');
    assert.is(proxy.connections[0]!.index, 0);
  });
});

test('a target that refuses the connection resets the client', async () => {
  const gone = await startServer();
  await gone.close();
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: gone.port } });
  try {
    const client = await connect(proxy.port);
    const back = await collect(client);
    assert.is(back.data.length, 0);
    await proxy.waitForClosed(1);
    assert.is((proxy.connections[0]!.error as NodeJS.ErrnoException | undefined)?.code, 'ECONNREFUSED');
  } finally {
    await proxy.close();
  }
});

test('waits reject after their timeout and when the proxy closes', async () => {
  const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: 9 } });
  try {
    await rejects(proxy.waitForConnections(1, { timeoutMs: 20 }), /timed out after 20 ms/);
    const pending = proxy.waitForConnections(1);
    const closing = proxy.close();
    await rejects(pending, /closed/);
    await closing;
  } finally {
    await proxy.close();
  }
});

test('recording proxy keeps every byte each way, per connection', async () => {
  const server = await startServer(echo);
  const recorder = await startRecordingProxy({ target: { host: '127.0.0.1', port: server.port } });
  try {
    const client = await connect(recorder.port);
    const back = collect(client);
    // Split the marker across two writes: it must still be found whole.
    client.write('prefix MARK');
    await recorder.proxy.waitForBytes('down', 11);
    client.end('ER-7f3a suffix');
    const sent = 'prefix MARKER-7f3a suffix';
    assert.is((await back).data.toString(), sent);
    await recorder.proxy.waitForClosed(1);

    const { up, down, truncated } = recorder.recorded();
    assert.is(truncated, false);
    assert.is(up.toString(), sent);
    assert.is(down.toString(), sent);
    assert.ok(up.includes('MARKER-7f3a'));
    assert.is(recorder.recordedByConnection().length, 1);
  } finally {
    await recorder.close();
    await server.close();
  }
});

test('recording proxy stops recording at its cap but keeps forwarding', async () => {
  const server = await startServer(echo);
  const recorder = await startRecordingProxy({
    target: { host: '127.0.0.1', port: server.port },
    maxBytes: 1000,
  });
  try {
    const data = randomBytes(5000);
    const client = await connect(recorder.port);
    const back = collect(client);
    client.end(data);
    assert.ok((await back).data.equals(data));
    const { up, down, truncated } = recorder.recorded();
    assert.is(truncated, true);
    assert.is(up.length + down.length, 1000);
    assert.ok(up.equals(data.subarray(0, up.length)));
  } finally {
    await recorder.close();
    await server.close();
  }
});

test.run();
