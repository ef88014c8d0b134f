// Issue 18, fcp --dry-run (spec/PROTOCOL.md §5.6): a push and a pull rehearsed against a real fcpd with new,
// changed, identical and partially transferred files, a new directory and a link. Both trees stay
// byte-identical (no extra entry, no temporary or partial file, no mtime touched), the plan matches what the
// real run then does, and a daemon that does not offer dry runs is refused before anything is sent.
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { Capability, MsgType } from '../../src/protocol/index.js';
import { describeRun } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { eventsNamed, type JsonEvent, runFcpJson } from '../helpers/json-events.js';
import { helloMsg, LOOPBACK, RawListener, type RawPeer } from '../helpers/raw-peer.js';
import {
  type Fcpd,
  HOST,
  leftoverTemporaries,
  MiB,
  partialOf,
  piecesBytes,
  sessionEnds,
  settledRecordedPieces,
  startFcp,
  startFcpd,
  waitUntil,
  writeRandomFile,
} from '../helpers/reliability.js';
import { test } from '../helpers/test.js';
import { removeTree, snapshotTree } from '../helpers/tree.js';

const RUN_TIMEOUT_MS = 60_000;
const BIG = 24 * MiB + 5;
const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-dry-run-'));
chmodSync(tmp, 0o755);
const src = join(tmp, 'src');
const root = join(tmp, 'root');
let d: Fcpd;

/** Copies `rel` from `from` to `to` with its mtime: the receiver's quick check finds it identical. */
function placeIdentical(from: string, to: string, rel: string): void {
  copyFileSync(join(from, rel), join(to, rel));
  const st = statSync(join(from, rel));
  utimesSync(join(to, rel), st.atime, st.mtime);
}

/** The source side: one of each case. */
async function makeSource(dir: string): Promise<void> {
  mkdirSync(join(dir, 'newdir'), { recursive: true });
  writeFileSync(join(dir, 'new.txt'), 'new\n');
  writeFileSync(join(dir, 'changed.txt'), 'the new version\n');
  writeFileSync(join(dir, 'same.txt'), 'identical on both sides\n');
  // Whole seconds, so the copy's mtime matches to the microsecond.
  utimesSync(join(dir, 'same.txt'), 1_700_000_000, 1_700_000_000);
  writeFileSync(join(dir, 'newdir', 'inner.txt'), 'inside a new directory\n');
  symlinkSync('same.txt', join(dir, 'link'));
  await writeRandomFile(join(dir, 'big.bin'), BIG);
}

/** The destination side: an old version, an identical copy; big.bin's partial comes from a run of it alone, cut. */
function makeDestination(from: string, dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'changed.txt'), 'old\n');
  placeIdentical(from, dir, 'same.txt');
}

/** Both trees, every entry with its type, size, mode, mtime and content hash. */
async function snapshots(...dirs: string[]): Promise<unknown[]> {
  return Promise.all(dirs.map(async (dir) => [...(await snapshotTree(dir)).entries()].sort()));
}

/** What the run did (or planned) with each entry: the part a dry run must predict. */
function plan(events: readonly JsonEvent[]): string[] {
  return eventsNamed(events, 'file')
    .map(
      (e) => `${String(e['path'])} ${String(e['status'])} ${String(e['kind'])} ${String(e['resumed_bytes'])}`,
    )
    .sort();
}

