// Regression for a review finding of session 11: the globs of a pull (--include/--exclude, and the glob
// segments of the source spec) are matched on the daemon, and micromatch compiled them into backtracking
// regexes. An authenticated client sending '*a*a*a*a*a*a*a*a*b' froze fcpd's event loop on any served name
// of ~40+ characters ('*a' x6 '*b' against 60 characters took 10.7 s, 8 stars ran past 60 s): a second
// client's pull then failed ("accepted the connection but did not answer within 10 s") and SIGTERM went
// unheard. fcpd now matches with src/transfer/glob-match.ts, whose cost is bounded by name x pattern.
//
// Regression for a review finding of session 12: the glob segments of a pull's source were expanded one
// (segment, directory) pair at a time, each reading and lstat'ing its directory again, so
// `(**/*/)x80 nomatch` (402 bytes) cost fcpd ~160 s of CPU over 1,661 directories, and went on after the
// client had given up. It is now one walk (src/transfer/store/glob-expansion.ts) with a work budget, and it
// stops when the requesting connection closes.
//
// Each hostile pull runs as a child fcp with a bounded time; the daemon is a child too, and its stop
// SIGKILLs it after a bounded wait, so the old code fails these assertions instead of hanging the run.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { describeRun, FCP_BIN, runFcp, spawnNode } from '../helpers/cli.js';
import { type ChildDaemon, spawnDaemon, within } from '../helpers/daemon.js';

/** A pull of this small tree takes about a second; the old daemon was still frozen after a minute. */
const PULL_LIMIT_MS = 15_000;
const LONG_A = 'a'.repeat(60);
const A_THEN_B = `${'a'.repeat(59)}b`;
const X_THEN_HASH = `${'x'.repeat(59)}#`;
const STARS_A_B = '*a*a*a*a*a*a*a*a*b';
const STARS_ANY_HASH = '*?*?*?*?*?*?*?*?*?*?*#';

/** Chains of directories deep enough for '**' patterns to branch; the old daemon took minutes over them. */
const CHAINS = 3;
const CHAIN_DEPTH = 100;
const FILES_PER_LEVEL = 40;
/** Directories of the tree a client leaves while the daemon expands it. */
const WIDE_DIRS = 5000;
const LOG_WAIT_MS = 15_000;

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-glob-'));
const served = join(tmp, 'served');
let daemon: ChildDaemon | undefined;
let pulls = 0;

test.before(async () => {
  mkdirSync(join(served, 'tree'), { recursive: true });
  for (const name of [LONG_A, A_THEN_B, X_THEN_HASH, 'plain.txt']) {
    writeFileSync(join(served, 'tree', name), `${name}\n`);
  }
  makeChains(join(served, 'chains'));
  makeWide(join(served, 'wide'));
  // -v: the log names the names it skips during the expansion, which tells a test it has begun.
  daemon = await spawnDaemon({ root: served, args: ['-v'] });
});

/** CHAINS chains a/a/a/... CHAIN_DEPTH deep, FILES_PER_LEVEL files at each level. */
function makeChains(dir: string): void {
  for (let c = 0; c < CHAINS; c++) {
    let level = join(dir, `c${c}`);
    for (let d = 0; d < CHAIN_DEPTH; d++) {
      level = join(level, 'a');
      mkdirSync(level, { recursive: true });
      for (let f = 0; f < FILES_PER_LEVEL; f++) writeFileSync(join(level, `f${f}`), '');
    }
  }
}

/** WIDE_DIRS empty directories, after a name that is not UTF-8 (a warning when the expansion reads it). */
function makeWide(dir: string): void {
  mkdirSync(dir);
  writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0xff])]), '');
  for (let i = 0; i < WIDE_DIRS; i++) mkdirSync(join(dir, `d${i}`));
}

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

test('a long run of **/*/ is answered at once, while another client pulls', async () => {
  const dest = join(tmp, 'stars-run');
  mkdirSync(dest);
  const spec = `chains/${'**/*/'.repeat(80)}nomatch`;
  const hostile = runFcp(['pull', '-q', '--retries', '0', daemon!.remote(spec), `${dest}/`], {
    timeoutMs: PULL_LIMIT_MS,
  });
  const [r, other] = await Promise.all([hostile, pull('tree/plain.txt')]);
  assert.is(r.timedOut, false, `no answer within ${PULL_LIMIT_MS} ms: ${describeRun(r)}`);
  assert.is(r.code, 2, describeRun(r));
  assert.is(r.stderr, `fcp: no match for ${spec}\n`, describeRun(r));
  assert.equal(other, ['plain.txt']);
});

test('a pattern that needs too much work is refused in one line naming it', async () => {
  const dest = join(tmp, 'over-budget');
  mkdirSync(dest);
  const spec = `chains/${'**/a/'.repeat(60)}nomatch`;
  const r = await runFcp(['pull', '-q', '--retries', '0', daemon!.remote(spec), `${dest}/`], {
    timeoutMs: PULL_LIMIT_MS,
  });
  assert.is(r.timedOut, false, `no answer within ${PULL_LIMIT_MS} ms: ${describeRun(r)}`);
  assert.is(r.code, 6, describeRun(r));
  assert.match(r.stderr, /^fcp: pattern "chains\/(\*\*\/a\/){60}nomatch" takes too much work [^\n]*\n$/);
});

test('the expansion stops when its client leaves', async () => {
  const dest = join(tmp, 'left');
  mkdirSync(dest);
  const from = daemon!.stderr().length;
  const client = spawnNode(FCP_BIN, [
    'pull',
    '-q',
    '--retries',
    '0',
    daemon!.remote('wide/**/nomatch'),
    `${dest}/`,
  ]);
  // The name that is not UTF-8 is the first thing the expansion meets: it has begun.
  await daemonLogs(from, /FCP_ERR_PATH_ENCODING/);
  client.kill('SIGKILL');
  const refused = await daemonLogs(from, /session refused: ([^\n]*)\n/);
  const m =
    /^FCP_ERR_NET_CLOSED: the client left; stopped expanding "wide\/\*\*\/nomatch" \(after reading (\d+) directories\)$/.exec(
      refused[1]!,
    );
  assert.ok(m !== null, daemon!.stderr().slice(from));
  // A full expansion reads WIDE_DIRS + 1 directories.
  assert.ok(Number(m[1]) < WIDE_DIRS, m[0]);
});

/** Waits (bounded) for the daemon's log after offset `from` to match `re`. */
async function daemonLogs(from: number, re: RegExp): Promise<RegExpExecArray> {
  const stderr = daemon!.child.stderr!;
  const seen = new Promise<RegExpExecArray>((resolve) => {
    const check = () => {
      const m = re.exec(daemon!.stderr().slice(from));
      if (m === null) return;
      stderr.off('data', check);
      resolve(m);
    };
    stderr.on('data', check);
    check();
  });
  const m = await within(seen, LOG_WAIT_MS);
  assert.ok(
    m !== undefined,
    `no ${re} in the daemon's log within ${LOG_WAIT_MS} ms:\n${daemon!.stderr().slice(from)}`,
  );
  return m;
}

test('after them, another client pulls', async () => {
  assert.equal(await pull('tree/plain.txt'), ['plain.txt']);
});

test('the daemon stops on SIGTERM', async () => {
  const how = await daemon!.stop('SIGTERM');
  assert.equal(how, { code: 0, signal: null }, daemon!.stderr());
});

test.run();
