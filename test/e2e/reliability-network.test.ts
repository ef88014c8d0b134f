// Issue 4, a link that fails (spec/PROTOCOL.md §7.2, §2): the real fcp client talks to a real fcpd through
// test/helpers/fault-proxy.ts, which cuts one socket, every socket or the control socket, or flips one byte
// inside a DATA frame. One lost data socket is survived inside the session (no retry is allowed); losing
// the session is survived by the client's retry loop, which resumes; a corrupted frame is caught by its
// checksum and its pieces are sent again. And whatever fails, the previous destination file stays intact.
import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import { link, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FcpServer } from '../../src/daemon/server.js';
import { MsgType } from '../../src/protocol/index.js';
import { describeRun, type RunResult } from '../helpers/cli.js';
import { freePort } from '../helpers/daemon.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import {
  bounded,
  type Fcpd,
  FrameSpy,
  HOST,
  leftoverTemporaries,
  MiB,
  partialOf,
  type RunningChild,
  recordedPieces,
  sessionEnds,
  sessionStarts,
  sha256File,
  startFcp,
  startFcpd,
  summaryBytes,
  waitUntil,
  writeRandomFile,
} from '../helpers/reliability.js';
import { removeTree } from '../helpers/tree.js';

const SIZE = 48 * MiB;
const RUN_TIMEOUT_MS = 60_000;

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-network-'));
chmodSync(tmp, 0o755);
const state = join(tmp, 'state');
const root = join(tmp, 'root');
mkdirSync(root);
const src = join(tmp, 'src.bin');
let srcHash = '';
let daemon: Fcpd | undefined;
const cleanups: Array<() => Promise<unknown>> = [];

function fcpd(): Fcpd {
  if (daemon === undefined) throw new Error('daemon not started');
  return daemon;
}

function expectExit(r: RunResult, code: number): void {
  assert.is(r.code, code, `expected exit ${code}: ${describeRun(r)}`);
}

async function withProxy(): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ target: { host: HOST, port: fcpd().port } });
  cleanups.push(() => bounded(proxy.close(), 10_000, 'fault proxy close'));
  return proxy;
}

function run(args: readonly string[]): RunningChild {
  const c = startFcp(args, RUN_TIMEOUT_MS);
  cleanups.push(() => c.kill());
  return c;
}

/** A fresh destination directory under the daemon's root; returns its name and the final path. */
function destFor(name: string): { remoteDir: string; abs: string } {
  mkdirSync(join(root, name));
  return { remoteDir: name, abs: join(root, name, 'f.bin') };
}

/** The daemon log written since `mark` (a length of it taken earlier). */
function logSince(mark: number): string {
  return fcpd().stderr().slice(mark);
}

test.before(async () => {
  await writeRandomFile(src, SIZE);
  srcHash = await sha256File(src);
  // --no-encryption: plaintext clients are accepted too, so the frame checksum (not TLS) is what a flipped
  // byte meets in the tests that say so.
  daemon = await startFcpd({ root, stateDir: state, args: ['--max-connections', '8', '--no-encryption'] });
});

test.after.each(async () => {
  for (const c of cleanups.splice(0).reverse()) {
    await c().catch((err: unknown) => console.error(`  cleanup: ${String(err)}`));
  }
});

test.after(async () => {
  try {
    await daemon?.stop();
  } finally {
    await removeTree(tmp);
  }
});

test('one data socket of a -n 4 session cut mid-transfer: the session completes without a restart', async () => {
  const { remoteDir, abs } = destFor('one-cut');
  const proxy = await withProxy();
  const CUT = 4 * MiB;
  // Connection 0 is the control connection; 1..3 are the ATTACHed data connections.
  proxy.cutAfter(CUT, { direction: 'up', connection: 2 });
  const mark = fcpd().stderr().length;
  const r = await run([
    'push',
    '-n',
    '4',
    '--retries',
    '0',
    '-v',
    src,
    `${HOST}:${proxy.port}:${remoteDir}/f.bin`,
  ]).done;
  expectExit(r, 0);
  assert.is(await sha256File(abs), srcHash);
  const cut = proxy.connections[2]!;
  assert.is(cut.bytesUp, CUT, 'the fault landed: connection 2 carried exactly the prefix');
  assert.not.ok(cut.open);
  // The client attached a replacement for the lost socket (§7.2).
  assert.ok(proxy.connections.length >= 5, `${proxy.connections.length} connections`);
  const log = logSince(mark);
  assert.is(sessionStarts(log), 1, log);
  const ends = sessionEnds(log);
  assert.is(ends.length, 1, log);
  assert.ok(ends[0]!.ok, log);
  assert.equal(await leftoverTemporaries(join(root, remoteDir)), []);
});

