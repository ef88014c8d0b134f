// fcp cancel ID from another process, against the real daemon: the transfer stops with exit 130 and says
// so; the receiver keeps its verified pieces (so the same command resumes) or, with --discard, removes its
// partial files, on either end; the daemon logs the session as cancelled; a second transfer running at the
// same time is left alone and completes.
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import { describeRun, parseSummary, runFcp } from '../helpers/cli.js';
import { eventually } from '../helpers/detached.js';
import { test } from '../helpers/test.js';
import { movingTo, privateState, servedTree, transferWhere } from '../helpers/transfers.js';
import { buildTree, compareTrees, listEntries } from '../helpers/tree.js';

const BIG = 16_000_000;
const { tmp, served, remote, daemon } = servedTree('fcp-e2e-cancel-', async (t) => {
  await buildTree(join(t.tmp, 'src'), [{ kind: 'file', path: 'big.bin', size: BIG }]);
  await buildTree(join(t.tmp, 'small'), [{ kind: 'file', path: 'four.bin', size: 4_000_000 }]);
  await buildTree(join(t.served, 'remote-src'), [{ kind: 'file', path: 'big.bin', size: BIG }]);
});
const src = join(tmp, 'src');
const small = join(tmp, 'small');

const PARTIAL = /\.fcp-(part|meta)$/;

/** Cancels the transfer to `destination` once it has moved 2 MiB (two pieces written); returns its id. */
async function cancelOnceMoving(
  dir: string,
  env: Record<string, string>,
  destination: string,
  more: string[] = [],
) {
  const t = await transferWhere(
    dir,
    `the transfer to ${destination} to move`,
    movingTo(destination, 2 << 20),
  );
  const r = await runFcp(['cancel', t.id, ...more], { env });
  assert.is(r.code, EXIT.OK, describeRun(r));
  assert.is(r.stdout + r.stderr, '', describeRun(r));
  return t.id;
}

test('cancel stops a push (exit 130), leaves a second one alone, and the daemon keeps the pieces', async () => {
  const state = privateState();
  const cancelled = runFcp(['push', '--bwlimit', '4M', '-n', '4', `${src}/`, remote('kept/')], {
    env: state.env,
  });
  const other = runFcp(['push', '--bwlimit', '2M', `${small}/`, remote('other/')], { env: state.env });
  await cancelOnceMoving(state.dir, state.env, 'kept/');
  const r = await cancelled;
  assert.is(r.code, EXIT.INTERRUPTED, describeRun(r));
  assert.is(r.stderr, 'fcp: transfer cancelled\n', describeRun(r));
  const partials = (await listEntries(join(served, 'kept'))).filter((e) => PARTIAL.test(e));
  assert.is(partials.length, 2, `the part and its meta: ${partials.join(', ')}`);
  assert.ok(
    daemon().logs.some((l) => /push: session cancelled by the client: transfer cancelled \(/.test(l)),
    daemon().logs.join('\n'),
  );

  const o = await other;
  assert.is(o.code, EXIT.OK, describeRun(o));
  assert.equal(await compareTrees(small, join(served, 'other')), []);

  // The same command resumes from the kept pieces.
  const again = await runFcp(['push', `${src}/`, remote('kept/')], { env: state.env });
  assert.is(again.code, EXIT.OK, describeRun(again));
  assert.match(again.stdout, /resumed \(not sent again\)/, describeRun(again));
  assert.equal(await compareTrees(src, join(served, 'kept')), []);
  assert.is(parseSummary(again.stdout)?.sent, 1);
});

test('cancel --discard of a push: the daemon removes its partial files', async () => {
  const state = privateState();
  const run = runFcp(['push', '--bwlimit', '4M', '-n', '4', `${src}/`, remote('discarded/')], {
    env: state.env,
  });
  await cancelOnceMoving(state.dir, state.env, 'discarded/', ['--discard']);
  const r = await run;
  assert.is(r.code, EXIT.INTERRUPTED, describeRun(r));
  assert.is(r.stderr, 'fcp: transfer cancelled, partial files discarded\n', describeRun(r));
  // The daemon discards as it handles the ABORT, which the client does not wait for.
  await eventually(5000, "the daemon's log line", () =>
    daemon().logs.some((l) => /push: session cancelled by the client: .*discarded/.test(l)),
  );
  await eventually(
    5000,
    'the partials to go',
    async () => (await listEntries(join(served, 'discarded'))).length === 0,
  );
});

test('cancel of a pull keeps the local pieces; --discard removes them', async () => {
  const state = privateState();
  const kept = join(tmp, 'pull-kept');
  const run = runFcp(['pull', '--bwlimit', '4M', '-n', '4', remote('remote-src/'), `${kept}/`], {
    env: state.env,
  });
  await cancelOnceMoving(state.dir, state.env, kept);
  assert.is((await run).code, EXIT.INTERRUPTED);
  assert.is((await listEntries(kept)).filter((e) => PARTIAL.test(e)).length, 2);

  const gone = join(tmp, 'pull-discarded');
  const run2 = runFcp(['pull', '--bwlimit', '4M', '-n', '4', remote('remote-src/'), `${gone}/`], {
    env: state.env,
  });
  await cancelOnceMoving(state.dir, state.env, gone, ['--discard']);
  const r = await run2;
  assert.is(r.code, EXIT.INTERRUPTED, describeRun(r));
  assert.equal(await listEntries(gone), []);
  assert.ok(
    daemon().logs.some((l) => /pull: session cancelled by the client/.test(l)),
    daemon().logs.join('\n'),
  );
});

test('cancel of an unknown id is one line and exit 1', async () => {
  const state = privateState();
  const r = await runFcp(['cancel', 'ffffffffffff'], { env: state.env });
  assert.is(r.code, EXIT.USAGE, describeRun(r));
  assert.is(r.stderr, 'fcp: no transfer ffffffffffff (fcp status lists the running ones)\n');
});

test.run();
