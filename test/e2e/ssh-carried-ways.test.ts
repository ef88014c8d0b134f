// fcp over ssh, carried (issue 17's speed): each connection is an `ssh -N -L` forwarding that sshd connects to
// the serve-once daemon's relay socket itself, so nothing starts on the remote per connection; where the
// server refuses stream-local forwarding (AllowStreamLocalForwarding no, DisableForwarding yes) or the user's
// config forwards ports of its own, each connection is an `ssh HOST fcpd --stdio SOCKET` relay as before. A
// logging --remote-fcpd wrapper records every fcpd the remote runs; trees compared byte for byte; after each
// test nothing runs on the remote side and no ssh (or wrapper) of ours is left.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { describeRun, runFcp } from '../helpers/cli.js';
import { freePort } from '../helpers/daemon.js';
import { MiB, waitUntil, writeRandomFile } from '../helpers/reliability.js';
import { cleanUp, sshd, tempDir } from '../helpers/ssh-fcp.js';
import type { PrivateSshd, SshdOptions } from '../helpers/sshd.js';
import { test } from '../helpers/test.js';
import { compareTrees } from '../helpers/tree.js';

test.after.each(cleanUp);

const FALLBACK =
  /^fcp: ssh on fcp-test-host does not forward to the relay socket; relaying through fcpd --stdio$/m;

/** An sshd whose sessions have fcpd, and a --remote-fcpd that logs the arguments of each fcpd run. */
async function loggingSshd(
  opts: SshdOptions = {},
): Promise<{ s: PrivateSshd; remoteFcpd: string; log: string }> {
  const s = await sshd({ ...opts, path: { fcpd: true, node: true } });
  const dir = tempDir('fcp-ssh-wrap-');
  const log = path.join(dir, 'runs.log');
  writeFileSync(log, '');
  const remoteFcpd = path.join(dir, 'fcpd-logged');
  writeFileSync(remoteFcpd, `#!/bin/sh\necho "$*" >> '${log}'\nexec fcpd "$@"\n`, { mode: 0o755 });
  return { s, remoteFcpd, log };
}

/** Pushes a tree (one file big enough for the extra connections) and pulls it back, 4 connections each. */
async function pushThenPull(args: string[], host: string): Promise<string> {
  const src = path.join(tempDir(), 'src');
  mkdirSync(path.join(src, 'd'), { recursive: true });
  await writeRandomFile(path.join(src, 'big.bin'), 6 * MiB + 5);
  for (let i = 0; i < 20; i++) writeFileSync(path.join(src, 'd', `f${i}`), `file ${i}\n`.repeat(i * 50));
  const remote = tempDir('fcp-ssh-remote-');
  const pushed = await runFcp([...args, '-n', '4', 'push', src, `${host}:${remote}/`]);
  assert.is(pushed.code, 0, describeRun(pushed));
  assert.equal(await compareTrees(src, path.join(remote, 'src')), []);
  const back = tempDir('fcp-ssh-back-');
  const pulled = await runFcp([...args, '-n', '4', 'pull', `${host}:${remote}/src`, `${back}/`]);
  assert.is(pulled.code, 0, describeRun(pulled));
  assert.equal(await compareTrees(src, path.join(back, 'src')), []);
  return pushed.stderr + pulled.stderr;
}

/** The fcpd runs the wrapper logged, one line of arguments each, without the socket paths. */
function fcpdRuns(log: string): string[] {
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split(' ')[0]!);
}

/** The logins sshd accepted so far (its INFO log has one line per login). */
function logins(s: PrivateSshd): number {
  return s.log().match(/Accepted publickey/g)?.length ?? 0;
}

/** The private socket directories of the client's forwardings (removed once the session ends). */
function forwardDirs(): string[] {
  return readdirSync(tmpdir()).filter((name) => name.startsWith('fcp-fwd-'));
}

test('carried: every connection is an ssh forwarding to the relay socket; the remote runs fcpd once per run', async () => {
  const { s, remoteFcpd, log } = await loggingSshd();
  const dirsBefore = forwardDirs();
  const said = await pushThenPull(
    [`--ssh=${s.sshCommand}`, '--ssh-transport=carried', '-v', '--remote-fcpd', remoteFcpd],
    s.alias,
  );
  assert.equal(fcpdRuns(log), ['--serve-once', '--serve-once'], 'no fcpd --stdio relay ran');
  assert.not.match(said, FALLBACK);
  assert.equal(forwardDirs(), dirsBefore, 'the forwardings’ socket directories are gone');
});

test('carried, --connections auto opens 8 connections for a big file, their logins begun with the first', async () => {
  const { s, remoteFcpd } = await loggingSshd();
  const src = path.join(tempDir(), 'src');
  mkdirSync(src);
  await writeRandomFile(path.join(src, 'big.bin'), 6 * MiB + 5);
  const remote = tempDir('fcp-ssh-remote-');
  const ssh = [`--ssh=${s.sshCommand}`, '--ssh-transport=carried', '-v', '--remote-fcpd', remoteFcpd];
  const pushed = await runFcp([...ssh, 'push', src, `${s.alias}:${remote}/`]);
  assert.is(pushed.code, 0, describeRun(pushed));
  assert.equal(await compareTrees(src, path.join(remote, 'src')), []);
  // The -v line of the tuner: its first step (or, the copy being short, its count) is 8, not the tuner's 2.
  assert.match(pushed.stderr, /^fcp: connections: 8[ :]/m, pushed.stderr);
});

