// fcp --fsync (README "The machine loses power", spec/PROTOCOL.md §6.3), watched through the real system
// calls: the receiver (fcpd on push, fcp on pull) runs under strace, and every file's fsync must finish
// before its rename, every directory that got an entry must be fsynced after its last rename; without
// --fsync nothing under the destination is synced at all. An older daemon is refused before the request,
// and a failing fsync (injected by strace into the real call) fails its file, never renamed.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import * as assert from 'uvu/assert';
import { Capability, MsgType } from '../../src/protocol/index.js';
import { describeRun, type RunResult, runFcp } from '../helpers/cli.js';
import { type ChildDaemon, spawnDaemon, within } from '../helpers/daemon.js';
import { helloMsg, LOOPBACK, RawListener } from '../helpers/raw-peer.js';
import { MiB, writeRandomFile } from '../helpers/reliability.js';
import { readTrace, renamesOf, requireStrace, straced, syncsOf, type TracedCall } from '../helpers/strace.js';
import { test } from '../helpers/test.js';
import { compareTrees, removeTree } from '../helpers/tree.js';

requireStrace();
const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-fsync-'));
chmodSync(tmp, 0o755);
const src = join(tmp, 'src');
const served = join(tmp, 'served');
let runs = 0;
const TRACED_EXIT_MS = 30_000;

/** Files of one piece and of several (the two commit paths), a link, an empty and a nested directory. */
test.before(async () => {
  mkdirSync(join(src, 'sub', 'deep'), { recursive: true });
  mkdirSync(join(src, 'empty'));
  mkdirSync(served);
  writeFileSync(join(src, 'a.txt'), 'one piece\n');
  writeFileSync(join(src, 'sub', 'b.txt'), 'another\n');
  writeFileSync(join(src, 'sub', 'zero'), '');
  await writeRandomFile(join(src, 'sub', 'deep', 'big.bin'), 3 * MiB + 17);
  symlinkSync('a.txt', join(src, 'link'));
});

test.after(async () => {
  await removeTree(tmp);
});

/** The regular files of the tree, relative: those whose temporary must be synced before its rename. */
const FILES = ['a.txt', 'sub/b.txt', 'sub/zero', 'sub/deep/big.bin'];
/** Every directory the copy of `src` makes under `dest` (made, so an entry of its parent). */
const DIRS = ['.', 'sub', 'sub/deep', 'empty'];

function fresh(): string {
  return `run-${++runs}`;
}

/** fcpd under strace, writing `log`; `args` are more fcpd options. */
function tracedDaemon(log: string, args: string[] = []): Promise<ChildDaemon> {
  return spawnDaemon({ root: served, args, wrap: straced(log) });
}

/**
 * Stops the traced daemon and waits for strace to exit by itself once fcpd has, so that its log is complete
 * (strace signalled would only detach, or lose what it had not written yet). SIGTERM goes to fcpd itself,
 * strace's child.
 */
async function stopTraced(d: ChildDaemon): Promise<void> {
  const pid = d.child.pid!;
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
  for (const child of children) if (child !== '') process.kill(Number(child), 'SIGTERM');
  const how = await within(d.exited, TRACED_EXIT_MS);
  await d.stop();
  assert.ok(how, `strace did not exit within ${TRACED_EXIT_MS} ms of fcpd's SIGTERM`);
}

/** Asserts what --fsync promises of the copy of `src` at `dest`, from the receiver's `calls`. */
function assertDurable(calls: readonly TracedCall[], dest: string): void {
  const renames = renamesOf(calls).filter((r) => r.to.startsWith(`${dest}/`));
  for (const rel of FILES) {
    const final = join(dest, rel);
    const rename = renames.find((r) => r.to === final);
    assert.ok(rename, `${rel} renamed into place`);
    const synced = syncsOf(calls, rename.from).filter((s) => s.at < rename.at);
    assert.ok(synced.length > 0, `${rel}: its temporary ${basename(rename.from)} synced before the rename`);
  }
  for (const dir of new Set([...renames.map((r) => dirname(r.to)), ...DIRS.map((d) => join(dest, d))])) {
    const last = Math.max(-1, ...renames.filter((r) => dirname(r.to) === dir).map((r) => r.at));
    assert.ok(
      syncsOf(calls, dir).some((s) => s.at > last),
      `${dir} synced after its last rename (line ${last})`,
    );
  }
  // The destination itself was made by this run: its entry is in its parent.
  assert.ok(syncsOf(calls, dirname(dest)).length > 0, `${dirname(dest)} synced`);
}

