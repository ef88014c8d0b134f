// `sudo fcpd -d --user NAME` as a sysadmin runs it (issue 15, item 5), with a real account that has a home:
// the daemon serves NAME's home, keeps every file of its state in NAME's own state directory (owned by
// NAME), survives SIGHUP, and `fcpd stop` finds it whether NAME or root runs it. Also: a privileged port
// refused to an unprivileged account names the port and leaves nothing behind (item 7). Root only.
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import { describeRun, isRoot, runFcp, runFcpd } from '../helpers/cli.js';
import { freePort, HOST } from '../helpers/daemon.js';
import { eventually, isAlive, killIfStill, readPid, startedPid } from '../helpers/detached.js';
import { removeTree } from '../helpers/tree.js';
import { holdAccount } from '../helpers/account-lock.js';
import { accountWithHome } from '../helpers/accounts.js';

const USER = 'fcpuser-daemon';

const enabled = isRoot();
const account = enabled ? accountWithHome(USER) : { name: USER, uid: -1, gid: -1, home: '/nonexistent' };
const ids = { uid: account.uid, gid: account.gid };
const stateDir = join(account.home, '.local', 'state', 'fcpd');
/** The account's own view of its environment: its HOME, no state-dir override from ours. */
const accountEnv = { HOME: account.home, FCPD_STATE_DIR: '', XDG_STATE_HOME: '', XDG_CONFIG_HOME: '' };
/** root's environment as sudo leaves it: HOME is root's (the hermetic one here), no FCPD_STATE_DIR. */
const rootEnv = { FCPD_STATE_DIR: '', XDG_STATE_HOME: '' };

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-daemon-user-'));
chmodSync(tmp, 0o755);
const payload = join(tmp, 'payload.txt');
writeFileSync(payload, 'pushed as the served account\n');
chmodSync(payload, 0o644);
const started = new Set<number>();

/** `sudo fcpd -d --user NAME --port PORT`: returns the daemon's pid. */
async function startAsRoot(port: number): Promise<number> {
  const r = await runFcpd(['-d', '--user', USER, '--port', String(port)], {
    env: rootEnv,
    timeoutMs: 20_000,
  });
  const pid = readPid(join(stateDir, `fcpd-${port}.pid`));
  // Whatever it wrote where, a daemon that said it started is stopped at the end.
  for (const p of [pid, startedPid(r.stdout)]) if (p !== undefined) started.add(p);
  assert.is(r.code, 0, describeRun(r));
  assert.ok(pid !== undefined && isAlive(pid), `no live pid in ${stateDir}: ${describeRun(r)}`);
  return pid;
}

// Another checkout's run of this file would share the account's state directory: take turns.
let letGo = (): void => {};

test.before(
  async () => {
    if (!enabled) return;
    letGo = await holdAccount(USER);
    rmSync(stateDir, { recursive: true, force: true });
  },
  { timeoutMs: 150_000 },
);

test.after(async () => {
  for (const pid of started) {
    killIfStill(pid, 'fcpd');
  }
  letGo();
  await removeTree(tmp);
});

test('sudo fcpd -d --user NAME serves NAME and keeps all its state, owned by NAME, in its state dir', async () => {
  if (!enabled) return;
  const port = await freePort();
  const pid = await startAsRoot(port);
  const pidFile = join(stateDir, `fcpd-${port}.pid`);
  try {
    // Every file of the daemon's state is the account's, in the one documented place.
    const files = readdirSync(stateDir).sort();
    assert.equal(
      files,
      ['control', 'fcpd-' + port + '.pid', 'fcpd-host-key.pem', `fcpd-token-${port}`, 'fcpd.log'].sort(),
    );
    // control/ holds the socket `fcpd status` asks (README "fcpd status").
    for (const name of ['.', ...files, `control/fcpd-${port}.sock`]) {
      const st = statSync(join(stateDir, name));
      assert.is(st.uid, account.uid, `${name} belongs to ${USER}`);
    }
    const log = join(stateDir, 'fcpd.log');
    assert.match(await readFile(log, 'utf8'), `serving / (relative paths from ${account.home}),`);

    // The account's client pushes into its home: the daemon serves NAME's home, as NAME.
    const pushed = await runFcp(['push', payload, `${HOST}:${port}:pushed.txt`], { ...ids, env: accountEnv });
    assert.is(pushed.code, 0, describeRun(pushed));
    const got = join(account.home, 'pushed.txt');
    assert.is(readFileSync(got, 'utf8'), 'pushed as the served account\n');
    assert.is(statSync(got).uid, account.uid);

    // --fingerprint --user NAME prints the key this daemon uses.
    const fp = await runFcpd(['--fingerprint', '--user', USER], { env: rootEnv });
    assert.is(fp.code, 0, describeRun(fp));
    assert.match(await readFile(log, 'utf8'), `host key ${fp.stdout.trim()}`);

    // logrotate: move the log away, SIGHUP; the daemon lives on and writes to a new file.
    renameSync(log, `${log}.1`);
    process.kill(pid, 'SIGHUP');
    await eventually(10_000, 'the reopened log', async () =>
      existsSync(log) ? (await readFile(log, 'utf8')).includes('log reopened') : false,
    );
    assert.ok(isAlive(pid), 'fcpd survives SIGHUP');
    assert.is(statSync(log).uid, account.uid);

    // The account stops its own daemon with a plain `fcpd stop`.
    const stopped = await runFcpd(['stop', '--port', String(port)], {
      ...ids,
      env: accountEnv,
      timeoutMs: 20_000,
    });
    assert.is(stopped.code, 0, describeRun(stopped));
    await eventually(5000, 'the daemon to exit', () => !isAlive(pid));
    assert.not.ok(existsSync(pidFile), 'pid file removed');
    assert.not.ok(existsSync(join(stateDir, `fcpd-token-${port}`)), 'token removed');
    assert.match(await readFile(log, 'utf8'), /stopped/);
  } finally {
    killIfStill(pid, 'fcpd', 'SIGTERM');
  }
});