test('carried, --connections auto: 4 connections for small files, both ways, and no more logins', async () => {
  const { s, remoteFcpd } = await loggingSshd();
  const src = path.join(tempDir(), 'src');
  mkdirSync(src);
  // 1.5 MiB in 5 KiB files: more than a piece asked for, so the extra connections open, at 4 not 8.
  for (let i = 0; i < 300; i++) writeFileSync(path.join(src, `f${i}`), `${i}`.padEnd(5000, '.'));
  const remote = tempDir('fcp-ssh-remote-');
  const ssh = [`--ssh=${s.sshCommand}`, '--ssh-transport=carried', '-v', '--remote-fcpd', remoteFcpd];
  const before = logins(s);
  const pushed = await runFcp([...ssh, 'push', src, `${s.alias}:${remote}/`]);
  assert.is(pushed.code, 0, describeRun(pushed));
  assert.equal(await compareTrees(src, path.join(remote, 'src')), []);
  assert.match(pushed.stderr, /^fcp: connections: 4[ :]/m, pushed.stderr);
  // The bootstrap, then the first connection and its 3 spares: none started for a count of 8.
  assert.ok(logins(s) - before <= 1 + 4, s.log());
  const back = tempDir('fcp-ssh-back-');
  const pulled = await runFcp([...ssh, 'pull', `${s.alias}:${remote}/src`, `${back}/`]);
  assert.is(pulled.code, 0, describeRun(pulled));
  assert.equal(await compareTrees(src, path.join(back, 'src')), []);
  assert.match(pulled.stderr, /^fcp: connections: 4[ :]/m, pulled.stderr);
});

test('carried: the data connections log in while the bootstrap starts fcpd, not after its line', async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  // A --remote-fcpd that holds the bootstrap until the test says go (bounded: 20 s).
  const dir = tempDir('fcp-ssh-hold-');
  const go = path.join(dir, 'go');
  const remoteFcpd = path.join(dir, 'fcpd-held');
  writeFileSync(
    remoteFcpd,
    `#!/bin/sh\ni=0; while [ ! -e '${go}' ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\nexec fcpd "$@"\n`,
    { mode: 0o755 },
  );
  const src = path.join(tempDir(), 'src');
  mkdirSync(src);
  for (let i = 0; i < 300; i++) writeFileSync(path.join(src, `f${i}`), `${i}`.padEnd(5000, '.'));
  const remote = tempDir('fcp-ssh-remote-');
  const before = logins(s);
  const args = [`--ssh=${s.sshCommand}`, '--ssh-transport=carried', '--remote-fcpd', remoteFcpd];
  const pushing = runFcp([...args, 'push', src, `${s.alias}:${remote}/`]);
  try {
    // The bootstrap and the 4 data connections of carried auto (small files), fcpd not started yet.
    await waitUntil(() => logins(s) - before >= 1 + 4, 'the data connections logged in', 15_000, 50);
  } finally {
    writeFileSync(go, '');
  }
  const pushed = await pushing;
  assert.is(pushed.code, 0, describeRun(pushed));
  assert.equal(await compareTrees(src, path.join(remote, 'src')), []);
  assert.is(logins(s) - before, 1 + 4, s.log());
});

for (const refusal of ['AllowStreamLocalForwarding no', 'DisableForwarding yes']) {
  test(`carried, sshd with ${refusal}: the first connection finds out, every connection relays`, async () => {
    const { s, remoteFcpd, log } = await loggingSshd({ extraConfig: [refusal] });
    const said = await pushThenPull(
      [`--ssh=${s.sshCommand}`, '--ssh-transport=carried', '-v', '--remote-fcpd', remoteFcpd],
      s.alias,
    );
    const runs = fcpdRuns(log);
    assert.is(runs.filter((r) => r === '--serve-once').length, 2);
    assert.ok(runs.filter((r) => r === '--stdio').length >= 2, runs.join(', '));
    assert.is(said.match(new RegExp(FALLBACK.source, 'gm'))?.length, 2, said);
  });
}

test("carried, the user's ssh config forwards a port of its own: relays, so no connection binds it again", async () => {
  const { s, remoteFcpd, log } = await loggingSshd();
  const config = s.configWith({ LocalForward: `127.0.0.1:${await freePort()} 127.0.0.1:9` });
  const said = await pushThenPull(
    [`--ssh=ssh -F ${config}`, '--ssh-transport=carried', '--remote-fcpd', remoteFcpd],
    s.alias,
  );
  assert.ok(fcpdRuns(log).includes('--stdio'), 'relayed');
  assert.not.match(said, /bind|forwarding/i);
});

test.run();
