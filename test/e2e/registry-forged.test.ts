// A transfer registry under a user's HOME, read by root (`sudo -E fcp status`): its entries may be forged.
// A forged log path is never removed (only <dir>/<id>.log is); a forged pid (-1, 1, not an integer) is never
// signalled by `fcp cancel`; a registry directory that is a symlink is neither chmodded nor read.
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import { registryDir } from '../../src/client/transfer-registry.js';
import { initialStatus } from '../../src/client/transfer-status.js';
import { accountWithHome } from '../helpers/accounts.js';
import { describeRun, runFcp, track } from '../helpers/cli.js';
import { test } from '../helpers/test.js';
import { removeTree } from '../helpers/tree.js';
import { privateState, samplePush } from '../helpers/transfers.js';

const ID = 'abcdefabcdef';
/** Every directory these tests make, removed after them (searchable by the test account, as tmpdir() is). */
const tmp = mkdtempSync(join(tmpdir(), 'fcp-forged-'));
chmodSync(tmp, 0o755);

test.after(async () => {
  await removeTree(tmp);
});

function forged(fields: Record<string, unknown>): string {
  const description = samplePush(ID);
  return JSON.stringify({ ...initialStatus(description, process.pid), pid_start: '', ...fields });
}

test("a forged entry's log path is not removed by fcp status: only <dir>/<id>.log is", async () => {
  const state = privateState();
  mkdirSync(state.dir, { recursive: true, mode: 0o700 });
  const victim = join(mkdtempSync(join(tmp, 'log-')), 'precious');
  writeFileSync(victim, 'keep me');
  const entry = join(state.dir, `${ID}.json`);
  writeFileSync(entry, forged({ pid: process.pid, state: 'exited', exit_code: 0, log: victim }), {
    mode: 0o600,
  });
  // Finished long ago: fcp status expires it, with its log.
  const old = new Date(Date.now() - 2 * 60 * 60_000);
  utimesSync(entry, old, old);
  const ownLog = join(state.dir, `${ID}.log`);
  writeFileSync(ownLog, 'its own log');
  const r = await runFcp(['status', '--json'], { env: state.env });
  assert.is(r.code, EXIT.OK, describeRun(r));
  assert.ok(existsSync(victim), 'the file the entry named survives');
  assert.not.ok(existsSync(entry), 'the expired entry is gone');
  assert.not.ok(existsSync(ownLog), 'with the log fcp itself put beside it');
});

/** A process of `uid` that reports each signal it gets: SIGUSR2 would be fcp cancel's. */
function signalWitness(uid: number, gid: number): { got: () => Promise<string> } {
  const code =
    "process.on('SIGUSR2', () => process.stdout.write('SIGUSR2\\n'));" +
    "process.on('SIGTERM', () => { process.stdout.write('SIGTERM\\n'); process.exit(0); });" +
    "process.stdout.write('ready\\n'); setInterval(() => {}, 1e6);";
  const child = spawn(process.execPath, ['-e', code], { uid, gid, stdio: ['ignore', 'pipe', 'ignore'] });
  track(child);
  let out = '';
  const ready = new Promise<void>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out.includes('ready')) resolve();
    });
  });
  const ended = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    // Standard signals pending together are delivered lowest number first, so a SIGUSR2 (12) sent before
    // this SIGTERM (15) is seen before it: no wait is needed to know none came.
    got: async () => {
      await ready;
      child.kill('SIGTERM');
      await ended;
      return out;
    },
  };
}

for (const pid of [-1, 1, 1.5, '12']) {
  test(`fcp cancel of a forged entry with pid ${JSON.stringify(pid)} refuses and signals nothing`, async () => {
    const user = accountWithHome('fcpuser-s12local');
    const state = mkdtempSync(join(tmp, 'pid-'));
    chmodSync(state, 0o755);
    const dir = registryDir({ XDG_STATE_HOME: state });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, `${ID}.json`), forged({ pid }), { mode: 0o600 });
    for (const p of [join(state, 'fcp'), dir, join(dir, `${ID}.json`)]) chownSync(p, user.uid, user.gid);
    const witness = signalWitness(user.uid, user.gid);
    const r = await runFcp(['cancel', ID], { env: { XDG_STATE_HOME: state }, uid: user.uid, gid: user.gid });
    const got = await witness.got();
    assert.is(r.code, EXIT.USAGE, describeRun(r));
    assert.not.match(got, /SIGUSR2/);
  });
}

test('a registry directory that is a symlink is not chmodded and not read', async () => {
  const state = privateState();
  const target = mkdtempSync(join(tmp, 'target-'));
  chmodSync(target, 0o755);
  writeFileSync(join(target, `${ID}.json`), forged({ pid: process.pid }), { mode: 0o600 });
  mkdirSync(join(state.dir, '..'), { recursive: true });
  symlinkSync(target, state.dir);
  const listed = await runFcp(['status', '--json', '-v'], { env: state.env });
  assert.is(listed.code, EXIT.OK, describeRun(listed));
  assert.equal(JSON.parse(listed.stdout), []);
  assert.match(listed.stderr, /is a symbolic link: the transfer registry is ignored/);
  // --background makes the directory: it must refuse the link rather than chmod its target.
  const bg = await runFcp(['push', '--background', '/nonexistent-src', '127.0.0.1:1:dst'], {
    env: state.env,
  });
  assert.is.not(bg.code, EXIT.OK, describeRun(bg));
  assert.is(statSync(target).mode & 0o777, 0o755);
});

test.run();
