// Issue 18, configuration files: `fcpd --config FILE` sets every daemon option, flags win over it, `fcpd stop`
// finds the daemon the same file started, `fcpd --print-config` shows where each value came from, the default
// file of an unprivileged user is read from its config directory, and a bad or missing --config file is one
// line and exit 1.
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { describeRun, type RunResult, runFcp, runFcpd, unprivileged } from '../helpers/cli.js';
import { freePort, HOST, spawnDaemon } from '../helpers/daemon.js';
import { eventually, isAlive, killIfStill, readPid } from '../helpers/detached.js';
import { removeTree } from '../helpers/tree.js';

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-config-daemon-'));
chmodSync(tmp, 0o755);
const payload = join(tmp, 'payload.txt');
writeFileSync(payload, 'configured\n');
const detachedPids = new Set<number>();
let files = 0;

function configFile(lines: string[]): string {
  const file = join(tmp, `fcpd-${++files}.conf`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function served(name: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  return dir;
}

function oneLine(r: RunResult, pattern: RegExp): void {
  assert.is(r.code, 1, describeRun(r));
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, describeRun(r));
  assert.match(lines[0]!, pattern, describeRun(r));
}

test.after(async () => {
  for (const pid of detachedPids) {
    killIfStill(pid, 'fcpd');
  }
  await removeTree(tmp);
});

test('fcpd --config: the file sets the served root; a flag wins over it', async () => {
  const fromFile = served('root-file');
  const fromFlag = served('root-flag');
  const conf = configFile([`root = ${JSON.stringify(fromFile)}`, 'max-sessions = 2']);

  const daemon = await spawnDaemon({ args: ['--config', conf] });
  try {
    const r = await runFcp(['push', payload, daemon.remote('got.txt')]);
    assert.is(r.code, 0, describeRun(r));
    assert.is(await readFile(join(fromFile, 'got.txt'), 'utf8'), 'configured\n');
  } finally {
    await daemon.stop();
  }

  const flagged = await spawnDaemon({ root: fromFlag, args: ['--config', conf] });
  try {
    const r = await runFcp(['push', payload, flagged.remote('flag.txt')]);
    assert.is(r.code, 0, describeRun(r));
    assert.ok(existsSync(join(fromFlag, 'flag.txt')), 'the --root flag won');
    assert.not.ok(existsSync(join(fromFile, 'flag.txt')), 'not the file root');
  } finally {
    await flagged.stop();
  }
});

test('fcpd stop --config finds the detached daemon the same file started', async () => {
  const state = join(tmp, 'state-stop');
  const port = await freePort();
  const root = served('root-detached');
  const conf = configFile([`port = ${port}`, `root = ${JSON.stringify(root)}`, 'detach = true']);
  const env = { FCPD_STATE_DIR: state };
  const started = await runFcpd(['--config', conf], { env, timeoutMs: 20_000 });
  const pidFile = join(state, `fcpd-${port}.pid`);
  const pid = readPid(pidFile);
  if (pid !== undefined) detachedPids.add(pid);
  assert.is(started.code, 0, describeRun(started));
  assert.ok(pid !== undefined && isAlive(pid), describeRun(started));

  const pushed = await runFcp(['push', payload, `${HOST}:${port}:detached.txt`]);
  assert.is(pushed.code, 0, describeRun(pushed));
  assert.ok(existsSync(join(root, 'detached.txt')));

  const stopped = await runFcpd(['stop', '--config', conf], { env, timeoutMs: 20_000 });
  assert.is(stopped.code, 0, describeRun(stopped));
  await eventually(5000, `pid ${pid} to exit`, () => !isAlive(pid));
});

test('fcpd --print-config: flag, FILE:LINE or default for every option', async () => {
  const conf = configFile(['# daemon', 'max-sessions = 3', 'encryption = false', 'bind = "127.0.0.1"']);
  const r = await runFcpd(['--config', conf, '--bind', '::1', '--print-config']);
  assert.is(r.code, 0, describeRun(r));
  const rows = r.stdout.replace(/ +/g, ' ');
  assert.match(rows, `# fcpd settings; file: ${conf}\n`);
  assert.match(rows, `max-sessions = 3 # ${conf}:2\n`);
  assert.match(rows, `encryption = false # ${conf}:3\n`);
  assert.match(rows, 'bind = "::1" # flag\n');
  assert.match(rows, 'max-connections = 64 # default\n');
});

test('an unprivileged fcpd reads fcpd.conf from its config directory; a missing one is fine', async () => {
  const user = unprivileged();
  const dir = join(tmp, 'user-config');
  mkdirSync(dir);
  writeFileSync(join(dir, 'fcpd.conf'), 'partial-max-age = 7\n');
  if (user.uid !== undefined) chownSync(dir, user.uid, user.gid ?? user.uid);
  const r = await runFcpd(['--print-config'], { ...user, env: { FCP_CONFIG_DIR: dir } });
  assert.is(r.code, 0, describeRun(r));
  assert.match(r.stdout.replace(/ +/g, ' '), `partial-max-age = 7 # ${join(dir, 'fcpd.conf')}:1\n`);

  const none = await runFcpd(['--print-config'], { ...user, env: { FCP_CONFIG_DIR: join(tmp, 'none') } });
  assert.is(none.code, 0, describeRun(none));
  assert.match(none.stdout, /no config file/);
});

test("a default config directory that is another user's is no file; a default file we cannot read is an error", async () => {
  const user = unprivileged();
  if (user.uid === undefined) return; // not root: no other user to try with
  // As `sudo -u` can leave it: HOME (and its config directory) are root's, closed to the user.
  const home = join(tmp, 'root-home');
  mkdirSync(join(home, '.config', 'fcp'), { recursive: true, mode: 0o700 });
  chmodSync(join(home, '.config', 'fcp'), 0o700);
  writeFileSync(join(home, '.config', 'fcp', 'fcpd.conf'), 'port = 1\n');
  writeFileSync(join(home, '.config', 'fcp', 'config'), 'connections = 2\n');
  const env = { HOME: home, FCP_CONFIG_DIR: '', XDG_CONFIG_HOME: '' };
  const daemon = await runFcpd(['--print-config'], { ...user, env });
  assert.is(daemon.code, 0, describeRun(daemon));
  assert.match(daemon.stdout.replace(/ +/g, ' '), 'port = 7523 # default\n');
  const client = await runFcp(['--print-config', 'box'], { ...user, env });
  assert.is(client.code, 0, describeRun(client));

  // A file in a directory the user can search, but not readable by it: its settings must not be lost quietly.
  const open = join(tmp, 'unreadable');
  mkdirSync(open, { mode: 0o755 });
  writeFileSync(join(open, 'fcpd.conf'), 'port = 1\n', { mode: 0o600 });
  oneLine(
    await runFcpd(['--print-config'], { ...user, env: { FCP_CONFIG_DIR: open } }),
    /^fcpd: cannot read config .+fcpd\.conf: .*permission denied/,
  );
});

test('a bad or missing --config file: one line naming it, exit 1', async () => {
  oneLine(
    await runFcpd(['--config', join(tmp, 'absent.conf')]),
    /^fcpd: --config .+absent\.conf: no such file$/,
  );
  const unknown = configFile(['port = 0', 'max-sesions = 2']);
  oneLine(await runFcpd(['--config', unknown]), /^fcpd: .+:2: unknown key "max-sesions"$/);
  const typed = configFile(['port = "seven"']);
  oneLine(
    await runFcpd(['--config', typed]),
    /^fcpd: .+:1: "port" must be a whole number from 0 to 65535, not a string \("seven"\)$/,
  );
  // Values their option refuses: at their line, not as a flag the user never typed (`--port must be ...`).
  const refused: Array<[string, RegExp]> = [
    ['port = 70000', /:2: "port" must be a whole number from 0 to 65535, not a number \(70000\)$/],
    ['max-sessions = 0', /:2: "max-sessions" must be a whole number, 1 or more, not a number \(0\)$/],
    [
      'max-connections = 1.5',
      /:2: "max-connections" must be a whole number, 1 or more, not a number \(1\.5\)$/,
    ],
    ['bwlimit = "fast"', /:2: "bwlimit" must be bytes per second like 10M, .+, not a string \("fast"\)$/],
  ];
  for (const [line, message] of refused) {
    oneLine(await runFcpd(['--config', configFile(['bind = "127.0.0.1"', line])]), message);
  }
  const broken = configFile(['port = 0', '[unclosed']);
  oneLine(await runFcpd(['--config', broken]), /^fcpd: .+:2: .+ \(column \d+\)$/);
  const action = configFile(['fingerprint = true']);
  oneLine(await runFcpd(['--config', action]), /^fcpd: .+:1: "fingerprint" cannot be set in a config file/);
  const stop = await runFcpd(['stop', '--config', unknown]);
  oneLine(stop, /:2: unknown key "max-sesions"$/);
});

test.run();
