// fcp over ssh, carried: the ssh options and environment fcp gives each data connection's ssh, seen by a
// logging ssh wrapper (`--ssh=WRAPPER -F CONFIG`) that records, per ssh it runs, whether it is a
// forwarding (-N), a query (-G) or another ssh (the bootstrap), its GLIBC_TUNABLES, and the compression
// `ssh -G` resolves for the same arguments, then runs ssh. Files compared byte for byte; nothing left
// running after each test.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { CARRIED_SSH_TUNABLES } from '../../src/transport/ssh-command.js';
import { describeRun, runFcp } from '../helpers/cli.js';
import { MiB, writeRandomFile } from '../helpers/reliability.js';
import { cleanUp, sshd, tempDir } from '../helpers/ssh-fcp.js';
import type { PrivateSshd } from '../helpers/sshd.js';
import { test } from '../helpers/test.js';
import { compareTrees } from '../helpers/tree.js';

test.after.each(cleanUp);

/** One ssh the wrapper ran. */
interface SshRun {
  /** A forwarding (-N), fcp's `ssh -G` query, or another (the bootstrap). */
  way: 'forward' | 'query' | 'other';
  tunables: string;
  compression: string;
}

/** A logging ssh (see the header); `runs()` reads what it logged since the last `clear()`. */
function loggingSsh(): { ssh: string; runs: () => SshRun[]; clear: () => void } {
  const dir = tempDir('fcp-ssh-env-');
  const log = path.join(dir, 'ssh.log');
  writeFileSync(log, '');
  const ssh = path.join(dir, 'ssh-logged');
  const script = [
    '#!/bin/sh',
    // -O: a request to a data connection's own master (ssh-prelogin.ts), no connection of its own.
    'case " $* " in *" -O "*) exec ssh "$@" ;; esac',
    'case " $* " in *" -N "*) w=forward ;; *" -G "*) w=query ;; *) w=other ;; esac',
    `c=$(ssh -G "$@" 2>/dev/null | sed -n 's/^compression //p')`,
    `echo "$w \${GLIBC_TUNABLES:-unset} $c" >> '${log}'`,
    'exec ssh "$@"',
    '',
  ].join('\n');
  writeFileSync(ssh, script, { mode: 0o755 });
  const runs = () =>
    readFileSync(log, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        const [way, tunables, compression] = line.split(' ');
        return { way: way as SshRun['way'], tunables: tunables!, compression: compression ?? '' };
      });
  return { ssh, runs, clear: () => writeFileSync(log, '') };
}

/** Pushes one 6 MiB file carried over `n` connections with `--ssh=SSH`; checks it arrived whole. */
async function pushCarried(s: PrivateSshd, ssh: string, n: number, env: Record<string, string> = {}) {
  const src = path.join(tempDir(), 'src');
  await writeRandomFile(src, 6 * MiB + 5);
  const remote = tempDir('fcp-ssh-remote-');
  const args = [`--ssh=${ssh}`, '--ssh-transport=carried', '-n', String(n)];
  const pushed = await runFcp([...args, 'push', src, `${s.alias}:${remote}/`], { env });
  assert.is(pushed.code, 0, describeRun(pushed));
  assert.equal(await compareTrees(src, path.join(remote, 'src')), []);
}

test("carried: each connection's ssh runs with glibc malloc tunables, a user's own GLIBC_TUNABLES kept", async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  const logged = loggingSsh();
  const command = s.sshCommand.replace(/^ssh /, `${logged.ssh} `);
  await pushCarried(s, command, 3);
  const forwards = logged.runs().filter((r) => r.way === 'forward');
  assert.is(forwards.length, 3, JSON.stringify(logged.runs()));
  // A GLIBC_TUNABLES the tests themselves run with counts as the user's own.
  const inherited = process.env['GLIBC_TUNABLES'];
  assert.equal([...new Set(forwards.map((r) => r.tunables))], [inherited ?? CARRIED_SSH_TUNABLES]);
  // The bootstrap's ssh is not a data connection: left as the user runs it.
  assert.equal(
    logged
      .runs()
      .filter((r) => r.way === 'other')
      .map((r) => r.tunables),
    [inherited ?? 'unset'],
  );
  logged.clear();
  const theirs = 'glibc.malloc.tcache_count=7';
  await pushCarried(s, command, 2, { GLIBC_TUNABLES: theirs });
  const again = logged.runs().filter((r) => r.way === 'forward');
  assert.equal([...new Set(again.map((r) => r.tunables))], [theirs]);
});

test("carried: an ssh config's Compression yes is off for the data connections, -C in --ssh still on", async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  const logged = loggingSsh();
  const config = s.configWith({ Compression: 'yes' });
  await pushCarried(s, `${logged.ssh} -F ${config}`, 2);
  const runs = logged.runs();
  assert.equal(
    runs.filter((r) => r.way === 'forward').map((r) => r.compression),
    ['no', 'no'],
  );
  assert.equal(
    runs.filter((r) => r.way === 'other').map((r) => r.compression),
    ['yes'],
    "the bootstrap's ssh as configured",
  );
  logged.clear();
  await pushCarried(s, `${logged.ssh} -C -F ${config}`, 2);
  assert.equal(
    logged
      .runs()
      .filter((r) => r.way === 'forward')
      .map((r) => r.compression),
    ['yes', 'yes'],
  );
});

test.run();
