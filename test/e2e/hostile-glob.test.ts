// Regression for a review finding of session 11: the globs of a pull (--include/--exclude, and the glob
// segments of the source spec) are matched on the daemon, and micromatch compiled them into backtracking
// regexes. An authenticated client sending '*a*a*a*a*a*a*a*a*b' froze fcpd's event loop on any served name
// of ~40+ characters ('*a' x6 '*b' against 60 characters took 10.7 s, 8 stars ran past 60 s): a second
// client's pull then failed ("accepted the connection but did not answer within 10 s") and SIGTERM went
// unheard. fcpd now matches with src/transfer/glob-match.ts, whose cost is bounded by name x pattern.
//
// Each hostile pull runs as a child fcp with a bounded time; the daemon is a child too, and its stop
// SIGKILLs it after a bounded wait, so the old code fails these assertions instead of hanging the run.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { describeRun, runFcp } from '../helpers/cli.js';
import { type ChildDaemon, spawnDaemon } from '../helpers/daemon.js';

/** A pull of this small tree takes about a second; the old daemon was still frozen after a minute. */
const PULL_LIMIT_MS = 15_000;
const LONG_A = 'a'.repeat(60);
const A_THEN_B = `${'a'.repeat(59)}b`;
const X_THEN_HASH = `${'x'.repeat(59)}#`;
const STARS_A_B = '*a*a*a*a*a*a*a*a*b';
const STARS_ANY_HASH = '*?*?*?*?*?*?*?*?*?*?*#';

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-glob-'));
const served = join(tmp, 'served');
let daemon: ChildDaemon | undefined;
let pulls = 0;

test.before(async () => {
  mkdirSync(join(served, 'tree'), { recursive: true });
  for (const name of [LONG_A, A_THEN_B, X_THEN_HASH, 'plain.txt']) {
    writeFileSync(join(served, 'tree', name), `${name}\n`);
  }
  daemon = await spawnDaemon({ root: served });
});

test.after(async () => {
  await daemon?.stop('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

/** Pulls `spec` with `args` into a new, existing directory; asserts it finished in time and returns what arrived. */
async function pull(spec: string, args: readonly string[] = []): Promise<string[]> {
  const dest = join(tmp, `pulled-${++pulls}`);
  mkdirSync(dest);
  const r = await runFcp(['pull', '-q', '--retries', '0', ...args, daemon!.remote(spec), `${dest}/`], {
    timeoutMs: PULL_LIMIT_MS,
  });
  assert.is(r.timedOut, false, `the pull did not finish within ${PULL_LIMIT_MS} ms: ${describeRun(r)}`);
  assert.is(r.code, 0, describeRun(r));
  return readdirSync(dest).sort();
}

test('an --include with many stars is answered, and selects what it says', async () => {
  assert.equal(await pull('tree/', ['--include', STARS_A_B]), [A_THEN_B]);
  assert.equal(await pull('tree/', ['--include', STARS_ANY_HASH]), [X_THEN_HASH]);
});

test('an --exclude with many stars is answered', async () => {
  assert.equal(await pull('tree/', ['--exclude', STARS_A_B]), [LONG_A, X_THEN_HASH, 'plain.txt'].sort());
});

test('a source glob with many stars is answered', async () => {
  assert.equal(await pull(`tree/${STARS_A_B}`), [A_THEN_B]);
});

test('a source glob the daemon cannot take is refused in one line naming it', async () => {
  const dest = join(tmp, 'refused');
  mkdirSync(dest);
  const r = await runFcp(['pull', '-q', '--retries', '0', daemon!.remote('tree/a*(b)'), `${dest}/`], {
    timeoutMs: PULL_LIMIT_MS,
  });
  assert.is(r.code, 1, describeRun(r));
  assert.match(r.stderr, /^fcp: .*invalid pattern "a\*\(b\)": extglobs[^\n]*\n$/, describeRun(r));
});

test('after them, another client pulls', async () => {
  assert.equal(await pull('tree/plain.txt'), ['plain.txt']);
});

test('the daemon stops on SIGTERM', async () => {
  const how = await daemon!.stop('SIGTERM');
  assert.equal(how, { code: 0, signal: null }, daemon!.stderr());
});

test.run();
