// fcp over ssh (issue 17), the ends of a session: the remote fcpd killed mid-transfer (the retry starts a
// new one through ssh and resumes the kept partial file, as with a standing daemon), and the client killed
// mid-transfer (every ssh's stdin closes, the remote fcpd goes, nothing of it is left on either side).
import { readdirSync } from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { describeRun } from '../helpers/cli.js';
import {
  MiB,
  partialOf,
  recordedPieces,
  sha256File,
  startFcp,
  summaryBytes,
  waitUntil,
  writeRandomFile,
} from '../helpers/reliability.js';
import { cleanUp, localProcessesNaming, sshd, tempDir } from '../helpers/ssh-fcp.js';
import type { PrivateSshd } from '../helpers/sshd.js';
import { test } from '../helpers/test.js';

test.after.each(cleanUp);

const BIG = 160 * MiB + 7;
/** Pieces the receiver must have recorded before the kill: enough that the resume has something to keep. */
const KILL_AFTER_PIECES = 8;

/** A big file to push, and where it lands on the "remote". */
async function bigPush(): Promise<{ file: string; remote: string; dest: string }> {
  const file = path.join(tempDir(), 'big.bin');
  await writeRandomFile(file, BIG);
  const remote = tempDir('fcp-ssh-remote-');
  return { file, remote, dest: path.join(remote, 'big.bin') };
}

/** Waits until the receiver has recorded KILL_AFTER_PIECES pieces of `dest`. */
async function midTransfer(dest: string): Promise<void> {
  const { meta } = partialOf(dest);
  await waitUntil(
    async () => (await recordedPieces(meta)).length >= KILL_AFTER_PIECES,
    'pieces recorded',
    60_000,
  );
}

function serveOnceProcesses(s: PrivateSshd) {
  // The fcpd itself (node running the bundle), not a shell around it (--remote-fcpd runs under sh).
  return s.listRemoteProcesses().filter((p) => /fcpd\.js .*--serve-once/.test(p.command));
}

/** How each variant reaches the remote fcpd: forced direct, forced carried, and auto behind a "firewall". */
const VARIANTS: Array<[string, string[]]> = [
  ['direct', ['--ssh-transport=direct']],
  ['carried', ['--ssh-transport=carried']],
  // The remote fcpd listens where the client cannot reach it: auto falls back to carried, and the retry
  // remembers that instead of probing again.
  ['auto, unreachable port', ['--remote-fcpd', 'fcpd --bind 127.0.0.3']],
];

for (const [name, transport] of VARIANTS) {
  test(`${name}: the remote fcpd killed mid-transfer; the retry starts another and resumes`, async () => {
    const s = await sshd({ path: { fcpd: true, node: true } });
    const { file, remote, dest } = await bigPush();
    const args = [`--ssh=${s.sshCommand}`, ...transport, '--retry-wait', '0.1'];
    const run = startFcp([...args, 'push', file, `${s.alias}:${remote}/`], 120_000);
    await midTransfer(dest);
    const [victim, ...more] = serveOnceProcesses(s);
    assert.ok(victim !== undefined && more.length === 0, JSON.stringify(s.listRemoteProcesses()));
    process.kill(victim.pid, 'SIGKILL');
    const r = await run.done;
    assert.is(r.code, 0, describeRun(r));
    assert.match(r.stderr, /retrying in/);
    assert.is(await sha256File(dest), await sha256File(file));
    assert.ok((summaryBytes(r.stdout)?.resumed ?? 0) > 0, `resumed, not sent again: ${r.stdout}`);
    const carriedLines = r.stderr.match(/carrying the data through ssh/g)?.length ?? 0;
    assert.is(carriedLines, name.startsWith('auto') ? 1 : 0, r.stderr);
  });
}

for (const signal of ['SIGKILL', 'SIGINT'] as const) {
  test(`the client stopped by ${signal} mid-transfer (carried): every ssh ends, the remote fcpd exits`, async () => {
    const s = await sshd({ path: { fcpd: true, node: true } });
    const { file, remote, dest } = await bigPush();
    const args = [`--ssh=${s.sshCommand}`, '--ssh-transport=carried', '-n', '4'];
    // fcp gets a TMPDIR of its own, so the forwardings' directories seen here are this run's only, whatever
    // else (another test run) shares /tmp.
    const fcpTmp = tempDir('fcp-ssh-tmp-');
    const forwardDirs = () => readdirSync(fcpTmp).filter((name) => name.startsWith('fcp-fwd-'));
    const run = startFcp([...args, 'push', file, `${s.alias}:${remote}/`], 120_000, { TMPDIR: fcpTmp });
    await midTransfer(dest);
    assert.ok(localProcessesNaming(s.dir).length >= 2, 'the bootstrap ssh and the carrying ones run');
    assert.is(forwardDirs().length, 1, "the forwardings have their private directory in fcp's TMPDIR");
    run.child.kill(signal);
    const r = await run.done;
    if (signal === 'SIGINT') assert.is(r.code, 130, describeRun(r));
    // SIGKILL gives fcp no chance to end anything: its ssh children see their stdin close, and that is
    // enough. cleanUp() checks the same again (and fails the test if something is left).
    await waitUntil(() => s.listRemoteProcesses().length === 0, 'the remote side to empty', 15_000);
    await waitUntil(() => localProcessesNaming(s.dir).length === 0, 'the local ssh processes to end', 15_000);
    // The forwardings' sockets and their private directory go with their ssh, even after a SIGKILL.
    await waitUntil(() => forwardDirs().length === 0, 'the socket directory to go', 15_000);
    const { meta } = partialOf(dest);
    assert.ok((await recordedPieces(meta)).length >= KILL_AFTER_PIECES, 'the partial file is kept');
  });
}

test.run();
