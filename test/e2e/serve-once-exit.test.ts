// fcpd --serve-once ends and leaves nothing behind: after an idle time without a login, on SIGTERM and
// SIGHUP, when its stdin (ssh) closes mid-transfer (partial files kept, and a new serve-once resumes them),
// with no relay or daemon process left in /proc and its socket removed; and it survives garbage on its
// relay socket and on a relay's stdin long enough to serve the real session, writing nothing for them.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { pull, push } from '../../src/client/transfer-client.js';
import { commandDialer } from '../../src/transport/command-dial.js';
import type { FcpError } from '../../src/protocol/errors.js';
import type { TransferEvent } from '../../src/transfer/events.js';
import type { Dialer } from '../../src/transport/dialer.js';
import { FCPD_BIN, runFcpd, track } from '../helpers/cli.js';
import { HOST } from '../helpers/daemon.js';
import { tempDirs } from '../helpers/expect.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { loadFrameBuilder, T } from '../helpers/frame-builder.js';
import {
  carriedOptions,
  directOptions,
  processesLeftMentioning,
  processesMentioning,
  type ServeOnceChild,
  serveOnceRegistry,
} from '../helpers/serve-once.js';
import { buildTree, compareTrees } from '../helpers/tree.js';

const MiB = 1 << 20;
const dirs = tempDirs('fcp-e2e-serve-once-exit-');
const daemons = serveOnceRegistry();
test.after.each(() => daemons.cleanupAll());
test.after(() => dirs.removeAll());
const serveOnce = daemons.start;

/** Gone, and its socket with it; nothing that named its socket still runs. */
async function gone(d: ServeOnceChild, code: number): Promise<void> {
  const how = await d.exited();
  assert.is(how.code, code, `exit ${how.code} ${how.signal}: ${d.stderr()}`);
  assert.not.ok(existsSync(`/proc/${d.child.pid}`));
  assert.not.ok(existsSync(d.info.relay), 'relay socket removed');
  assert.equal(await readdir(join(d.home, '.cache', 'fcp', 'run')), [], 'run dir left empty');
  assert.equal(await processesLeftMentioning(d.info.relay), []);
}

test('no login within the idle time: exits 4 saying so, socket removed', async () => {
  const d = await serveOnce(dirs.make(), { env: { FCPD_SERVE_ONCE_IDLE_MS: '300' } });
  await gone(d, 4);
  assert.match(d.stderr(), /^fcpd: --serve-once: no client logged in in time; exiting\n$/);
});

for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
  test(`${signal}: exits 0, socket removed`, async () => {
    const d = await serveOnce(dirs.make());
    d.child.kill(signal);
    await gone(d, 0);
  });
}

test('stdin closes mid-transfer: exits, the partial is kept, and a new serve-once resumes it', async () => {
  const root = dirs.make();
  const src = join(dirs.make(), 'src');
  const size = 24 * MiB + 77;
  await buildTree(src, [{ kind: 'file', path: 'big.bin', size }]);
  const d = await serveOnce(root);
  // One connection through a proxy that holds everything after 8 MiB: the session is mid-file when ssh "goes".
  const proxy = await startFaultProxy({ target: { host: HOST, port: d.info.port } });
  proxy.stall({ direction: 'up', afterBytes: 8 * MiB });
  const warnings: FcpError[] = [];
  try {
    const opts = await directOptions(d, 1, (e) => warnings.push(e));
    const first = push({ ...opts, endpoint: { host: HOST, port: proxy.port }, sources: [src], dest: 'got' });
    const failed = first.then(
      () => assert.unreachable('the push survived its daemon'),
      (err: unknown) => err,
    );
    await proxy.waitForBytes('up', 8 * MiB);
    d.child.stdin!.end();
    await gone(d, 0);
    proxy.resume();
    await failed;
  } finally {
    await proxy.close();
  }
  const again = await serveOnce(root);
  let resumed = 0;
  const listener = (e: TransferEvent) => {
    if (e.type === 'finished') resumed += e.resumedBytes;
  };
  const opts = await directOptions(again, 4, (e) => warnings.push(e));
  await push({ ...opts, listeners: [listener], sources: [src], dest: 'got' });
  assert.equal(await compareTrees(src, join(root, 'got', 'src')), []);
  assert.ok(resumed > 0, `resumed ${resumed} bytes`);
  await gone(again, 0);
});

test('carried: stdin closes during the session; every fcpd --stdio child ends by itself', async () => {
  const root = dirs.make();
  const src = join(dirs.make(), 'src');
  await buildTree(src, [{ kind: 'file', path: 'big.bin', size: 16 * MiB }]);
  const d = await serveOnce(root);
  const { opts, dialer } = await carriedOptions(d, 4, () => {});
  // Not closed by us: the children must end because the daemon did.
  const closes: Promise<unknown>[] = [];
  const watching: Dialer = {
    peerName: dialer.peerName,
    open: async (resume, signal) => {
      const dialed = await dialer.open(resume, signal);
      closes.push(once(dialed.channel.stream, 'close'));
      return dialed;
    },
    unanswered: (err) => dialer.unanswered(err),
  };
  const pushed = push({
    ...opts,
    dialer: watching,
    sources: [src],
    dest: 'got',
    onEngine: () => d.child.stdin!.end(),
  });
  await pushed.then(
    () => {},
    () => {},
  );
  // A channel ends only once its child has exited (transport/command-dial.ts). Wait for that before gone()
  // looks for processes: the relays exit just after the daemon, when their socket closes.
  await Promise.all(closes);
  assert.ok(closes.length >= 1);
  await gone(d, 0);
  assert.equal(processesMentioning(d.info.relay), []);
  dialer.close();
});

