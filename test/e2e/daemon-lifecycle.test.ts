// fcpd's life as an operator sees it: -d returns once the daemon listens and has written its pid file,
// `fcpd stop` ends it and the pid file goes, a second daemon on the same port is refused clearly, a bad
// --root fails with exit 2, and SIGTERM/SIGINT end a foreground daemon with exit 0.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import { describeRun, FCPD_BIN, runFcp, runFcpd, spawnNode } from '../helpers/cli.js';
import { freePort, HOST, spawnDaemon, within } from '../helpers/daemon.js';
import { eventually, isAlive, killIfStill, readPid } from '../helpers/detached.js';
import { removeTree } from '../helpers/tree.js';

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-lifecycle-'));
chmodSync(tmp, 0o755);
const root = join(tmp, 'root');
mkdirSync(root);
const payload = join(tmp, 'payload.txt');
writeFileSync(payload, 'hello from lifecycle\n');
/** Detached daemons are not our children: remember their pids to kill them if a test fails. */
const detachedPids = new Set<number>();

async function waitGone(pid: number, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 50) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return !isAlive(pid);
}

test.after(async () => {
  for (const pid of detachedPids) {
    killIfStill(pid, 'fcpd');
  }
  await removeTree(tmp);
});

test('fcpd -d returns, writes its pid file, serves, and fcpd stop ends it and removes the pid file', async () => {
  const state = join(tmp, 'state-d');
  const env = { FCPD_STATE_DIR: state };
  const port = await freePort();
  const pidFile = join(state, `fcpd-${port}.pid`);
  const started = await runFcpd(['-d', '--port', String(port), '--root', root], { env, timeoutMs: 20_000 });
  const pid = readPid(pidFile);
  if (pid !== undefined) detachedPids.add(pid);
  assert.is(started.code, 0, describeRun(started));
  assert.ok(pid !== undefined, `pid file ${pidFile} missing: ${describeRun(started)}`);
  assert.match(started.stdout, new RegExp(`pid ${pid}\\b`));
  assert.ok(isAlive(pid), 'the daemon runs after -d returned');

  const pushed = await runFcp(['push', payload, `${HOST}:${port}:got.txt`]);
  assert.is(pushed.code, 0, describeRun(pushed));
  assert.is(await readFile(join(root, 'got.txt'), 'utf8'), 'hello from lifecycle\n');

  const stopped = await runFcpd(['stop', '--port', String(port)], { env, timeoutMs: 20_000 });
  assert.is(stopped.code, 0, describeRun(stopped));
  assert.match(stopped.stdout, /stopped/);
  assert.ok(await waitGone(pid, 2000), `pid ${pid} still alive after fcpd stop`);
  assert.not.ok(existsSync(pidFile), 'pid file removed');
  const log = await readFile(join(state, 'fcpd.log'), 'utf8');
  // fcpd listens on every address, IPv6 and IPv4, by default since every client authenticates (spec/SECURITY.md).
  assert.match(log, `listening on [::]:${port}`);
  assert.match(log, /stopped/);

  // Stopping again: nothing runs, said plainly.
  const again = await runFcpd(['stop', '--port', String(port)], { env });
  assert.is(again.code, EXIT.PATH, describeRun(again));
  assert.match(again.stdout, /not running/);
});

test('SIGHUP makes a detached fcpd reopen its log file (log rotation)', async () => {
  const state = join(tmp, 'state-hup');
  const env = { FCPD_STATE_DIR: state };
  const port = await freePort();
  const started = await runFcpd(['-d', '--port', String(port), '--root', root], { env, timeoutMs: 20_000 });
  const pid = readPid(join(state, `fcpd-${port}.pid`));
  if (pid !== undefined) detachedPids.add(pid);
  assert.is(started.code, 0, describeRun(started));
  assert.ok(pid !== undefined);
  try {
    const log = join(state, 'fcpd.log');
    const rotated = join(state, 'fcpd.log.1');
    renameSync(log, rotated); // what logrotate does before it signals the daemon
    process.kill(pid, 'SIGHUP');
    await eventually(10_000, 'the log to be reopened', async () => existsSync(log));
    await eventually(10_000, 'the reopen line', async () =>
      (await readFile(log, 'utf8')).includes('log reopened'),
    );
    const pushed = await runFcp(['push', payload, `${HOST}:${port}:hup.txt`]);
    assert.is(pushed.code, 0, describeRun(pushed));
    await eventually(10_000, 'the session line in the new log', async () =>
      (await readFile(log, 'utf8')).includes('session done'),
    );
    assert.not.match(await readFile(rotated, 'utf8'), /session done/);
  } finally {
    process.kill(pid, 'SIGTERM');
    await waitGone(pid, 15_000);
  }
});