test('root finds the daemon of NAME with fcpd stop --user NAME', async () => {
  if (!enabled) return;
  const port = await freePort();
  const pid = await startAsRoot(port);
  const stopped = await runFcpd(['stop', '--user', USER, '--port', String(port)], {
    env: rootEnv,
    timeoutMs: 20_000,
  });
  assert.is(stopped.code, 0, describeRun(stopped));
  await eventually(5000, 'the daemon to exit', () => !isAlive(pid));
  assert.not.ok(existsSync(join(stateDir, `fcpd-${port}.pid`)), 'pid file removed');
});

test("fcpd stop --user NAME as root signals no process but NAME's", async () => {
  if (!enabled) return;
  // NAME controls its state directory: a pid file naming a root process must not make root signal it.
  const victim = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => victim.once('exit', resolve));
  try {
    mkdirSync(stateDir, { recursive: true });
    const port = await freePort();
    const pidFile = join(stateDir, `fcpd-${port}.pid`);
    writeFileSync(pidFile, `${victim.pid}\n`);
    chownSync(pidFile, account.uid, account.gid);
    const r = await runFcpd(['stop', '--user', USER, '--port', String(port)], { env: rootEnv });
    assert.is(r.code, EXIT.USAGE, describeRun(r));
    assert.match(r.stderr, /not signalling it/);
    assert.ok(isAlive(victim.pid!), 'the root process was not signalled');
    rmSync(pidFile);
  } finally {
    victim.kill('SIGKILL');
    await exited;
  }
});

test("fcpd stop --user NAME as root: a state dir NAME swapped for a link to root's files is refused", async () => {
  if (!enabled) return;
  // NAME controls every level of its home: its state directory made a link to a directory of root's, where
  // root's own pid file (trusted as root's) names a root process. Root must neither signal nor unlink.
  const victim = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => victim.once('exit', resolve));
  const rootDir = mkdtempSync(join(tmpdir(), 'fcp-e2e-root-owned-'));
  try {
    const port = await freePort();
    const rootPidFile = join(rootDir, `fcpd-${port}.pid`);
    writeFileSync(rootPidFile, `${victim.pid}\n`);
    rmSync(stateDir, { recursive: true, force: true });
    mkdirSync(dirname(stateDir), { recursive: true });
    symlinkSync(rootDir, stateDir);
    lchownSync(stateDir, account.uid, account.gid);
    const r = await runFcpd(['stop', '--user', USER, '--port', String(port)], { env: rootEnv });
    assert.is(r.code, EXIT.USAGE, describeRun(r));
    assert.match(r.stderr, /not to fcpuser-daemon/, describeRun(r));
    assert.ok(isAlive(victim.pid!), 'the root process was not signalled');
    assert.ok(existsSync(rootPidFile), "root's pid file was not removed");
  } finally {
    victim.kill('SIGKILL');
    await exited;
    rmSync(stateDir, { force: true });
    rmSync(rootDir, { recursive: true, force: true });
  }
});

test('a privileged port refused to an unprivileged account names the port and leaves no pid file', async () => {
  if (!enabled) return;
  const state = mkdtempSync(join(tmp, 'state-'));
  chownSync(state, account.uid, account.gid);
  const r = await runFcpd(['--port', '80', '--root', tmp], {
    ...ids,
    env: { ...accountEnv, FCPD_STATE_DIR: state },
  });
  const where = describeRun(r);
  assert.is(r.code, EXIT.USAGE, where);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, where);
  assert.match(lines[0]!, /^fcpd: cannot listen on .*:80: permission denied/, where);
  assert.not.ok(existsSync(join(state, 'fcpd-80.pid')), 'no pid file left behind');
  assert.not.ok(existsSync(join(state, 'fcpd-token-80')), 'no token left behind');
});

test.run();
