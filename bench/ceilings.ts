/**
 * Per-core ceilings of what moving one byte costs fcp on this machine, each measured on one node thread:
 * TLS 1.3 through node's tls over loopback (AES-128-GCM and CHACHA20-POLY1305, sender and receiver CPU
 * apart, DATA frames written the way the pumps write them), xxhash-wasm, Buffer copies, and read()/write()
 * on tmpfs. spec/ARCHITECTURE.md §6 ("Past one core") quotes them.
 *
 *   node dist/bench/ceilings.js [--mib N] [--pin]
 *
 * --pin puts this process on core 0 and the TLS receiver on core 1 (taskset), as the pinned bench rows do.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import {
  DATA_PREFIX_SIZE,
  FRAME_HEADER_SIZE,
  MAX_DATA_BYTES,
  MsgType,
  PIECE_SIZE,
  writeDataPrefix,
  writeFrameHeader,
} from '../src/protocol/index.js';
import { generateHostKey } from '../src/security/host-key.js';
import { loadHasher } from '../src/transfer/checksum.js';

const SUITES = {
  'AES-128-GCM': 'TLS_AES_128_GCM_SHA256',
  'CHACHA20-POLY1305': 'TLS_CHACHA20_POLY1305_SHA256',
} as const;
type SuiteName = keyof typeof SUITES;

/** How the sender hands a piece's frames to the TLS socket. */
type WriteShape = 'pairs' | 'contiguous';

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function pin(core: number, pid: number): void {
  spawnSync('taskset', ['-pc', String(core), String(pid)], { stdio: 'ignore' });
}

/** A piece's frames as the pumps write them: [header+prefix, data] pairs under one cork. */
function framePairs(piece: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < piece.length; at += MAX_DATA_BYTES) {
    const data = piece.subarray(at, Math.min(at + MAX_DATA_BYTES, piece.length));
    const head = Buffer.allocUnsafe(FRAME_HEADER_SIZE + DATA_PREFIX_SIZE);
    writeDataPrefix(head.subarray(FRAME_HEADER_SIZE), 1, 0, at);
    writeFrameHeader(head, MsgType.Data, 0, DATA_PREFIX_SIZE + data.length);
    out.push(head, data);
  }
  return out;
}

/** The same frames laid out back to back in one buffer. */
function frameBlock(piece: Buffer): Buffer {
  return Buffer.concat(framePairs(piece));
}