test('a second fcpd on the same port fails with a clear message and leaves the first running', async () => {
  const state = join(tmp, 'state-twice');
  const env = { FCPD_STATE_DIR: state };
  const port = await freePort();
  const pidFile = join(state, `fcpd-${port}.pid`);
  const first = await runFcpd(['-d', '--port', String(port), '--root', root], { env, timeoutMs: 20_000 });
  const pid = readPid(pidFile);
  if (pid !== undefined) detachedPids.add(pid);
  try {
    assert.is(first.code, 0, describeRun(first));
    assert.ok(pid !== undefined && isAlive(pid), 'first daemon runs');

    const second = await runFcpd(['-d', '--port', String(port), '--root', root], { env, timeoutMs: 20_000 });
    const where = describeRun(second);
    assert.is(second.code, EXIT.USAGE, `exit code: ${where}`);
    const lines = second.stderr.split('\n').filter((l) => l !== '');
    assert.is(lines.length, 1, `one stderr line: ${where}`);
    assert.match(lines[0]!, /^fcpd: .*(already running|in use)/i, where);

    assert.ok(isAlive(pid), 'the first daemon survives');
    assert.is(readPid(pidFile), pid, 'the pid file still names the first daemon');
    const pushed = await runFcp(['push', payload, `${HOST}:${port}:second.txt`]);
    assert.is(pushed.code, 0, describeRun(pushed));
  } finally {
    const stopped = await runFcpd(['stop', '--port', String(port)], { env, timeoutMs: 20_000 });
    assert.is(stopped.code, 0, describeRun(stopped));
  }
});

test('a foreground fcpd on a port already taken exits 1 with one clear line', async () => {
  const first = await spawnDaemon({ root });
  try {
    const r = await runFcpd(['--port', String(first.port), '--root', root], { timeoutMs: 20_000 });
    const where = describeRun(r);
    assert.is(r.code, EXIT.USAGE, where);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.is(lines.length, 1, where);
    assert.match(lines[0]!, /^fcpd: .*in use/i, where);
    assert.is(first.child.exitCode, null, 'the first daemon survives');
  } finally {
    await first.stop();
  }
});

test('fcpd --root /nonexistent fails with exit 2 and names the path', async () => {
  const r = await runFcpd(['--port', '0', '--root', '/nonexistent/fcp-root']);
  const where = describeRun(r);
  assert.is(r.code, EXIT.PATH, where);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, where);
  assert.match(lines[0]!, /^fcpd: /, where);
  assert.match(lines[0]!, /\/nonexistent\/fcp-root/, where);
  assert.not.match(r.stdout, /listening/, where);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} on a foreground fcpd exits 0`, async () => {
    const d = await spawnDaemon({ root });
    const pushed = await runFcp(['push', payload, d.remote(`${signal}.txt`)]);
    assert.is(pushed.code, 0, describeRun(pushed));
    const how = await d.stop(signal);
    assert.equal(how, { code: 0, signal: null }, d.stderr());
    assert.match(d.stderr(), /stopped/);
  });
}

test('a foreground fcpd on a fixed port writes its pid file and removes it on SIGTERM', async () => {
  const state = join(tmp, 'state-fg');
  const port = await freePort();
  const pidFile = join(state, `fcpd-${port}.pid`);
  // spawnDaemon asks for port 0; a fixed port needs its own spawn.
  const child = spawnNode(FCPD_BIN, ['--port', String(port), '--root', root], {
    env: { FCPD_STATE_DIR: state },
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    for (let i = 0; i < 200 && !out.includes('listening'); i++) await sleep(50);
    assert.match(out, `fcpd listening on [::]:${port}`);
    assert.is(readPid(pidFile), child.pid);
  } finally {
    child.kill('SIGTERM');
  }
  assert.is(await within(exited, 15_000), 0);
  assert.not.ok(existsSync(pidFile), 'pid file removed on exit');
});

test.run();
