import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import {
  accountStateDir,
  defaultLogFile,
  defaultPidFile,
  defaultStateDir,
  detach,
  openLog,
} from '../../src/daemon/lifecycle.js';
import { isAlive, readPidFile, removePidFile, stopDaemon, writePidFile } from '../../src/daemon/pid-file.js';
import { FcpError } from '../../src/protocol/errors.js';
import { execFileSync, spawnSync } from '../helpers/sync.js';

const tmp = mkdtempSync(join(tmpdir(), 'fcp-lifecycle-'));
const PID_FILE_URL = new URL('../../src/daemon/pid-file.js', import.meta.url).href;
const started: number[] = [];

// A stand-in daemon using the real pid-file functions. Modes: normal (exits on SIGTERM), stubborn (ignores
// SIGTERM), fail (dies before it is ready), silent (never becomes ready). It exits by itself after 30 s so a
// failed test cannot leak it.
const CHILD = `
const [url, pidFile, mode] = process.argv.slice(2);
const { writePidFile, removePidFile } = await import(url);
setTimeout(() => process.exit(3), 30000);
if (mode === 'fail') {
  console.error('fcpd: cannot listen on 0.0.0.0:7523: EADDRINUSE');
  process.exit(1);
}
process.on('SIGTERM', async () => {
  if (mode === 'stubborn') return;
  await removePidFile(pidFile);
  process.exit(0);
});
if (mode !== 'silent') {
  console.log('fcpd: ready');
  await writePidFile(pidFile);
}
`;
const script = join(tmp, 'fake-fcpd.mjs');
writeFileSync(script, CHILD);

function childArgv(pidFile: string, mode: string): string[] {
  return [script, PID_FILE_URL, pidFile, mode];
}

/** A pid that no longer names a process: a child that has exited and been reaped. */
function deadPid(): number {
  const result = spawnSync(process.execPath, ['-e', ''], { timeout: 10_000 });
  assert.type(result.pid, 'number');
  return result.pid;
}

async function rejects(promise: Promise<unknown>): Promise<FcpError> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, FcpError);
    return err as FcpError;
  }
  throw new Error('expected a rejection');
}

/** 0640 as asked for, or 0600 under a umask of 077. */
function isLogMode(mode: number): boolean {
  return (mode & 0o777) === 0o640 || (mode & 0o777) === 0o600;
}

async function waitDead(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isAlive(pid) && Date.now() < deadline) await sleep(20);
  return !isAlive(pid);
}