/**
 * A relay like fcpd --stdio that holds each chunk from its stdin 200 ms before passing it on: when the
 * client is done, what it wrote last is still in the pipe.
 */
const SLOW_RELAY = `
const net = require('node:net');
const socket = net.connect({ path: process.argv[1] }, () => {
  socket.pipe(process.stdout);
  process.stdin.on('data', (chunk) => {
    process.stdin.pause();
    setTimeout(() => { socket.write(chunk); process.stdin.resume(); }, 200);
  });
  process.stdin.on('end', () => setTimeout(() => socket.end(), 200));
});
socket.on('close', () => process.exit(0));
`;

test('what the client wrote last reaches the daemon, though it closes its dialer at once', async () => {
  const root = dirs.make();
  const src = join(root, 'src');
  await buildTree(src, [{ kind: 'file', path: 'f.bin', size: 3 * MiB }]);
  const d = await serveOnce(root);
  const dialer = commandDialer({
    peerName: 'a slow relay',
    argv: () => [process.execPath, '-e', SLOW_RELAY, d.info.relay],
    env: d.env,
  });
  const opts = await directOptions(d, 4, () => {});
  const back = join(dirs.make(), 'back');
  try {
    // A pull: the client's DONE is the session's last frame.
    await pull({ ...opts, dialer, source: 'src/', dest: back });
  } finally {
    dialer.close();
  }
  assert.equal(await compareTrees(src, back), []);
  await gone(d, 0);
});

test('garbage on the relay socket and on a relay stdin: the real session is served, nothing else written', async () => {
  const root = dirs.make();
  const d = await serveOnce(root);
  const frames = await loadFrameBuilder();
  // Straight on the socket: an oversized HELLO, then noise.
  const raw = net.connect({ path: d.info.relay });
  raw.on('error', () => {});
  await once(raw, 'connect');
  raw.write(frames.frame(T.HELLO, randomBytes(64), { length: 0xffff }));
  raw.write(randomBytes(256 * 1024));
  raw.resume();
  await once(raw, 'close');
  // Through an fcpd --stdio relay: noise on its stdin, which it passes on; the daemon drops the connection.
  const relay = spawn(process.execPath, [FCPD_BIN, '--stdio', d.info.relay], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: d.env,
  });
  track(relay);
  relay.stdout.resume();
  relay.stdin.on('error', () => {});
  relay.stdin.write(randomBytes(128 * 1024));
  const [code] = (await once(relay, 'close')) as [number | null];
  assert.is(code, 0);
  assert.equal(await readdir(root), []);
  const src = join(dirs.make(), 'src');
  await buildTree(src, [{ kind: 'file', path: 'f.bin', size: 3 * MiB }]);
  const opts = await directOptions(d, 4, () => {});
  await push({ ...opts, sources: [src], dest: 'got' });
  assert.equal(await compareTrees(src, join(root, 'got', 'src')), []);
  assert.equal(await readdir(root), ['got']);
  await gone(d, 0);
});

test('fcpd --stdio to a socket nobody serves: exit 4, one line naming the socket', async () => {
  const socket = join(dirs.make(), 'none.sock');
  const r = await runFcpd(['--stdio', socket]);
  assert.is(r.code, 4, r.stderr);
  assert.is(r.stdout, '');
  assert.match(
    r.stderr,
    new RegExp(`^fcpd: cannot reach the serve-once daemon at ${socket}: ENOENT[^\\n]*\\n$`),
  );
});

test('a relay directory others may enter: --serve-once refuses to start, naming it, exit 7', async () => {
  const home = dirs.make();
  const run = join(home, '.cache', 'fcp', 'run');
  mkdirSync(run, { recursive: true, mode: 0o755 });
  chmodSync(run, 0o755);
  const r = await runFcpd(['--serve-once', '--bind', HOST], { env: { HOME: home, XDG_RUNTIME_DIR: '' } });
  assert.is(r.code, 7, r.stderr);
  assert.is(r.stdout, '');
  assert.match(
    r.stderr,
    new RegExp(`^fcpd: ${run} has mode 0755, not 0700: it would hold the socket of fcp over ssh\n$`),
  );
  assert.equal(await readdir(run), []);
});

test('--serve-once refuses the standing daemon options, in one line, exit 1', async () => {
  for (const args of [['-d'], ['--user', 'nobody'], ['--no-encryption'], ['--pid-file', '/tmp/x.pid']]) {
    const r = await runFcpd(['--serve-once', ...args]);
    assert.is(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.is(r.stdout, '');
    assert.match(r.stderr, /^fcpd: --serve-once cannot be combined with --[a-z-]+\n$/);
  }
});

test.run();
