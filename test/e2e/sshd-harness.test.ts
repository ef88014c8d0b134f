// The private sshd of test/helpers/sshd.ts, which the fcp-over-ssh tests (issue 17) stand on: logins as root
// and as the test account with real host key checking, a wrong key refused the way ssh refuses it, the
// session PATH it promises, and nothing left running after stop().
import { spawn } from 'node:child_process';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { track } from '../helpers/cli.js';
import { eventually } from '../helpers/detached.js';
import { isRunning, type PrivateSshd, SSH_TEST_USER, startSshd } from '../helpers/sshd.js';
import { test } from '../helpers/test.js';
import { execFileSync } from '../helpers/sync.js';

interface SshRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `ssh -F CONFIG ...args` (the harness's alias and options) to completion. */
function ssh(config: string, args: string[]): Promise<SshRun> {
  const child = spawn('ssh', ['-F', config, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const started: PrivateSshd[] = [];
async function sshd(opts: Parameters<typeof startSshd>[0]): Promise<PrivateSshd> {
  const s = await startSshd(opts);
  started.push(s);
  return s;
}
test.after.each(async () => {
  for (const s of started.splice(0)) await s.stop();
});

test('logs in as root and as the test account, each with its own private HOME', async () => {
  const s = await sshd({ user: SSH_TEST_USER });
  const asTest = await ssh(s.sshConfigFile, [s.alias, 'id -un; echo "$HOME"']);
  assert.is(asTest.code, 0, `${asTest.stderr}\n${s.log()}`);
  assert.is(asTest.stdout, `${SSH_TEST_USER}\n${s.home}\n`);
  const asRoot = await ssh(s.sshConfigFile, ['-l', 'root', s.alias, 'id -un; echo "$HOME"']);
  assert.is(asRoot.code, 0, `${asRoot.stderr}\n${s.log()}`);
  assert.is(asRoot.stdout, `root\n${s.homeOf('root')}\n`);
  assert.is.not(s.homeOf('root'), '/root');
});

test('ssh -F FILE alias true works over IPv6 too, with the host key recorded (no prompt, no warning)', async () => {
  const s = await sshd({ ipv6: true });
  for (const alias of [s.alias, s.alias6 ?? '']) {
    const r = await ssh(s.sshConfigFile, [alias, 'true']);
    assert.is(r.code, 0, `${alias}: ${r.stderr}\n${s.log()}`);
    assert.is(r.stderr, '', 'nothing to accept, nothing to warn about');
  }
  assert.is(s.sshCommand, `ssh -F ${s.sshConfigFile}`);
});

test('a key that is not authorized is refused: exit 255, "Permission denied"', async () => {
  const s = await sshd({});
  const other = path.join(s.dir, 'other_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other], { stdio: 'pipe' });
  const r = await ssh(s.configWith({ IdentityFile: other }), [s.alias, 'true']);
  assert.is(r.code, 255);
  assert.match(r.stderr, 'Permission denied');
});

test('a host key that does not match the recorded one fails verification', async () => {
  const s = await sshd({});
  const r = await ssh(s.configWith({ UserKnownHostsFile: '/dev/null' }), [s.alias, 'true']);
  assert.is(r.code, 255);
  assert.match(r.stderr, 'Host key verification failed');
});

test('sessions get the PATH asked for: fcpd and node, node only, neither', async () => {
  const probe = 'command -v fcpd || echo no-fcpd; command -v node || echo no-node; command -v mkdir';
  const cases = [
    { tools: { fcpd: true, node: true }, fcpd: true, node: true },
    { tools: { fcpd: false, node: true }, fcpd: false, node: true },
    { tools: { fcpd: false, node: false }, fcpd: false, node: false },
  ];
  for (const c of cases) {
    const s = await sshd({ user: SSH_TEST_USER, path: c.tools });
    const r = await ssh(s.sshConfigFile, [s.alias, probe]);
    assert.is(r.code, 0, r.stderr);
    const [fcpd, node, mkdir] = r.stdout.trim().split('\n');
    assert.is(fcpd !== 'no-fcpd', c.fcpd, `fcpd: ${r.stdout}`);
    assert.is(node !== 'no-node', c.node, `node: ${r.stdout}`);
    assert.ok(mkdir?.endsWith('/mkdir'), `system commands stay: ${r.stdout}`);
    if (c.fcpd) {
      const version = await ssh(s.sshConfigFile, [s.alias, 'fcpd --version']);
      assert.is(version.code, 0, `the wrapper runs this checkout's fcpd: ${version.stderr}`);
    }
    await s.stop();
    started.splice(started.indexOf(s), 1);
  }
});

test('listRemoteProcesses sees a session and its orphans; stop() leaves no process', async () => {
  const s = await sshd({});
  // A background sleep outlives its session: an orphan, no longer under sshd, still found by the marker.
  const r = await ssh(s.sshConfigFile, [s.alias, 'sleep 600 </dev/null >/dev/null 2>&1 & echo $!']);
  assert.is(r.code, 0, r.stderr);
  const orphan = Number(r.stdout.trim());
  assert.ok(orphan > 0, r.stdout);
  await eventually(10_000, 'the session to end, leaving the orphan', () =>
    s.listRemoteProcesses().every((p) => p.pid === orphan),
  );
  assert.equal(
    s.listRemoteProcesses().map((p) => p.pid),
    [orphan],
  );
  await s.stop();
  started.splice(started.indexOf(s), 1);
  assert.not.ok(isRunning(orphan), 'the orphan was stopped');
  assert.equal(s.listRemoteProcesses(), []);
});

test.run();
