// fcp over ssh, carried: the cipher each ssh negotiated, seen by a logging ssh wrapper (`--ssh=WRAPPER -F
// CONFIG`) that runs every ssh but the `-G` queries with `-v -E FILE` and reads the negotiated cipher back
// from that debug log ("kex: client->server cipher: ..."). With ssh's default cipher list and a CPU with AES
// instructions the data connections negotiate AES-GCM; a config's own Ciphers, or `-c`, is kept; the
// bootstrap's ssh is left alone. Files compared byte for byte; nothing left running after each test.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { aesGcmFirst, ciphersFromConfig, cpuHasAes } from '../../src/client/ssh-ciphers.js';
import { describeRun, runFcp } from '../helpers/cli.js';
import { MiB, writeRandomFile } from '../helpers/reliability.js';
import { cleanUp, sshd, tempDir } from '../helpers/ssh-fcp.js';
import { execFileSync } from '../helpers/sync.js';
import { test } from '../helpers/test.js';
import { compareTrees } from '../helpers/tree.js';

test.after.each(cleanUp);

const CHACHA = 'chacha20-poly1305@openssh.com';
const AES128_GCM = 'aes128-gcm@openssh.com';

/**
 * What ssh negotiates with the private sshd (which keeps OpenSSH's default list) as this ssh runs by
 * default, and what carried connections should negotiate: the first of the list fcp gives them.
 */
async function expectedCiphers(): Promise<{ stock: string; carried: string }> {
  const output = execFileSync('ssh', ['-F', '/dev/null', '-G', 'x'], { encoding: 'utf8' });
  const list = ciphersFromConfig(output)!;
  const reordered = (await cpuHasAes()) ? (aesGcmFirst(list) ?? list) : list;
  return { stock: list[0]!, carried: reordered[0]! };
}

/** One ssh the wrapper ran (not the -G queries): what it was for, and the cipher it negotiated. */
interface SshRun {
  way: 'forward' | 'relay' | 'bootstrap';
  cipher: string;
  /** Whether its command line held ` -c ` (the bootstrap's and a relay's do: `exec sh -c '...'`). */
  dashC: boolean;
}

/** A logging ssh (see the header); `runs()` reads what the ssh processes it ran negotiated. */
function cipherLoggingSsh(): { ssh: string; runs: () => SshRun[] } {
  const dir = tempDir('fcp-ssh-cipher-');
  const ssh = path.join(dir, 'ssh-logged');
  const script = [
    '#!/bin/sh',
    // -O: a request to a data connection's own master (ssh-prelogin.ts), no connection of its own.
    'case " $* " in *" -G "*|*" -O "*) exec ssh "$@" ;; *" -N "*) w=forward ;; *--stdio*) w=relay ;; *) w=bootstrap ;; esac',
    'case " $* " in *" -c "*) c=1 ;; *) c=0 ;; esac',
    `exec ssh -v -E '${dir}'/"log.$w.$c.$$" "$@"`,
    '',
  ].join('\n');
  writeFileSync(ssh, script, { mode: 0o755 });
  const runs = () =>
    readdirSync(dir)
      .filter((name) => name.startsWith('log.'))
      .map((name) => {
        const [, way, dashC] = name.split('.');
        const log = readFileSync(path.join(dir, name), 'utf8');
        const cipher = /kex: client->server cipher: (\S+)/.exec(log)?.[1] ?? 'none';
        return { way: way as SshRun['way'], cipher, dashC: dashC === '1' };
      });
  return { ssh, runs };
}

/** Pushes one 3 MiB file carried over `n` connections with `--ssh=SSH`; checks it arrived whole. */
async function pushCarried(alias: string, ssh: string, n: number) {
  const src = path.join(tempDir(), 'src');
  await writeRandomFile(src, 3 * MiB + 7);
  const remote = tempDir('fcp-ssh-remote-');
  const args = [`--ssh=${ssh}`, '--ssh-transport=carried', '-n', String(n)];
  const pushed = await runFcp([...args, 'push', src, `${alias}:${remote}/`]);
  assert.is(pushed.code, 0, describeRun(pushed));
  assert.equal(await compareTrees(src, path.join(remote, 'src')), []);
}

function ciphersOf(runs: SshRun[], way: SshRun['way']): string[] {
  return [...new Set(runs.filter((r) => r.way === way).map((r) => r.cipher))];
}

test("carried: with ssh's default ciphers the data connections negotiate AES-GCM, the bootstrap does not", async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  const logged = cipherLoggingSsh();
  await pushCarried(s.alias, `${logged.ssh} -F ${s.sshConfigFile}`, 3);
  const runs = logged.runs();
  assert.is(runs.filter((r) => r.way === 'forward').length, 3, JSON.stringify(runs));
  const expected = await expectedCiphers();
  // On this project's machines (OpenSSH 9, AES instructions): aes128-gcm, and chacha20 for the bootstrap.
  assert.equal(ciphersOf(runs, 'forward'), [expected.carried], JSON.stringify(runs));
  assert.equal(ciphersOf(runs, 'bootstrap'), [expected.stock], 'the bootstrap as ssh runs it');
});

test('carried, relayed through fcpd --stdio: the same cipher order', async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  const logged = cipherLoggingSsh();
  // A config that clears forwardings makes the data connections relay (ssh-dialer.ts).
  const config = s.configWith({ ClearAllForwardings: 'yes' });
  await pushCarried(s.alias, `${logged.ssh} -F ${config}`, 2);
  const runs = logged.runs();
  assert.is(runs.filter((r) => r.way === 'relay').length, 2, JSON.stringify(runs));
  assert.equal(ciphersOf(runs, 'relay'), [(await expectedCiphers()).carried]);
});

test("carried: a config's own Ciphers, or -c in --ssh, is what every ssh negotiates", async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  const logged = cipherLoggingSsh();
  const config = s.configWith({ Ciphers: `${CHACHA},${AES128_GCM}` });
  await pushCarried(s.alias, `${logged.ssh} -F ${config}`, 2);
  const runs = logged.runs();
  assert.is(runs.filter((r) => r.way === 'forward').length, 2, JSON.stringify(runs));
  assert.equal(ciphersOf(runs, 'forward'), [CHACHA]);
  assert.ok(
    runs.filter((r) => r.way === 'forward').every((r) => !r.dashC),
    'no -c added',
  );
  const chosen = cipherLoggingSsh();
  await pushCarried(s.alias, `${chosen.ssh} -c aes256-ctr -F ${s.sshConfigFile}`, 2);
  const mine = chosen.runs();
  assert.is(mine.filter((r) => r.way === 'forward').length, 2, JSON.stringify(mine));
  assert.equal(ciphersOf(mine, 'forward'), ['aes256-ctr']);
});

test.run();