/** Rehearses `args`, checks nothing changed, then runs it for real and checks it did what was planned. */
async function rehearseThenRun(args: readonly string[], dirs: string[], held: number): Promise<void> {
  const before = await snapshots(...dirs);
  const dry = await runFcpJson(['--dry-run', ...args]);
  assert.is(dry.code, 0);
  assert.equal(await snapshots(...dirs), before, 'a dry run changes nothing on either side');
  const text = await startFcp(['--dry-run', '-v', ...args], RUN_TIMEOUT_MS).done;
  assert.is(text.code, 0, describeRun(text));
  assert.equal(await snapshots(...dirs), before, 'nor does a second one');
  assert.match(text.stdout, /^would send new\.txt \(4 B\)$/m, describeRun(text));
  assert.match(text.stdout, /^would send changed\.txt /m);
  assert.match(text.stdout, /^would skip same\.txt \(identical\)$/m);
  assert.match(text.stdout, /^would resume big\.bin \(/m);
  assert.match(text.stdout, /^would send newdir\/inner\.txt /m);
  assert.match(text.stdout, /^fcp: dry run, nothing written: 5 files would be sent /m);

  const planned = plan(dry.events);
  assert.ok(
    planned.includes(`big.bin sent file ${held}`),
    `the partial is planned as resumed: ${planned.join('\n')}`,
  );
  assert.is(dry.events.at(-1)?.['dry_run'], true);
  const real = await runFcpJson(args);
  assert.is(real.code, 0);
  assert.equal(plan(real.events), planned, 'the real run does what the dry run said');
  assert.equal(await leftoverTemporaries(dirs[1]!), []);
}

test.before(async () => {
  mkdirSync(root);
  await makeSource(src);
  d = await startFcpd({ root, stateDir: join(tmp, 'state') });
});

test.after(async () => {
  await d.stop();
  await removeTree(tmp);
});

test('push --dry-run: both trees unchanged, the plan is what the real push then does', async () => {
  const dest = join(root, 'push');
  makeDestination(src, dest);
  const { meta } = partialOf(join(dest, 'big.bin'));
  const proxy = await startFaultProxy({ target: { host: HOST, port: d.port } });
  try {
    proxy.cutAfter(9 * MiB, { direction: 'up' });
    const ends = sessionEnds(d.stderr()).length;
    const cut = await startFcp(
      ['push', '-n', '1', '--retries', '0', join(src, 'big.bin'), `${HOST}:${proxy.port}:push/`],
      RUN_TIMEOUT_MS,
    ).done;
    assert.is.not(cut.code, 0, describeRun(cut));
    await waitUntil(() => sessionEnds(d.stderr()).length > ends, 'the daemon to end the cut session', 10_000);
  } finally {
    await proxy.close();
  }
  const held = piecesBytes(await settledRecordedPieces(meta), BIG);
  assert.ok(held > 0, 'the cut run left verified pieces');
  await rehearseThenRun(['push', `${src}/`, d.remote('push')], [src, dest], held);
  assert.match(d.stderr(), /, push \(dry run\): session done/, 'the daemon logs a dry run as one');
});

test('pull --dry-run: both trees unchanged, the plan is what the real pull then does', async () => {
  const served = join(root, 'serve');
  await makeSource(served);
  const local = join(tmp, 'pulled');
  makeDestination(served, local);
  const { meta } = partialOf(join(local, 'big.bin'));
  const proxy = await startFaultProxy({ target: { host: HOST, port: d.port } });
  try {
    proxy.cutAfter(9 * MiB, { direction: 'down' });
    const cut = await startFcp(
      ['pull', '-n', '1', '--retries', '0', `${HOST}:${proxy.port}:serve/big.bin`, `${local}/`],
      RUN_TIMEOUT_MS,
    ).done;
    assert.is.not(cut.code, 0, describeRun(cut));
  } finally {
    await proxy.close();
  }
  const held = piecesBytes(await settledRecordedPieces(meta), BIG);
  assert.ok(held > 0, 'the cut run left verified pieces');
  await rehearseThenRun(['pull', d.remote('serve/'), local], [served, local], held);
});

test('a dry run into a destination that does not exist creates nothing, not even the directory', async () => {
  const r = await runFcpJson(['--dry-run', 'push', `${src}/`, d.remote('fresh/')]);
  assert.is(r.code, 0);
  assert.is(r.events.at(-1)?.['files_sent'], 6);
  assert.not.ok((await snapshotTree(root)).has('fresh'), 'no directory made');
  const local = join(tmp, 'fresh-pull');
  const p = await runFcpJson(['--dry-run', 'pull', d.remote('serve/'), local]);
  assert.is(p.code, 0);
  assert.not.ok((await snapshotTree(tmp)).has('fresh-pull'));
});

/** Runs `fcp --dry-run ARGS` against a fake daemon whose HELLO lacks DRY_RUN, as an older fcpd's does. */
async function againstOldDaemon(
  args: (port: number) => string[],
): Promise<{ stderr: string; code: number | null; peer: RawPeer }> {
  const listener = await RawListener.listen();
  try {
    const run = startFcp(['--dry-run', '--retries', '0', ...args(listener.port)], RUN_TIMEOUT_MS);
    const peer = await listener.accept();
    await peer.expect(MsgType.Hello);
    await peer.send(
      helloMsg({
        agent: 'fcpd-older',
        capabilities: Capability.TlsDataUnsummed | Capability.ListBeforeSession,
      }),
    );
    const r = await run.done;
    await peer.waitClose();
    return { stderr: r.stderr, code: r.code, peer };
  } finally {
    await listener.close();
  }
}

test('an older daemon (no DRY_RUN in HELLO) is refused before the request: exit 6, nothing sent', async () => {
  for (const args of [
    (port: number) => ['push', src, `${LOOPBACK}:${port}:dst`],
    (port: number) => ['pull', `${LOOPBACK}:${port}:x`, join(tmp, 'never')],
  ]) {
    const { stderr, code, peer } = await againstOldDaemon(args);
    assert.is(code, 6, stderr);
    assert.match(stderr, /cannot do a dry run/);
    const types = peer.received.map((m) => m.type);
    assert.not.ok(
      types.includes(MsgType.Push) || types.includes(MsgType.Pull),
      `request sent: ${types.join(',')}`,
    );
  }
});

test.run();