test.after(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone, as it should be.
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

test('defaultStateDir: FCPD_STATE_DIR, then absolute XDG_STATE_HOME, then ~/.local/state', () => {
  assert.is(defaultStateDir({ FCPD_STATE_DIR: '/srv/fcpd', XDG_STATE_HOME: '/x' }, '/home/a'), '/srv/fcpd');
  assert.is(defaultStateDir({ XDG_STATE_HOME: '/x/state' }, '/home/a'), '/x/state/fcpd');
  assert.is(defaultStateDir({ XDG_STATE_HOME: 'relative' }, '/home/a'), '/home/a/.local/state/fcpd');
  assert.is(defaultStateDir({ FCPD_STATE_DIR: '' }, '/home/a'), '/home/a/.local/state/fcpd');
  assert.is(defaultPidFile('/s', 7523), '/s/fcpd-7523.pid');
  assert.is(defaultLogFile('/s'), '/s/fcpd.log');
});

test("accountStateDir: FCPD_STATE_DIR, else the account's ~/.local/state/fcpd, never root's XDG dir", () => {
  assert.is(accountStateDir('/home/alice', { FCPD_STATE_DIR: '/srv/fcpd' }), '/srv/fcpd');
  assert.is(
    accountStateDir('/home/alice', { XDG_STATE_HOME: '/root/.state' }),
    '/home/alice/.local/state/fcpd',
  );
  assert.is(accountStateDir('/home/alice', { FCPD_STATE_DIR: '' }), '/home/alice/.local/state/fcpd');
});

test('a pid file that is a symlink or a FIFO is refused, not followed or waited on', async () => {
  const target = join(tmp, 'target.pid');
  writeFileSync(target, `${process.pid}\n`);
  const link = join(tmp, 'link.pid');
  symlinkSync(target, link);
  assert.is((await rejects(readPidFile(link))).code, 'ELOOP');
  const fifo = join(tmp, 'fifo.pid');
  execFileSync('mkfifo', [fifo]);
  assert.match((await rejects(readPidFile(fifo))).message, 'not a regular file');
});

test('write, read and remove a pid file', async () => {
  const dir = join(tmp, 'wr', 'state');
  const file = join(dir, 'fcpd-1.pid');
  await writePidFile(file);
  assert.is(statSync(dir).mode & 0o777, 0o700);
  assert.is(statSync(file).mode & 0o777, 0o644);
  assert.is(readFileSync(file, 'utf8'), `${process.pid}\n`);
  assert.is(await readPidFile(file), process.pid);
  await removePidFile(file);
  assert.not.ok(existsSync(file));
  assert.is(await readPidFile(file), undefined);
  await removePidFile(file);
});

test('refuses a pid file naming a live process', async () => {
  const file = join(tmp, 'live.pid');
  writeFileSync(file, `${process.pid}\n`);
  const err = await rejects(writePidFile(file));
  assert.is(err.code, 'FCP_ERR_USAGE');
  assert.is(err.message, `fcpd already running (pid ${process.pid})`);
});

test('removePidFile leaves a file naming another process', async () => {
  const file = join(tmp, 'other.pid');
  writeFileSync(file, '1\n');
  await removePidFile(file);
  assert.ok(existsSync(file));
});

test('a stale pid file is replaced, and stop removes it', async () => {
  const pid = deadPid();
  assert.not.ok(isAlive(pid));
  const file = join(tmp, 'stale.pid');
  writeFileSync(file, `${pid}\n`);
  await writePidFile(file);
  assert.is(await readPidFile(file), process.pid);

  writeFileSync(file, `${pid}\n`);
  assert.is(await stopDaemon(file, 1000), 'not-running');
  assert.not.ok(existsSync(file));
  assert.is(await stopDaemon(file, 1000), 'not-running');
});

test('a pid file without a pid reads as undefined and is stale', async () => {
  const file = join(tmp, 'junk.pid');
  for (const junk of ['', 'abc\n', '-5\n', '0\n', '12 34\n']) {
    writeFileSync(file, junk);
    assert.is(await readPidFile(file), undefined, JSON.stringify(junk));
  }
  assert.is(await stopDaemon(file, 1000), 'not-running');
  assert.not.ok(existsSync(file));
});

test('detach starts a background daemon and stopDaemon stops it with SIGTERM', async () => {
  const pidFile = join(tmp, 'run', 'fcpd-7523.pid');
  const logFile = join(tmp, 'run', 'fcpd.log');
  const pid = await detach({ argv: childArgv(pidFile, 'normal'), logFile, pidFile, readyTimeoutMs: 10_000 });
  started.push(pid);
  assert.ok(isAlive(pid));
  assert.is(await readPidFile(pidFile), pid);
  assert.match(readFileSync(logFile, 'utf8'), 'fcpd: ready');
  assert.ok(isLogMode(statSync(logFile).mode));

  // A second daemon on the same pid file refuses to start, and says why.
  const err = await rejects(
    detach({ argv: childArgv(pidFile, 'normal'), logFile, pidFile, readyTimeoutMs: 10_000 }),
  );
  assert.match(err.message, `fcpd already running (pid ${pid})`);

  assert.is(await stopDaemon(pidFile, 5000), 'stopped');
  assert.ok(await waitDead(pid, 2000));
  assert.not.ok(existsSync(pidFile));
  assert.is(await stopDaemon(pidFile, 1000), 'not-running');
});

test('detach reports the log lines of a child that exits during startup', async () => {
  const pidFile = join(tmp, 'fail', 'fcpd.pid');
  const logFile = join(tmp, 'fail', 'fcpd.log');
  mkdirSync(join(tmp, 'fail'));
  writeFileSync(logFile, 'fcpd: ready (an earlier run)\n');
  const err = await rejects(
    detach({ argv: childArgv(pidFile, 'fail'), logFile, pidFile, readyTimeoutMs: 10_000 }),
  );
  assert.match(err.message, /exit code 1/);
  assert.match(err.message, 'EADDRINUSE');
  // Output of the earlier run in the same log is not blamed on this one.
  assert.not.match(err.message, 'fcpd: ready');
});

test('detach gives up after readyTimeoutMs and stops the child', async () => {
  const pidFile = join(tmp, 'slow', 'fcpd.pid');
  const logFile = join(tmp, 'slow', 'fcpd.log');
  const before = Date.now();
  const err = await rejects(
    detach({ argv: childArgv(pidFile, 'silent'), logFile, pidFile, readyTimeoutMs: 300 }),
  );
  assert.match(err.message, 'was not ready within 300 ms');
  assert.ok(Date.now() - before < 5000);
  const pid = Number(/pid (\d+)/.exec(err.message)?.[1]);
  started.push(pid);
  assert.ok(await waitDead(pid, 2000), 'the child was sent SIGTERM');
});

test('stopDaemon falls back to SIGKILL after the timeout', async () => {
  const pidFile = join(tmp, 'stubborn', 'fcpd.pid');
  const logFile = join(tmp, 'stubborn', 'fcpd.log');
  const pid = await detach({
    argv: childArgv(pidFile, 'stubborn'),
    logFile,
    pidFile,
    readyTimeoutMs: 10_000,
  });
  started.push(pid);
  const before = Date.now();
  assert.is(await stopDaemon(pidFile, 300), 'stopped');
  assert.ok(Date.now() - before >= 300);
  assert.ok(await waitDead(pid, 2000));
  assert.not.ok(existsSync(pidFile));
});

test('openLog appends and reopens after rotation', async () => {
  const file = join(tmp, 'logs', 'fcpd.log');
  const log = openLog(file);
  log.write('one\n');
  renameSync(file, `${file}.1`);
  log.reopen();
  log.write('two\n');
  await new Promise<void>((resolve, reject) =>
    log.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
  assert.is(readFileSync(`${file}.1`, 'utf8'), 'one\n');
  assert.is(readFileSync(file, 'utf8'), 'two\n');
  assert.ok(isLogMode(statSync(file).mode));
});

test.run();