test('a replacement connection that cannot attach is told with -v; the session completes over the others', async () => {
  const { remoteDir, abs } = destFor('replacement-refused');
  const proxy = await withProxy();
  // Every connection holds after 1 MiB up, so the transfer cannot end before the cut below.
  proxy.stall({ direction: 'up', afterBytes: MiB });
  const mark = fcpd().stderr().length;
  const client = run([
    'push',
    '-n',
    '4',
    '--retries',
    '0',
    '-v',
    src,
    `${HOST}:${proxy.port}:${remoteDir}/f.bin`,
  ]);
  const conns = await proxy.waitForConnections(4, { timeoutMs: 30_000 });
  await proxy.waitFor(() => conns[2]!.waiting('up') === 'stall', 'connection 2 stalled', {
    timeoutMs: 30_000,
  });
  proxy.refuseNew(true);
  conns[2]!.destroy();
  await proxy.waitForRefused(1, { timeoutMs: 30_000 });
  proxy.clearFaults();
  const r = await client.done;
  expectExit(r, 0);
  assert.is(await sha256File(abs), srcHash);
  assert.match(r.stderr, /attaching a replacement/);
  assert.match(r.stderr, /could not attach the replacement connection/);
  const log = logSince(mark);
  assert.is(sessionStarts(log), 1, log);
  assert.ok(sessionEnds(log)[0]?.ok, log);
});

test('every socket cut mid-transfer: the retry loop runs the session again, resumes and completes', async () => {
  const { remoteDir, abs } = destFor('all-cut');
  const proxy = await withProxy();
  const mark = fcpd().stderr().length;
  const client = run([
    'push',
    '-n',
    '4',
    '--retries',
    '3',
    '--retry-wait',
    '0.2',
    src,
    `${HOST}:${proxy.port}:${remoteDir}/f.bin`,
  ]);
  // Cut once the daemon has written some pieces, so there is something to resume.
  await waitUntil(
    async () => (await recordedPieces(partialOf(abs).meta)).length >= 12,
    'pieces recorded before the cut',
    30_000,
  );
  proxy.cutAll();
  const r = await client.done;
  expectExit(r, 0);
  assert.is(await sha256File(abs), srcHash);
  assert.match(r.stderr, /retrying in/);
  const log = logSince(mark);
  const ends = sessionEnds(log);
  assert.ok(ends.length >= 2, log);
  assert.not.ok(ends[0]!.ok, log);
  assert.ok(ends.at(-1)!.ok, log);
  const summary = summaryBytes(r.stdout);
  assert.ok(summary !== undefined && summary.resumed >= 12 * MiB, `resumed: ${describeRun(r)}`);
  assert.equal(await leftoverTemporaries(join(root, remoteDir)), []);
});

test('the control socket cut mid-transfer: the session ends and the retry loop completes it', async () => {
  const { remoteDir, abs } = destFor('control-cut');
  const proxy = await withProxy();
  proxy.cutAfter(6 * MiB, { direction: 'up', connection: 0 });
  const mark = fcpd().stderr().length;
  const r = await run([
    'push',
    '-n',
    '4',
    '--retries',
    '3',
    '--retry-wait',
    '0.2',
    src,
    `${HOST}:${proxy.port}:${remoteDir}/f.bin`,
  ]).done;
  expectExit(r, 0);
  assert.is(await sha256File(abs), srcHash);
  assert.is(proxy.connections[0]!.bytesUp, 6 * MiB, 'the control connection was cut where asked');
  const ends = sessionEnds(logSince(mark));
  assert.ok(ends.length >= 2 && !ends[0]!.ok && ends.at(-1)!.ok, logSince(mark));
});