/** Asserts that nothing under `dest` was synced, though the files were renamed there. */
function assertNothingSynced(calls: readonly TracedCall[], dest: string): void {
  assert.ok(
    renamesOf(calls).some((r) => r.to.startsWith(`${dest}/`)),
    'files renamed into place',
  );
  const synced = calls.filter((c) => c.kind === 'sync' && (c.path === dest || c.path.startsWith(`${dest}/`)));
  assert.equal(synced, [], 'no fsync without --fsync');
}

async function assertCopied(dest: string): Promise<void> {
  assert.equal(await compareTrees(src, dest), []);
}

test('push --fsync: the daemon syncs each file before its rename and each directory after its last', async () => {
  const log = join(tmp, 'push.trace');
  const d = await tracedDaemon(log);
  const name = fresh();
  try {
    const r = await runFcp(['push', '--fsync', `${src}/`, d.remote(name)]);
    assert.is(r.code, 0, describeRun(r));
  } finally {
    await stopTraced(d);
  }
  await assertCopied(join(served, name));
  assertDurable(readTrace(log), join(served, name));
});

test('push without --fsync: the daemon syncs nothing it writes', async () => {
  const log = join(tmp, 'push-plain.trace');
  const d = await tracedDaemon(log);
  const name = fresh();
  try {
    const r = await runFcp(['push', `${src}/`, d.remote(name)]);
    assert.is(r.code, 0, describeRun(r));
  } finally {
    await stopTraced(d);
  }
  await assertCopied(join(served, name));
  assertNothingSynced(readTrace(log), join(served, name));
});

test('fsync = true in fcpd.conf syncs a push that did not ask', async () => {
  const log = join(tmp, 'push-daemon.trace');
  const conf = join(tmp, 'fcpd.conf');
  writeFileSync(conf, 'fsync = true\n');
  const d = await tracedDaemon(log, ['--config', conf]);
  const name = fresh();
  try {
    const r = await runFcp(['push', `${src}/`, d.remote(name)]);
    assert.is(r.code, 0, describeRun(r));
    assert.match(d.stderr(), /--fsync: every push is synced/);
  } finally {
    await stopTraced(d);
  }
  assertDurable(readTrace(log), join(served, name));
});

test('pull --fsync: the client syncs each file before its rename and each directory after its last', async () => {
  const d = await spawnDaemon({ root: tmp });
  const dest = join(tmp, fresh());
  const log = join(tmp, 'pull.trace');
  try {
    const r = await runFcp(['pull', '--fsync', d.remote('src/'), dest], { wrap: straced(log) });
    assert.is(r.code, 0, describeRun(r));
  } finally {
    await d.stop();
  }
  await assertCopied(dest);
  assertDurable(readTrace(log), dest);

  const plain = join(tmp, fresh());
  const plainLog = join(tmp, 'pull-plain.trace');
  const again = await spawnDaemon({ root: tmp });
  try {
    const r = await runFcp(['pull', again.remote('src/'), plain], { wrap: straced(plainLog) });
    assert.is(r.code, 0, describeRun(r));
  } finally {
    await again.stop();
  }
  assertNothingSynced(readTrace(plainLog), plain);
});

