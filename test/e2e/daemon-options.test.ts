// fcpd's options as an operator meets them (issue 15): every documented option works with -d (item 6), a
// start-up error names what failed and leaves no pid file or token behind (item 7), and the default listener
// answers on IPv6 as well as IPv4 (item 15).
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import { describeRun, FCPD_BIN, runFcp, runFcpd, spawnNode } from '../helpers/cli.js';
import { freePort, HOST, within } from '../helpers/daemon.js';
import { isAlive, killIfStill, readPid, startedPid } from '../helpers/detached.js';
import { removeTree } from '../helpers/tree.js';

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-daemon-options-'));
chmodSync(tmp, 0o755);
const root = join(tmp, 'root');
mkdirSync(root);
const payload = join(tmp, 'payload.txt');
writeFileSync(payload, 'hello from the options test\n');
const detachedPids = new Set<number>();

test.after(async () => {
  for (const pid of detachedPids) {
    killIfStill(pid, 'fcpd');
  }
  await removeTree(tmp);
});

interface DetachCase {
  name: string;
  /** Options besides -d; PORT, STATE and TMP are replaced. */
  args: string[];
  /** Where the pid file and the log end up, when not where they go by default. */
  pidFile?: string;
  logFile?: string;
  /** What the log must say, showing that the option took effect. */
  logs?: RegExp;
  /** What the state directory must not hold. */
  absent?: string;
}

const DETACH_CASES: DetachCase[] = [
  { name: '--log-file', args: ['--log-file', 'TMP/own.log'], logFile: 'TMP/own.log' },
  { name: '--pid-file', args: ['--pid-file', 'TMP/own.pid'], pidFile: 'TMP/own.pid' },
  { name: '-v', args: ['-v'] },
  { name: '--port 0 --pid-file', args: ['--pid-file', 'TMP/zero.pid'], pidFile: 'TMP/zero.pid' },
  { name: '--bind', args: ['--bind', HOST], logs: /listening on 127\.0\.0\.1:/ },
  { name: '--root', args: ['--root', 'TMP/root'], logs: /serving \S+\/root,/ },
  { name: '--max-sessions', args: ['--max-sessions', '3'] },
  { name: '--max-connections', args: ['--max-connections', '5'] },
  { name: '--partial-max-age', args: ['--partial-max-age', '2'] },
  { name: '--authorized-keys', args: ['--authorized-keys', 'TMP/authorized_keys'] },
  { name: '--no-encryption', args: ['--no-encryption'], logs: /plaintext clients accepted/ },
  { name: '--no-local-token', args: ['--no-local-token'], absent: 'fcpd-token-PORT' },
];

for (const [i, c] of DETACH_CASES.entries()) {
  test(`fcpd -d ${c.name} starts, serves and stops`, async () => {
    const state = join(tmp, `state-${i}`);
    const port = c.name.startsWith('--port 0') ? 0 : await freePort();
    const fill = (s: string) =>
      s.replaceAll('PORT', String(port)).replaceAll('STATE', state).replaceAll('TMP', tmp);
    writeFileSync(join(tmp, 'authorized_keys'), '');
    const served = c.name === '--root' ? [] : ['--root', root];
    const args = ['-d', '--port', String(port), ...served, ...c.args.map(fill)];
    const pidFile = fill(c.pidFile ?? 'STATE/fcpd-PORT.pid');
    const logFile = fill(c.logFile ?? 'STATE/fcpd.log');
    const r = await runFcpd(args, { env: { FCPD_STATE_DIR: state }, timeoutMs: 20_000 });
    const pid = readPid(pidFile);
    for (const p of [pid, startedPid(r.stdout)]) if (p !== undefined) detachedPids.add(p);
    assert.is(r.code, 0, describeRun(r));
    assert.ok(pid !== undefined && isAlive(pid), `a live pid in ${pidFile}: ${describeRun(r)}`);
    assert.match(r.stdout, `log ${logFile}`);
    const log = await readFile(logFile, 'utf8');
    assert.match(log, `fcpd[${pid}] listening on`);
    if (c.logs !== undefined) assert.match(log, c.logs);
    if (c.absent !== undefined) assert.not.ok(existsSync(join(state, fill(c.absent))), fill(c.absent));

    const stopped = await runFcpd(['stop', '--pid-file', pidFile], { timeoutMs: 20_000 });
    assert.is(stopped.code, 0, describeRun(stopped));
    assert.not.ok(existsSync(pidFile), 'pid file removed');
  });
}

for (const detach of [false, true]) {
  test(`fcpd ${detach ? '-d ' : ''}--root /nonexistent names the path and leaves no pid file or token`, async () => {
    const state = join(tmp, `state-noroot-${detach}`);
    const port = await freePort();
    const args = [...(detach ? ['-d'] : []), '--port', String(port), '--root', '/nonexistent/fcp-root'];
    const r = await runFcpd(args, { env: { FCPD_STATE_DIR: state }, timeoutMs: 20_000 });
    const claimed = startedPid(r.stdout);
    if (claimed !== undefined) detachedPids.add(claimed);
    const where = describeRun(r);
    assert.is(r.code, EXIT.PATH, where);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.is(lines.length, 1, where);
    assert.match(lines[0]!, /^fcpd: .*\/nonexistent\/fcp-root/, where);
    assert.not.ok(existsSync(join(state, `fcpd-${port}.pid`)), `no stale pid file: ${where}`);
    assert.not.ok(existsSync(join(state, `fcpd-token-${port}`)), `no token: ${where}`);
  });
}

test('fcpd without --bind answers on IPv6 (::1) and IPv4 (127.0.0.1)', async () => {
  const state = join(tmp, 'state-v6');
  const child = spawnNode(FCPD_BIN, ['--port', '0', '--root', root], { env: { FCPD_STATE_DIR: state } });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const ready = /^fcpd listening on (\S+):(\d+)$/m;
    for (let i = 0; i < 200 && !ready.test(out) && child.exitCode === null; i++) await sleep(50);
    const m = ready.exec(out);
    assert.ok(m !== null, `readiness line: ${out}`);
    assert.is(m[1], '[::]');
    const port = m[2]!;
    const v6 = await runFcp(['push', payload, `[::1]:${port}:v6.txt`]);
    assert.is(v6.code, 0, describeRun(v6));
    const v4 = await runFcp(['push', payload, `${HOST}:${port}:v4.txt`]);
    assert.is(v4.code, 0, describeRun(v4));
    assert.is(readFileSync(join(root, 'v6.txt'), 'utf8'), 'hello from the options test\n');
    assert.is(readFileSync(join(root, 'v4.txt'), 'utf8'), 'hello from the options test\n');
  } finally {
    child.kill('SIGTERM');
  }
  assert.is(await within(exited, 15_000), 0);
});

test.run();