test('plaintext: a byte flipped inside a DATA frame of a data socket is caught by the frame checksum', async () => {
  const { remoteDir, abs } = destFor('flip-data');
  const AT = 2 * MiB + 12_345;
  const spy = new FrameSpy();
  spy.watchOffset(1, 'up', AT);
  const proxy = await startFaultProxy({ target: { host: HOST, port: fcpd().port }, onForward: spy.tap });
  cleanups.push(() => bounded(proxy.close(), 10_000, 'fault proxy close'));
  proxy.flipByte(AT, { direction: 'up', connection: 1 });
  const mark = fcpd().stderr().length;
  const r = await run([
    'push',
    '--no-encryption',
    '-n',
    '4',
    '--retries',
    '0',
    src,
    `${HOST}:${proxy.port}:${remoteDir}/f.bin`,
  ]).done;
  expectExit(r, 0);
  assert.is(await sha256File(abs), srcHash);
  const where = spy.frameAt(1, 'up');
  assert.is(where.type, MsgType.Data, 'the flipped byte was inside a DATA frame');
  assert.ok(where.inPayload, 'the flipped byte was in the payload the checksum covers');
  // The daemon dropped that socket instead of accepting the frame; a replacement was attached. The proxy
  // handles that close in this process, possibly after the client has exited: wait for it.
  const flipped = proxy.connections[1]!;
  await bounded(flipped.closed, 10_000, 'the damaged socket closing');
  assert.ok(flipped.bytesUp < SIZE, 'the damaged socket did not carry the whole file');
  assert.ok(proxy.connections.length >= 5, `${proxy.connections.length} connections`);
  const log = logSince(mark);
  assert.is(sessionStarts(log), 1, log);
  assert.ok(sessionEnds(log)[0]?.ok, log);
});

test('plaintext: a byte flipped inside a DATA frame of the control socket fails the session; the retry repairs it', async () => {
  const { remoteDir, abs } = destFor('flip-control');
  const AT = 3 * MiB + 777;
  const spy = new FrameSpy();
  spy.watchOffset(0, 'up', AT);
  const proxy = await startFaultProxy({ target: { host: HOST, port: fcpd().port }, onForward: spy.tap });
  cleanups.push(() => bounded(proxy.close(), 10_000, 'fault proxy close'));
  proxy.flipByte(AT, { direction: 'up', connection: 0 });
  const mark = fcpd().stderr().length;
  const r = await run([
    'push',
    '--no-encryption',
    '-n',
    '4',
    '--retries',
    '2',
    '--retry-wait',
    '0.2',
    src,
    `${HOST}:${proxy.port}:${remoteDir}/f.bin`,
  ]).done;
  expectExit(r, 0);
  assert.is(await sha256File(abs), srcHash);
  assert.equal(spy.frameAt(0, 'up'), { type: MsgType.Data, inPayload: true });
  const ends = sessionEnds(logSince(mark));
  assert.ok(ends.length >= 2 && !ends[0]!.ok && ends.at(-1)!.ok, logSince(mark));
  assert.match(ends[0]!.line, /CHECKSUM/i);
});

for (const connection of [1, 0]) {
  const which = connection === 0 ? 'the control socket' : 'a data socket';
  test(`TLS: a byte flipped on ${which} is caught (record MAC) and the transfer still completes`, async () => {
    const { remoteDir, abs } = destFor(`flip-tls-${connection}`);
    const proxy = await withProxy();
    proxy.flipByte(3 * MiB + 777, { direction: 'up', connection });
    const mark = fcpd().stderr().length;
    const r = await run([
      'push',
      '-n',
      '4',
      '--retries',
      '2',
      '--retry-wait',
      '0.2',
      src,
      `${HOST}:${proxy.port}:${remoteDir}/f.bin`,
    ]).done;
    expectExit(r, 0);
    assert.ok(summaryBytes(r.stdout) !== undefined, `exit 0 must come with a summary: ${describeRun(r)}`);
    assert.is(await sha256File(abs), srcHash, describeRun(r));
    assert.ok(sessionEnds(logSince(mark)).at(-1)?.ok, logSince(mark));
  });
}