test('a failing fsync (EIO) fails its file, exit 3, and the file is never renamed into place', async () => {
  const d = await spawnDaemon({ root: tmp });
  try {
    // One piece (written synchronously, synced on the pool) and several (the asynchronous path).
    for (const rel of ['a.txt', 'sub/deep/big.bin']) {
      const dest = join(tmp, fresh());
      mkdirSync(dest);
      const log = join(tmp, `pull-eio-${runs}.trace`);
      const r = await runFcp(['pull', '--fsync', d.remote(`src/${rel}`), `${dest}/`], {
        wrap: straced(log, 'fsync:error=EIO'),
      });
      assert.is(r.code, 3, describeRun(r));
      assert.ok(r.stderr.includes(basename(rel)), r.stderr);
      assert.not.ok(existsSync(join(dest, basename(rel))), `${rel}: no file under its final name`);
      const calls = readTrace(log);
      assert.ok(
        calls.some((c) => c.kind === 'sync' && !c.ok),
        `${rel}: the fsync was made and failed`,
      );
      assert.equal(
        renamesOf(calls).filter((c) => c.to.startsWith(`${dest}/`)),
        [],
        `${rel}: nothing renamed into the destination`,
      );
    }
  } finally {
    await d.stop();
  }
});

/** The user's view of a failing disk: exit 2 (PATH, as a full disk), one line naming the directory. */
function assertDiskFailure(r: RunResult): void {
  assert.is(r.code, 2, describeRun(r));
  const lines = r.stderr.trimEnd().split('\n');
  assert.is(lines.length, 1, describeRun(r));
  assert.match(lines[0]!, /^fcp: .*input\/output error/);
  assert.match(lines[0]!, /syncing the directory/);
}

test("EIO syncing the destination directory (pull --fsync): exit 2 and one line, not 70's 'internal'", async () => {
  const d = await spawnDaemon({ root: tmp });
  try {
    const dest = join(tmp, fresh());
    mkdirSync(dest);
    const log = join(tmp, `pull-dir-eio-${runs}.trace`);
    const r = await runFcp(['pull', '--fsync', d.remote('src/a.txt'), `${dest}/`], {
      wrap: straced(log, 'fsync:error=EIO', dest),
    });
    assertDiskFailure(r);
    assert.ok(
      readTrace(log).some((c) => c.kind === 'sync' && !c.ok && c.path === dest),
      'the directory was synced and failed',
    );
  } finally {
    await d.stop();
  }
});

test('EIO syncing the destination directory on the daemon (push --fsync): the client exits 2, one line', async () => {
  const dest = join(served, fresh());
  mkdirSync(dest);
  const log = join(tmp, `push-dir-eio-${runs}.trace`);
  const d = await spawnDaemon({ root: served, wrap: straced(log, 'fsync:error=EIO', dest) });
  try {
    const r = await runFcp(['push', '--fsync', join(src, 'a.txt'), d.remote(`${basename(dest)}/`)]);
    assertDiskFailure(r);
  } finally {
    await stopTraced(d);
  }
  assert.ok(
    readTrace(log).some((c) => c.kind === 'sync' && !c.ok && c.path === dest),
    'the directory was synced and failed',
  );
});

test('push --fsync to a daemon whose HELLO lacks FSYNC: exit 6 naming --fsync, no request sent', async () => {
  const listener = await RawListener.listen();
  try {
    const run = runFcp(['push', '--fsync', '--retries', '0', src, `${LOOPBACK}:${listener.port}:dst`]);
    const peer = await listener.accept();
    await peer.expect(MsgType.Hello);
    await peer.send(
      helloMsg({
        agent: 'fcpd-older',
        capabilities: Capability.TlsDataUnsummed | Capability.ListBeforeSession | Capability.DryRun,
      }),
    );
    const r = await run;
    await peer.waitClose();
    assert.is(r.code, 6, describeRun(r));
    assert.match(r.stderr, /--fsync/);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    const types = peer.received.map((m) => m.type);
    assert.not.ok(types.includes(MsgType.Push), `request sent: ${types.join(',')}`);
  } finally {
    await listener.close();
  }
});

test.run();
