/**
 * The raw TCP reference: a sink that discards what it reads and a sender that pushes a byte count over N
 * parallel connections, respecting write() backpressure. Timing runs from the first connect until every
 * connection has been closed by the sink (which closes only after reading the sender's FIN), so bytes still
 * inside a proxy are counted. CLI: `node dist/bench/raw-stream.js sink --port 0` and
 * `node dist/bench/raw-stream.js send --to 127.0.0.1:PORT --bytes 1GiB --streams 8`.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { mbps, parseBytes } from './units.js';

export interface Sink {
  port: number;
  /** Bytes read so far over all connections. */
  bytes(): number;
  close(): Promise<void>;
}

export interface SendResult {
  bytes: number;
  seconds: number;
  mbps: number;
  streams: number;
}

/** Starts a sink on 127.0.0.1 that reads and discards, closing each connection after its FIN. */
export async function startSink(port: number): Promise<Sink> {
  let total = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('data', (buf: Buffer) => {
      total += buf.length;
    });
    socket.on('end', () => socket.end());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('sink: no TCP address');
  return {
    port: address.port,
    bytes: () => total,
    close: async () => {
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await done;
    },
  };
}

const BLOCK = randomBytes(1024 * 1024);

function sendOne(host: string, port: number, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let left = bytes;
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, BLOCK.length);
        left -= n;
        if (!socket.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) return;
      }
      socket.end();
    };
    socket.on('connect', pump);
    socket.on('drain', pump);
    socket.on('data', () => {});
    socket.on('error', reject);
    socket.on('close', (hadError) => {
      if (!hadError && left === 0) resolve();
      else reject(new Error(`raw stream closed with ${left} bytes unsent`));
    });
  });
}

/** Sends `bytes` in total, split evenly over `streams` connections, and times it. */
export async function sendStreams(
  host: string,
  port: number,
  bytes: number,
  streams: number,
): Promise<SendResult> {
  const per = Math.ceil(bytes / streams);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: streams }, () => sendOne(host, port, per)));
  const seconds = (performance.now() - t0) / 1000;
  return { bytes: per * streams, seconds, mbps: mbps(per * streams, seconds), streams };
}

async function cliMain(argv: string[]): Promise<void> {
  const [mode, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      port: { type: 'string', default: '0' },
      to: { type: 'string' },
      bytes: { type: 'string', default: '256MiB' },
      streams: { type: 'string', default: '1' },
    },
  });
  if (mode === 'sink') {
    const sink = await startSink(Number(values.port));
    console.log(JSON.stringify({ event: 'listening', port: sink.port }));
    const stop = (): void => {
      void sink.close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return;
  }
  if (mode === 'send' && values.to !== undefined) {
    const i = values.to.lastIndexOf(':');
    const result = await sendStreams(
      values.to.slice(0, i),
      Number(values.to.slice(i + 1)),
      parseBytes(values.bytes),
      Number(values.streams),
    );
    console.log(JSON.stringify(result));
    return;
  }
  console.log('usage: raw-stream.js sink [--port P] | send --to HOST:PORT [--bytes SIZE] [--streams N]');
  process.exit(2);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  cliMain(process.argv.slice(2)).catch((err: unknown) => {
    console.error(`raw-stream: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
