// Issue 15, item 9: one test per row of README "Exit codes", each run through the real fcp binary against a
// real fcpd (or a listener standing in for one), asserting the code and the one line a user reads. Also the
// messages of item 10 that these failures print: paths named, causes in words, no bare errno, no internal
// `.fcp-part` names, the daemon named when it goes away.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { EXIT, exitCodeFor } from '../../src/cli/exit-codes.js';
import { describeRun, isRoot, type RunResult, runFcp, unprivileged } from '../helpers/cli.js';
import {
  freePort,
  HOST,
  type InProcessDaemon,
  spawnDaemon,
  startInProcessDaemon,
} from '../helpers/daemon.js';
import {
  MiB,
  partialOf,
  type RunningChild,
  startFcp,
  startFcpd,
  waitUntil,
  writeRandomFile,
} from '../helpers/reliability.js';
import { removeTree } from '../helpers/tree.js';
import { execFileSync } from '../helpers/sync.js';

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-exit-codes-'));
chmodSync(tmp, 0o755);
const served = join(tmp, 'served');
mkdirSync(served);
const src = join(tmp, 'src');
mkdirSync(src);
const small = join(src, 'small.txt');
writeFileSync(small, 'hello\n');
let daemon: InProcessDaemon;
const children: RunningChild[] = [];
const mounts: string[] = [];

/** No error line may show what only fcp's insides know. */
const NOT_FOR_USERS = /\bE[A-Z]{3,}\b|fcp-part|fcp-meta|into a frame|\n\s+at .+:\d+:\d+/;

/** The code, then exactly one stderr line matching `pattern` and nothing a user should not see. */
function expectFailure(r: RunResult, code: number, pattern: RegExp): string {
  assert.is(r.code, code, describeRun(r));
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, `one line: ${describeRun(r)}`);
  assert.match(lines[0]!, /^fcp: /, describeRun(r));
  assert.match(lines[0]!, pattern, describeRun(r));
  assert.not.match(r.stderr, NOT_FOR_USERS, describeRun(r));
  return lines[0]!;
}

