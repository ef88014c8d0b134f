// The bootstrap ssh that bin/fcp.js starts before the rest of fcp loads (src/cli/fcp-launch.ts): adopted when
// its guess matches what the options and the config file say, ended and replaced when it does not. Either way
// one session runs, the copy is byte-identical, and nothing is left on either side (helpers/ssh-fcp.ts).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { describeRun, runFcp } from '../helpers/cli.js';
import { sha256File, waitUntil, writeRandomFile } from '../helpers/reliability.js';
import { cleanUp, sshd, tempDir } from '../helpers/ssh-fcp.js';
import { isRunning, type PrivateSshd } from '../helpers/sshd.js';
import { test } from '../helpers/test.js';

test.after.each(cleanUp);

/** The logins sshd accepted so far (its INFO log has one line per login). */
function logins(s: PrivateSshd): number {
  return s.log().match(/Accepted publickey/g)?.length ?? 0;
}

async function pushOne(s: PrivateSshd, extra: string[], env: Record<string, string> = {}) {
  const file = path.join(tempDir(), 'one.bin');
  await writeRandomFile(file, 48 * 1024 + 7);
  const remote = tempDir('fcp-ssh-remote-');
  const before = logins(s);
  const r = await runFcp(
    [
      '-v',
      `--ssh=${s.sshCommand}`,
      '--ssh-transport=direct',
      ...extra,
      'push',
      file,
      `${s.alias}:${remote}/`,
    ],
    { env: { FCP_CONFIG_DIR: tempDir('fcp-config-'), ...env } },
  );
  assert.is(r.code, 0, describeRun(r));
  assert.is(await sha256File(path.join(remote, 'one.bin')), await sha256File(file));
  return { stderr: r.stderr, logins: logins(s) - before };
}

test('fcp --ssh push: the ssh started at launch is the bootstrap, and the only login', async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  const r = await pushOne(s, []);
  assert.match(r.stderr, /ssh login started at launch/);
  assert.is(r.logins, 1, r.stderr);
});

test('a config file that sets how ssh logs in for the host: no ssh starts at launch, one login', async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  const config = tempDir('fcp-config-');
  // The guess reads argv only; the file's remote-fcpd for this host makes the real command differ. A guess
  // made anyway would log in once more (with identity, without the host's key: every agent key offered).
  writeFileSync(path.join(config, 'config'), `[host."${s.alias}"]\nremote-fcpd = "cd / && fcpd"\n`);
  const r = await pushOne(s, [], { FCP_CONFIG_DIR: config });
  assert.not.match(r.stderr, /ssh login started at launch/);
  assert.not.match(r.stderr, /did not match the options and config/);
  assert.is(r.logins, 1, r.stderr);
});

/** Live processes whose command line holds `needle`. */
function processesNaming(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle) && isRunning(Number(entry)))
        found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

test('fcp ending before it took the early ssh (a usage error) ends it: a login stuck at a prompt is not left', async () => {
  // Stands for an ssh waiting at a password prompt: it ignores its stdin and runs (2 min at most) until
  // it is signalled.
  const fakeSsh = path.join(tempDir(), 'fake-ssh');
  const loop = 'i=0; while [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done';
  writeFileSync(fakeSsh, `#!/bin/sh\n${loop}\n`, { mode: 0o755 });
  try {
    const r = await runFcp([`--ssh=${fakeSsh}`, 'push', fakeSsh, 'somehost:dst/', '--no-such-option'], {
      env: { FCP_CONFIG_DIR: tempDir('fcp-config-') },
    });
    assert.is(r.code, 1, describeRun(r));
    await waitUntil(() => processesNaming(fakeSsh).length === 0, 'the early ssh to be ended', 10_000);
  } finally {
    for (const pid of processesNaming(fakeSsh)) process.kill(pid, 'SIGKILL');
  }
});

test.run();
