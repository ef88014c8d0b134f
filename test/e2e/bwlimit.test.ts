// --bwlimit end to end: the real client against a real daemon, several connections, both directions. The
// test computes the average rate from the bytes and the run's elapsed time and checks it against the cap:
// an upper bound only (1.15x), which a slow machine can only make easier. A bad RATE is one line and exit 1.
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import { describeRun, parseSummary, runFcp } from '../helpers/cli.js';
import { test } from '../helpers/test.js';
import { servedTree } from '../helpers/transfers.js';
import { buildTree, compareTrees } from '../helpers/tree.js';

const CAP = 4_000_000;
const FILES = 6;
const FILE_BYTES = 2_000_000;
const TOTAL = FILES * FILE_BYTES;

const { tmp, served, remote } = servedTree('fcp-e2e-bwlimit-', (t) =>
  buildTree(
    join(t.tmp, 'src'),
    Array.from({ length: FILES }, (_, i) => ({ kind: 'file' as const, path: `f${i}.bin`, size: FILE_BYTES })),
  ),
);
const src = join(tmp, 'src');

/** Runs fcp with --bwlimit and checks that the whole tree went at no more than 1.15 x CAP on average. */
async function cappedRun(args: string[], from: string, to: string): Promise<void> {
  const r = await runFcp(['--bwlimit', '4M', '-n', '4', '--retries', '0', ...args], { timeoutMs: 60_000 });
  assert.is(r.code, EXIT.OK, describeRun(r));
  assert.is(parseSummary(r.stdout)?.sent, FILES, describeRun(r));
  assert.equal(await compareTrees(from, to), []);
  const rate = TOTAL / (r.durationMs / 1000);
  assert.ok(
    rate <= CAP * 1.15,
    `${TOTAL} bytes in ${Math.round(r.durationMs)} ms is ${Math.round(rate)} B/s`,
  );
}

test('push with --bwlimit over 4 connections stays under the cap', async () => {
  await cappedRun(['push', `${src}/`, remote('pushed/')], src, join(served, 'pushed'));
});

test('pull with --bwlimit over 4 connections stays under the cap', async () => {
  const dest = join(tmp, 'pulled');
  await cappedRun(['pull', remote('pushed/'), `${dest}/`], join(served, 'pushed'), dest);
});

test('a bad RATE is one line naming --bwlimit, exit 1', async () => {
  for (const bad of ['fast', '0', '10X']) {
    const r = await runFcp(['push', '--bwlimit', bad, src, remote('x/')]);
    assert.is(r.code, EXIT.USAGE, describeRun(r));
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.is(lines.length, 1, describeRun(r));
    assert.match(lines[0]!, /^fcp: --bwlimit wants bytes per second .*"/, describeRun(r));
    assert.is(r.stdout, '');
  }
});

test.run();
