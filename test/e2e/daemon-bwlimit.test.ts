// fcpd --bwlimit RATE: one rate limiter (transport/rate-limit.ts, as fcp's own --bwlimit) shared by every
// session of the daemon, both directions. A push and a pull run at once through a daemon whose limiter
// records what it is asked for: every byte of both files passes through that one bucket, and by its own
// accounting no byte was let go before the cap allowed it (no wall-clock assertion). Then the option as a
// user meets it: a bad rate is one line and exit 1; the config file key; --help.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import { burstFor, RateLimit } from '../../src/transport/rate-limit.js';
import { describeRun, runFcp, runFcpd } from '../helpers/cli.js';
import { startInProcessDaemon } from '../helpers/daemon.js';
import { MiB, writeRandomFile } from '../helpers/reliability.js';
import { test } from '../helpers/test.js';
import { removeTree } from '../helpers/tree.js';

const RATE = 4_000_000;
const SIZE = 3 * MiB + 11;

/** The shared limiter, recording each reservation: when, how many bytes, and when they may go. */
class RecordingLimit extends RateLimit {
  readonly taken: Array<{ atMs: number; bytes: number; goMs: number }> = [];
  readonly startMs = performance.now();

  override reserve(bytes: number): number {
    const atMs = performance.now();
    const waitMs = super.reserve(bytes);
    this.taken.push({ atMs, bytes, goMs: atMs + waitMs });
    return waitMs;
  }
}

const tmp = mkdtempSync(path.join(tmpdir(), 'fcp-e2e-daemon-bwlimit-'));
test.after(() => removeTree(tmp));

test('one cap for the whole daemon: a push and a pull at once both pay into it, and it is kept', async () => {
  const served = path.join(tmp, 'served');
  mkdirSync(served);
  await writeRandomFile(path.join(served, 'out.bin'), SIZE);
  await writeRandomFile(path.join(tmp, 'in.bin'), SIZE);
  const limit = new RecordingLimit(RATE);
  const d = await startInProcessDaemon({ root: served, more: { rateLimit: limit } });
  try {
    const [push, pull] = await Promise.all([
      runFcp(['push', '-n', '2', path.join(tmp, 'in.bin'), d.remote('in.bin')]),
      runFcp(['pull', '-n', '2', d.remote('out.bin'), path.join(tmp, 'pulled.bin')]),
    ]);
    assert.is(push.code, 0, describeRun(push));
    assert.is(pull.code, 0, describeRun(pull));
  } finally {
    await d.stop();
  }
  assert.equal(readFileSync(path.join(served, 'in.bin')), readFileSync(path.join(tmp, 'in.bin')));
  assert.equal(readFileSync(path.join(tmp, 'pulled.bin')), readFileSync(path.join(served, 'out.bin')));
  // Both files' data went through the one bucket (frame headers may add a little).
  const total = limit.taken.reduce((sum, t) => sum + t.bytes, 0);
  assert.ok(total >= 2 * SIZE, `the limiter saw ${total} bytes of ${2 * SIZE}`);
  // By the limiter's accounting, what it had let go by any moment is within the burst plus the rate since
  // it was made: the cap held across both sessions.
  let sent = 0;
  for (const t of [...limit.taken].sort((a, b) => a.goMs - b.goMs)) {
    sent += t.bytes;
    const allowed = burstFor(RATE) + (RATE * (t.goMs - limit.startMs)) / 1000;
    assert.ok(sent <= allowed + 1, `${sent} bytes let go by ${t.goMs - limit.startMs} ms, cap ${allowed}`);
  }
});

test('fcpd --bwlimit with a bad rate: one line naming it, exit 1', async () => {
  const r = await runFcpd(['--port', '0', '--bwlimit', 'fast']);
  assert.is(r.code, EXIT.USAGE, describeRun(r));
  assert.is(r.stderr, 'fcpd: --bwlimit wants bytes per second like 10M, 500k, 1.5G or 64Mi, not "fast"\n');
});

test('the one-session fcpd refuses --bwlimit rather than ignore it (the client caps that session)', async () => {
  const r = await runFcpd(['--serve-once', '--bwlimit', '1M']);
  assert.is(r.code, EXIT.USAGE, describeRun(r));
  assert.is(r.stderr, 'fcpd: --serve-once cannot be combined with --bwlimit\n');
});

test('bwlimit in the config file, and in --help', async () => {
  const conf = path.join(tmp, 'fcpd.conf');
  writeFileSync(conf, 'bwlimit = "50M"\n', { mode: 0o600 });
  const r = await runFcpd(['--config', conf, '--print-config']);
  assert.is(r.code, 0, describeRun(r));
  assert.match(r.stdout, new RegExp(`^bwlimit += "50M" +# ${conf.replace(/[.]/g, '\\.')}:1$`, 'm'));
  const help = await runFcpd(['--help']);
  assert.match(
    help.stdout,
    /--bwlimit +cap the daemon's file data at RATE bytes\/s, all\s+sessions and both directions/,
  );
});

test.run();
