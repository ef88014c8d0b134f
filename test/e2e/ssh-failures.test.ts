// fcp over ssh (issue 17), the ways it refuses or goes elsewhere: usage errors of the new options, ssh
// refusing the key (exit 7, ssh's own words on stderr), a remote with no fcpd and no node (exit 4, what to
// install), --no-remote-install, and the automatic choice when a standing fcpd does listen (used, never ssh;
// and a refusal there is final). Real fcp, real sshd (test/helpers/sshd.ts), nothing left on the remote.
import { type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { describeRun, FCPD_BIN, runFcp, spawnNode } from '../helpers/cli.js';
import { eventually } from '../helpers/detached.js';
import { cleanUp, sshd, tempDir } from '../helpers/ssh-fcp.js';
import { test } from '../helpers/test.js';
import { execFileSync } from '../helpers/sync.js';

const daemons: ChildProcess[] = [];

/** A one-file source to push. */
function source(): string {
  const file = path.join(tempDir(), 'a.txt');
  writeFileSync(file, 'over ssh\n');
  return file;
}

test.after.each(async () => {
  for (const d of daemons.splice(0)) d.kill('SIGKILL');
  await cleanUp();
});

test('usage: --ssh with --daemon, --ssh with a port or --accept-host-key, an empty --ssh= and --remote-fcpd are exit 1', async () => {
  const file = source();
  const cases: Array<[string[], RegExp]> = [
    [['--ssh', '--daemon'], /--ssh and --daemon/],
    [['--ssh'], /a port in HOST:PORT:PATH names a standing fcpd/],
    [['--ssh='], /--ssh needs a command/],
    [['--ssh=ssh -o "x'], /--ssh has an unbalanced "/],
    [['--remote-fcpd', ' '], /--remote-fcpd needs a command/],
    // A command no login shell reads the same: refused naming the option, not as an internal error (exit 70).
    [['--ssh', '--remote-fcpd', '/opt/fcp!/fcpd'], /--remote-fcpd cannot hold '!'/],
    [['--ssh', '--remote-fcpd', 'fcpd\n--stdio'], /--remote-fcpd cannot hold a line break/],
    [['--ssh', '--remote-fcpd', "/opt/x\\'/fcpd"], /--remote-fcpd cannot hold a backslash before '/],
    [
      ['--ssh=ssh', '--accept-host-key', `SHA256:${'A'.repeat(43)}`],
      /--accept-host-key pins a standing fcpd's key; with --ssh, ssh checks the host/,
    ],
  ];
  for (const [opts, message] of cases) {
    const dest = opts[0] === '--ssh' && opts.length === 1 ? 'box:7600:/tmp' : 'box:/tmp';
    const r = await runFcp([...opts, 'push', file, dest]);
    assert.is(r.code, 1, `${opts.join(' ')}: ${describeRun(r)}`);
    assert.match(r.stderr, message);
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('ssh refusing the key: exit 7, with ssh\'s own "Permission denied" passed through', async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  const wrongKey = path.join(tempDir(), 'other_key');
  // A key sshd does not know: the login is refused the way ssh refuses it.
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrongKey], { stdio: 'pipe' });
  const config = s.configWith({ IdentityFile: wrongKey });
  const r = await runFcp([`--ssh=ssh -F ${config}`, 'push', source(), `${s.alias}:/tmp/`]);
  assert.is(r.code, 7, describeRun(r));
  assert.match(r.stderr, /Permission denied/);
  assert.match(r.stderr, new RegExp(`fcp: ssh could not log in to ${s.alias}`));
});

test('a remote without fcpd and without node: exit 4, one line naming what to install', async () => {
  const s = await sshd({ path: { fcpd: false, node: false } });
  const r = await runFcp([`--ssh=${s.sshCommand}`, 'push', source(), `${s.alias}:/tmp/`]);
  assert.is(r.code, 4, describeRun(r));
  assert.match(r.stderr, /fcp: fcp-test-host has neither fcpd nor node on its PATH: install fcp there/);
  assert.match(r.stderr, /--remote-fcpd PATH/);
  assert.match(r.stderr, /node 20\.19 or newer/);
});

test('--no-remote-install: a remote with node but no fcpd is exit 4 and gets nothing installed', async () => {
  const s = await sshd({ path: { fcpd: false, node: true } });
  const r = await runFcp([
    `--ssh=${s.sshCommand}`,
    '--no-remote-install',
    'push',
    source(),
    `${s.alias}:/tmp/`,
  ]);
  assert.is(r.code, 4, describeRun(r));
  assert.match(r.stderr, /no fcpd on its PATH and --no-remote-install forbids sending one/);
  assert.not.ok(existsSync(path.join(s.home, '.cache/fcp')));
});

test('a remote that prints only junk: bounded (200 lines), exit 5, and the fcpd behind it ended', async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  const junk = 'i=0; while [ $i -lt 300 ]; do echo motd $i; i=$((i+1)); done; fcpd';
  const r = await runFcp([
    `--ssh=${s.sshCommand}`,
    '--remote-fcpd',
    junk,
    'push',
    source(),
    `${s.alias}:/tmp/`,
  ]);
  assert.is(r.code, 5, describeRun(r));
  assert.match(r.stderr, /printed 200 lines .* and not the line of fcpd --serve-once/);
});

/** An address of 127/8 for a standing fcpd on the default port, away from 127.0.0.1 where tests listen. */
const STANDING_ADDRESS = '127.0.0.17';

/** fcpd on STANDING_ADDRESS:7523 as a child; resolves once it listens. */
async function standingFcpd(extra: string[] = []): Promise<ChildProcess> {
  const child = spawnNode(FCPD_BIN, ['--bind', STANDING_ADDRESS, '--port', '7523', ...extra]);
  daemons.push(child);
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (t: string) => (out += t));
  await eventually(10_000, 'the standing fcpd to listen', () => out.includes('fcpd listening on'));
  return child;
}

/** An ssh config whose alias `standing` is STANDING_ADDRESS (no sshd there: ssh must not be used). */
function standingConfig(): string {
  const file = path.join(tempDir(), 'ssh_config');
  writeFileSync(file, `Host standing\n  HostName ${STANDING_ADDRESS}\n  BatchMode yes\n`);
  return file;
}

test('automatic choice: a standing fcpd on 7523 is used, without a word about ssh', async () => {
  await standingFcpd();
  const dest = tempDir();
  const r = await runFcp(['-F', standingConfig(), 'push', source(), `standing:${dest}/`]);
  assert.is(r.code, 0, describeRun(r));
  assert.is(readFileSync(path.join(dest, 'a.txt'), 'utf8'), 'over ssh\n');
  assert.not.match(r.stderr, /going through ssh/);
});

test('automatic choice: a standing fcpd that refuses the login is final (exit 7), never ssh', async () => {
  // No same-host token and no authorized key: the daemon answers, and refuses us.
  await standingFcpd(['--no-local-token', '--authorized-keys', '/dev/null']);
  const r = await runFcp(['-F', standingConfig(), 'push', source(), `standing:${tempDir()}/`]);
  assert.is(r.code, 7, describeRun(r));
  assert.not.match(r.stderr, /going through ssh/);
});

test.run();