/** The receiving end: reads everything, then prints its CPU seconds as JSON and exits. */
async function sink(port: number): Promise<void> {
  const key = JSON.parse(process.env.CEILINGS_KEY ?? '{}') as { cert: string; key: string };
  const server = tls.createServer({ cert: key.cert, key: key.key, minVersion: 'TLSv1.3' }, (socket) => {
    const before = cpuSeconds();
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    socket.on('end', () => {
      process.stdout.write(`${JSON.stringify({ cpu: cpuSeconds() - before, bytes })}\n`);
      socket.end();
      server.close();
    });
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
  await new Promise((resolve) => server.on('close', resolve));
}

interface TlsRow {
  suite: SuiteName;
  shape: WriteShape;
  sendCpuPerGiB: number;
  recvCpuPerGiB: number;
}

async function tlsRun(suite: SuiteName, shape: WriteShape, mib: number, pinned: boolean): Promise<TlsRow> {
  const hostKey = generateHostKey();
  const port = 34900 + Math.floor(Math.random() * 90);
  const self = fileURLToPath(import.meta.url);
  const args = [self, '--sink', String(port)];
  const child = pinned
    ? spawn('taskset', ['-c', '1', process.execPath, ...args], {
        env: { ...process.env, CEILINGS_KEY: JSON.stringify({ cert: hostKey.certPem, key: hostKey.keyPem }) },
      })
    : spawn(process.execPath, args, {
        env: { ...process.env, CEILINGS_KEY: JSON.stringify({ cert: hostKey.certPem, key: hostKey.keyPem }) },
      });
  const lines: string[] = [];
  let partial = '';
  const lineWaiters: Array<() => void> = [];
  child.stdout.on('data', (b: Buffer) => {
    partial += b.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of lineWaiters.splice(0)) w();
  });
  const nextLine = async (): Promise<string> => {
    for (let i = 0; i < 10_000 && lines.length === 0; i++) {
      await new Promise<void>((resolve) => lineWaiters.push(resolve));
    }
    return lines.shift() ?? '';
  };
  await nextLine();
  const socket = tls.connect({
    socket: net.connect(port, '127.0.0.1'),
    ciphers: SUITES[suite],
    minVersion: 'TLSv1.3',
    rejectUnauthorized: false,
  });
  await new Promise((resolve) => socket.once('secureConnect', resolve));
  const piece = Buffer.alloc(PIECE_SIZE, 7);
  // Laid out once, as a sender that reads file bytes straight between frame headers would hold it.
  const block = frameBlock(piece);
  const before = cpuSeconds();
  for (let i = 0; i < mib; i++) {
    if (shape === 'contiguous') {
      // One buffer per write and none queued behind it: TLS encrypts it in place instead of first copying a
      // writev's buffers into one.
      await new Promise((resolve) => socket.write(block, resolve));
      continue;
    }
    socket.cork();
    let ok = true;
    for (const b of framePairs(piece)) ok = socket.write(b);
    socket.uncork();
    if (!ok) await new Promise((resolve) => socket.once('drain', resolve));
  }
  await new Promise<void>((resolve) => socket.end(resolve));
  const sendCpu = cpuSeconds() - before;
  const result = JSON.parse(await nextLine()) as { cpu: number };
  const gib = mib / 1024;
  return { suite, shape, sendCpuPerGiB: sendCpu / gib, recvCpuPerGiB: result.cpu / gib };
}

/** CPU seconds per GiB of `work` on a 1 MiB buffer, run `mib` times. */
function perGiB(mib: number, work: () => void): number {
  work();
  const before = cpuSeconds();
  for (let i = 0; i < mib; i++) work();
  return (cpuSeconds() - before) / (mib / 1024);
}

async function local(mib: number): Promise<Array<[string, number]>> {
  const hasher = await loadHasher();
  const piece = Buffer.alloc(PIECE_SIZE, 3);
  const other = Buffer.allocUnsafe(PIECE_SIZE);
  const dir = mkdtempSync('/dev/shm/fcp-ceilings-');
  const file = path.join(dir, 'f');
  try {
    const fd = openSync(file, 'w+');
    const rows: Array<[string, number]> = [
      ['xxh64 (xxhash-wasm h64Raw: copy into wasm + hash)', perGiB(mib, () => void hasher.pieceHash(piece))],
      ['xxh32 (frame checksum)', perGiB(mib, () => void hasher.h32(piece))],
      ['Buffer copy (set, 1 MiB)', perGiB(mib, () => other.set(piece))],
      ['write() to tmpfs, 1 MiB calls (new pages)', perGiB(mib, () => void writeSync(fd, piece))],
      ['read() from tmpfs, 1 MiB calls', perGiB(mib, () => void readSync(fd, other, 0, PIECE_SIZE, 0))],
    ];
    closeSync(fd);
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const sinkAt = argv.indexOf('--sink');
  if (sinkAt >= 0) {
    await sink(Number(argv[sinkAt + 1]));
    return;
  }
  const mibAt = argv.indexOf('--mib');
  const mib = mibAt >= 0 ? Number(argv[mibAt + 1]) : 1024;
  const pinned = argv.includes('--pin');
  if (pinned) pin(0, process.pid);
  console.log(
    `CPU seconds per GiB on one node ${process.version} thread (${mib} MiB each)${pinned ? ', pinned' : ''}`,
  );
  for (const [what, s] of await local(mib)) {
    console.log(`${what.padEnd(52)} ${s.toFixed(3)} s/GiB  ${(1 / s).toFixed(2)} GiB/s`);
  }
  for (const suite of Object.keys(SUITES) as SuiteName[]) {
    for (const shape of ['pairs', 'contiguous'] as const) {
      const r = await tlsRun(suite, shape, mib, pinned);
      console.log(
        `TLS ${suite} ${shape.padEnd(10)} sender ${r.sendCpuPerGiB.toFixed(3)} s/GiB (${(1 / r.sendCpuPerGiB).toFixed(2)} GiB/s), ` +
          `receiver ${r.recvCpuPerGiB.toFixed(3)} s/GiB (${(1 / r.recvCpuPerGiB).toFixed(2)} GiB/s)`,
      );
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