test('a stalled data socket is dropped by the idle check and its pieces go over the others', async () => {
  // spec/PROTOCOL.md §7.3 with a shorter idle timeout (an in-process daemon; fcpd's is 60 s). It must stay
  // above the 5 s PING interval: the sockets with nothing left to carry stay alive by PING alone.
  const iroot = join(tmp, 'root-stall');
  mkdirSync(iroot);
  const logs: string[] = [];
  const server = new FcpServer({
    port: 0,
    bind: HOST,
    root: iroot,
    maxSessions: 4,
    maxConnections: 8,
    log: (line) => logs.push(line),
    verbose: true,
    idleTimeoutMs: 8000,
    stateDir: join(tmp, 'stall-state'),
  });
  const port = await server.listen();
  cleanups.push(() => bounded(server.close(0), 10_000, 'in-process fcpd close'));
  const proxy = await startFaultProxy({ target: { host: HOST, port } });
  cleanups.push(() => bounded(proxy.close(), 10_000, 'fault proxy close'));
  const twin = join(tmp, 'twin.bin');
  await link(src, twin);
  proxy.stall({ connection: 2, direction: 'both', afterBytes: 256 * 1024 });
  const r = await run(['push', '-v', '-n', '4', '--retries', '0', src, twin, `${HOST}:${proxy.port}:stall/`])
    .done;
  expectExit(r, 0);
  assert.is(await sha256File(join(iroot, 'stall', 'src.bin')), srcHash);
  assert.is(await sha256File(join(iroot, 'stall', 'twin.bin')), srcHash);
  assert.ok(proxy.connections[2]!.bytesUp <= 256 * 1024, 'the stall held');
  // The daemon's idle check dropped the silent socket; the client heard of it and attached a replacement.
  assert.match(r.stderr, /a connection failed/, describeRun(r));
  assert.ok(proxy.connections.length >= 5, `${proxy.connections.length} connections`);
  const text = logs.join('\n');
  assert.is(sessionStarts(text), 1, text);
  assert.ok(sessionEnds(text)[0]?.ok, text);
});

test('the previous destination version survives a failed transfer until a later run replaces it', async () => {
  const { remoteDir, abs } = destFor('keep-old');
  const old = Buffer.from('the previous version, which must survive\n'.repeat(1000));
  await writeFile(abs, old);
  // A link that dies every time, and no retries: the transfer fails.
  const proxy = await withProxy();
  proxy.cutAfter(6 * MiB, { direction: 'up', connection: 0 });
  const failed = await run([
    'push',
    '-n',
    '4',
    '--retries',
    '0',
    src,
    `${HOST}:${proxy.port}:${remoteDir}/f.bin`,
  ]).done;
  assert.ok(failed.code !== 0, `the cut transfer must fail: ${describeRun(failed)}`);
  assert.equal(await readFile(abs), old, 'old content intact under the final name');

  // The daemon killed mid-transfer: the old version is still there after it is gone.
  const droot = join(tmp, 'root-keep-daemon');
  mkdirSync(droot);
  const dabs = join(droot, 'f.bin');
  await writeFile(dabs, old);
  const port = await freePort();
  const d = await startFcpd({ root: droot, stateDir: state, port });
  cleanups.push(() => d.stop('SIGKILL'));
  const client = run(['push', '-n', '4', '--retries', '0', src, d.remote('f.bin')]);
  await waitUntil(
    async () => (await recordedPieces(partialOf(dabs).meta)).length >= 4,
    'pieces written',
    30_000,
  );
  await d.kill();
  const lost = await bounded(client.done, 30_000, 'the client to give up');
  assert.ok(lost.code !== 0, describeRun(lost));
  assert.equal(await readFile(dabs), old, 'old content intact after the daemon died');

  // A later successful run replaces both, and leaves no temporary behind.
  const fine = await run(['push', '-n', '4', src, fcpd().remote(`${remoteDir}/f.bin`)]).done;
  expectExit(fine, 0);
  assert.is(await sha256File(abs), srcHash);
  assert.equal(await leftoverTemporaries(join(root, remoteDir)), []);
  const again = await startFcpd({ root: droot, stateDir: state, port });
  cleanups.push(() => again.stop());
  const fine2 = await run(['push', '-n', '4', src, again.remote('f.bin')]).done;
  expectExit(fine2, 0);
  assert.is(await sha256File(dabs), srcHash);
  assert.equal(await leftoverTemporaries(droot), []);
});

test.run();