/** A tmpfs of `size` at a new directory under tmp (we are root). */
function smallDisk(name: string, size: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

/** A TCP listener that accepts every connection and never sends a byte. */
async function silentListener(): Promise<{ port: number; accepted(): number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const addr = server.address() as net.AddressInfo;
  return {
    port: addr.port,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

test.before(async () => {
  daemon = await startInProcessDaemon({ root: served });
});

test.after.each(async () => {
  for (const c of children.splice(0)) await c.kill().catch(() => {});
});

test.after(async () => {
  await daemon.stop();
  for (const dir of mounts) execFileSync('umount', ['-l', dir]);
  await removeTree(tmp);
});

test('0 OK: every file copied', async () => {
  const r = await runFcp(['push', small, daemon.remote('ok.txt')]);
  assert.is(r.code, EXIT.OK, describeRun(r));
  assert.is(r.stderr, '');
});

test('1 USAGE: bad arguments', async () => {
  expectFailure(await runFcp(['push', small]), EXIT.USAGE, /destination/);
  expectFailure(await runFcp(['-n', '0', 'push', small, daemon.remote('x')]), EXIT.USAGE, /--connections/);
});

test('2 PATH: a missing source', async () => {
  expectFailure(
    await runFcp(['push', join(tmp, 'nothing-here'), daemon.remote('x')]),
    EXIT.PATH,
    /nothing-here/,
  );
});

test('2 PATH: disk full, one file too large for the free space: names it and the space it needs', async () => {
  if (!isRoot()) return; // mounting a tmpfs needs root
  const disk = smallDisk('disk-single', '4m');
  const d = await startInProcessDaemon({ root: disk });
  try {
    const big = join(tmp, 'big.bin');
    await writeRandomFile(big, 20 * MiB);
    const r = await runFcp(['push', big, d.remote('big.bin')]);
    const line = expectFailure(r, EXIT.PATH, /big\.bin/);
    assert.match(line, /not enough space.*20\.0 MiB.*free/, describeRun(r));
    assert.equal(await readdir(disk), []);
  } finally {
    await d.stop();
  }
});

test('2 PATH: disk full in the middle of a tree: names the file and the space it needs', async () => {
  if (!isRoot()) return; // mounting a tmpfs needs root
  const disk = smallDisk('disk-tree', '4m');
  const d = await startInProcessDaemon({ root: disk });
  try {
    const tree = join(tmp, 'tree');
    mkdirSync(tree);
    for (let i = 1; i <= 5; i++) await writeRandomFile(join(tree, `f${i}`), 1.5 * MiB);
    const r = await runFcp(['push', '-n', '1', tree, d.remote('')]);
    expectFailure(r, EXIT.PATH, /no space left on device writing tree\/f\d: it needs 1\.50 MiB/);
  } finally {
    await d.stop();
  }
});

test('2 PATH: a destination directory the daemon may not write: said once, naming the directory', async () => {
  const user = unprivileged();
  const root = join(tmp, 'read-only');
  mkdirSync(join(root, 'sub'), { recursive: true });
  chmodSync(join(root, 'sub'), 0o555);
  chmodSync(root, 0o555);
  const five = join(tmp, 'five');
  mkdirSync(five);
  for (let i = 1; i <= 5; i++) writeFileSync(join(five, `f${i}`), `${i}\n`);
  const d = await spawnDaemon({ root, ...user });
  try {
    // The client runs as the daemon's account: its token is the only one a client uses (SECURITY.md §5.4).
    for (const [args, dir] of [
      [['push', '-q', `${five}/`, d.remote('')], root],
      [['push', '-q', `${five}/`, d.remote('sub')], join(root, 'sub')],
      [['push', '-q', five, d.remote('sub/')], join(root, 'sub')],
      [['push', '-q', join(five, 'f1'), d.remote('sub/new-name')], join(root, 'sub')],
    ] as const) {
      const r = await runFcp(args, user);
      const line = expectFailure(r, EXIT.PATH, /permission denied/);
      assert.ok(line.includes(`cannot write in the destination directory ${dir}:`), describeRun(r));
    }
  } finally {
    await d.stop();
    chmodSync(root, 0o755);
  }
});

test('3 PARTIAL: a file in a subdirectory the daemon may not write fails, named, the others arrive', async () => {
  const user = unprivileged();
  const root = join(tmp, 'partly-writable');
  mkdirSync(join(root, 'locked'), { recursive: true });
  if (user.uid !== undefined) chownSync(root, user.uid, user.gid ?? user.uid);
  chmodSync(join(root, 'locked'), 0o555);
  const tree = join(tmp, 'partial-src');
  mkdirSync(join(tree, 'locked'), { recursive: true });
  writeFileSync(join(tree, 'ok.txt'), 'ok\n');
  writeFileSync(join(tree, 'locked', 'no.txt'), 'no\n');
  const d = await spawnDaemon({ root, ...user });
  try {
    const r = await runFcp(['push', '-q', `${tree}/`, d.remote('')], user);
    expectFailure(r, EXIT.PARTIAL, /^fcp: locked\/no\.txt: permission denied$/);
    assert.equal((await readdir(root)).sort(), ['locked', 'ok.txt']);
  } finally {
    await d.stop();
    chmodSync(join(root, 'locked'), 0o755);
  }
});

test('4 CONNECT: nothing listening', async () => {
  const port = await freePort();
  expectFailure(await runFcp(['push', small, `${HOST}:${port}:x`]), EXIT.CONNECT, /connection refused/);
});

test('4 CONNECT: a listener that accepts and never answers is a timeout, tried once, not retried', async () => {
  const silent = await silentListener();
  try {
    const r = await runFcp(['push', small, `${HOST}:${silent.port}:x`], { timeoutMs: 40_000 });
    expectFailure(r, EXIT.CONNECT, new RegExp(`${HOST}:${silent.port}.*did not answer`));
    assert.not.match(r.stderr, /retrying/);
    assert.is(silent.accepted(), 1, 'connections the client opened');
  } finally {
    await silent.close();
  }
});

/**
 * A child fcpd serving a 64 MiB file (more `args` for it) and an fcp pulling it over one connection,
 * returned once the pull has started writing: a session in progress, to be cut, held or interrupted.
 */
async function pullUnderWay(name: string, fcpArgs: string[], fcpdArgs: string[] = []) {
  const root = join(tmp, name);
  mkdirSync(root);
  await writeRandomFile(join(root, 'big.bin'), 64 * MiB);
  const d = await startFcpd({ root, stateDir: join(tmp, `${name}-state`), args: fcpdArgs });
  children.push(d);
  const dest = join(tmp, `${name}-copy.bin`);
  const client = startFcp(['pull', '-n', '1', ...fcpArgs, d.remote('big.bin'), dest], 60_000);
  children.push(client);
  const partName = partialOf(dest).part.slice(tmp.length + 1);
  await waitUntil(async () => (await readdir(tmp)).includes(partName), `${name}: the pull writing`, 30_000);
  return { daemon: d, client };
}

test('5 PROTOCOL: the daemon dies mid-transfer: the client says the daemon closed the connection', async () => {
  const { daemon: d, client } = await pullUnderWay('dying', ['--retries', '0']);
  await d.kill();
  const r = await client.done;
  expectFailure(r, EXIT.PROTOCOL, new RegExp(`the daemon at ${HOST}:${d.port} closed the connection`));
});

test('6 REFUSED: a daemon at its session limit', async () => {
  const { daemon: d, client: holder } = await pullUnderWay('busy', [], ['--max-sessions', '1']);
  // Stopped, the first client holds its session open without finishing it.
  holder.child.kill('SIGSTOP');
  try {
    const r = await runFcp(['push', small, d.remote('second.txt')]);
    expectFailure(r, EXIT.REFUSED, /limit of 1 session/);
  } finally {
    holder.child.kill('SIGKILL');
  }
});

test('7 AUTH: asking for an account the daemon does not serve says so', async () => {
  const r = await runFcp(['push', small, `someone-else@${daemon.remote('auth.txt')}`]);
  const line = expectFailure(r, EXIT.AUTH, /does not serve the account "someone-else"/);
  assert.not.match(line, /no offered key/);
});

test('70 INTERNAL: no legitimate way to reach it from outside; the mapping is what is left to check', () => {
  // 70 is what an unexpected exception (a bug) exits with; a test that could provoke it would be a bug to
  // fix. unit/exit-codes covers every mapping to it.
  assert.is(exitCodeFor(new TypeError('a bug')), EXIT.INTERNAL);
});

test('130 INTERRUPTED: SIGINT during a transfer', async () => {
  const { client } = await pullUnderWay('interrupted', []);
  client.child.kill('SIGINT');
  expectFailure(await client.done, EXIT.INTERRUPTED, /interrupted/);
});

test.run();
