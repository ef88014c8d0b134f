// Issue 4, the daemon under load and over time: 20 client processes at once each get a verified tree;
// SIGTERM lets a running session finish before fcpd exits 0; and after hundreds of sessions the daemon's
// open descriptors are back where they started (its RSS is measured and printed, not asserted: the heap
// grows and shrinks as V8 pleases).
import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { pull, push } from '../../src/client/transfer-client.js';
import type { FcpError } from '../../src/protocol/errors.js';
import { createStats } from '../../src/transfer/stats.js';
import { describeRun } from '../helpers/cli.js';
import { clientOptions, freePort } from '../helpers/daemon.js';
import {
  bounded,
  type Fcpd,
  fdCount,
  leftoverTemporaries,
  MiB,
  partialOf,
  type RunningChild,
  recordedPieces,
  rssKiB,
  sessionEnds,
  sha256File,
  startFcp,
  startFcpd,
  waitUntil,
  writeRandomFile,
} from '../helpers/reliability.js';
import { buildTree, compareTrees, type EntrySpec, removeTree, timeAt } from '../helpers/tree.js';

/** Past the default per-test timeout: the runs inside are bounded at 90-120 s themselves. */
const SLOW = { timeoutMs: 180_000 };

const CLIENTS = 20;
const FILES_PER_TREE = 20;
const SEQUENTIAL_SESSIONS = 220;
/** Descriptors the daemon may hold above its starting level once idle again (a lazily opened log, etc.). */
const FD_SLACK = 4;

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-rel-daemon-'));
chmodSync(tmp, 0o755);
const state = join(tmp, 'state');
const children: RunningChild[] = [];

function tree(seed: number): EntrySpec[] {
  const specs: EntrySpec[] = [];
  for (let i = 0; i < FILES_PER_TREE; i++) {
    specs.push({
      kind: 'file',
      path: `${i % 4 === 0 ? `d${i % 3}/` : ''}f${i}.dat`,
      // One file of two pieces per tree, so piece indexes and multi-piece commits run concurrently too.
      size: i === 7 ? MiB + 4096 + seed : 200 + ((i * 7919 + seed * 131) % 30_000),
      seed: seed * 100 + i,
      mtime: timeAt(seed * 100 + i),
    });
  }
  return specs;
}

test.after.each(async () => {
  for (const c of children.splice(0)) await c.kill().catch(() => {});
});

test.after(async () => {
  await removeTree(tmp);
});

test(
  '20 concurrent sessions from separate client processes all complete with verified trees',
  async () => {
    const root = join(tmp, 'root-concurrent');
    mkdirSync(root);
    const srcs: string[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const src = join(tmp, 'concurrent', `src-${i}`);
      await buildTree(src, tree(i + 1));
      srcs.push(src);
    }
    const d = await startFcpd({ root, stateDir: state, args: ['--max-sessions', '32'] });
    children.push(d);
    try {
      const runs = srcs.map((src, i) => {
        const c = startFcp(['push', '-n', '3', `${src}/`, d.remote(`dest-${i}`)], 120_000);
        children.push(c);
        return c.done;
      });
      const results = await Promise.all(runs);
      for (const [i, r] of results.entries()) assert.is(r.code, 0, `client ${i}: ${describeRun(r)}`);
      for (const [i, src] of srcs.entries()) {
        const diffs = await compareTrees(src, join(root, `dest-${i}`));
        assert.equal(diffs, [], `dest-${i}:\n${diffs.join('\n')}`);
      }
      const ends = sessionEnds(d.stderr());
      assert.is(ends.length, CLIENTS, d.stderr());
      assert.ok(
        ends.every((e) => e.ok && e.sent === FILES_PER_TREE),
        d.stderr(),
      );
      assert.equal(await leftoverTemporaries(root), []);
    } finally {
      await d.stop();
    }
  },
  SLOW,
);

test(
  'SIGTERM with a session running: the session completes and fcpd exits 0',
  async () => {
    const root = join(tmp, 'root-sigterm');
    mkdirSync(root);
    const src = join(tmp, 'sigterm.bin');
    const size = 96 * MiB;
    await writeRandomFile(src, size);
    const hash = await sha256File(src);
    const port = await freePort();
    let d: Fcpd = await startFcpd({ root, stateDir: state, port });
    children.push(d);
    const first = d;
    // If the 10 s grace ran out on a slow machine, the daemon is restarted and the client's retry finishes.
    const client = startFcp(
      ['push', '-n', '4', '--retries', '6', '--retry-wait', '0.3', src, d.remote('f.bin')],
      90_000,
    );
    children.push(client);
    await waitUntil(
      async () => (await recordedPieces(partialOf(join(root, 'f.bin')).meta)).length >= 10,
      'the session to be under way',
      30_000,
    );
    first.child.kill('SIGTERM');
    const exit = await bounded(first.done, 20_000, 'fcpd to exit after SIGTERM');
    assert.is(exit.code, 0, describeRun(exit));
    assert.match(exit.stderr, /SIGTERM: no new connections; waiting/);
    if (client.child.exitCode === null) {
      d = await startFcpd({ root, stateDir: state, port });
      children.push(d);
    } else {
      // The common case: the grace period was enough and the first daemon saw the session through.
      assert.ok(sessionEnds(exit.stderr).at(-1)?.ok, exit.stderr);
    }
    const r = await client.done;
    assert.is(r.code, 0, describeRun(r));
    assert.is(await sha256File(join(root, 'f.bin')), hash);
    assert.equal(await leftoverTemporaries(root), []);
    const last = await d.stop();
    assert.is(last.code, 0, describeRun(last));
  },
  SLOW,
);

test(`after ${SEQUENTIAL_SESSIONS} sequential sessions the daemon's descriptors are back near their start`, async () => {
  const root = join(tmp, 'root-seq');
  mkdirSync(root);
  const src = join(tmp, 'seq-src');
  await buildTree(src, [
    { kind: 'file', path: 'a.txt', size: 100, seed: 1, mtime: timeAt(1) },
    { kind: 'file', path: 'sub/b.txt', size: 3000, seed: 2, mtime: timeAt(2) },
  ]);
  mkdirSync(join(tmp, 'seq-back'));
  const d = await startFcpd({ root, stateDir: state });
  children.push(d);
  try {
    const warnings: FcpError[] = [];
    const common = await clientOptions(d.port, 2, (e) => warnings.push(e));
    const session = async (i: number) => {
      // Mostly pushes to a new directory (every file written), every fourth a pull of one already there.
      if (i % 4 === 3) {
        const back = join(tmp, 'seq-back', String(i));
        await pull({ ...common, stats: createStats(performance.now()), source: `s${i - 1}/`, dest: back });
      } else {
        await push({ ...common, stats: createStats(performance.now()), sources: [`${src}/`], dest: `s${i}` });
      }
    };
    await bounded(session(0), 10_000, 'warm-up session');
    await waitUntil(() => sessionEnds(d.stderr()).length === 1, 'warm-up logged', 10_000);
    const fdBefore = fdCount(d.pid);
    const rssBefore = rssKiB(d.pid);
    for (let i = 1; i <= SEQUENTIAL_SESSIONS; i++) await bounded(session(i), 10_000, `session ${i}`);
    await waitUntil(
      () => sessionEnds(d.stderr()).length === SEQUENTIAL_SESSIONS + 1,
      'every session logged',
      10_000,
    );
    // The daemon closes its side when the client's FIN arrives; give those closes a bounded moment.
    let fdAfter = fdCount(d.pid);
    await waitUntil(
      () => {
        fdAfter = fdCount(d.pid);
        return fdAfter <= fdBefore + FD_SLACK;
      },
      `descriptors back near ${fdBefore}`,
      10_000,
      50,
    ).catch(() => {});
    const rssAfter = rssKiB(d.pid);
    console.log(
      `  fcpd after ${SEQUENTIAL_SESSIONS} sessions: fds ${fdBefore} -> ${fdAfter}, RSS ${Math.round(rssBefore / 1024)} MiB -> ${Math.round(rssAfter / 1024)} MiB`,
    );
    assert.ok(fdAfter <= fdBefore + FD_SLACK, `open descriptors ${fdBefore} before, ${fdAfter} after`);
    assert.equal(warnings, []);
    const ends = sessionEnds(d.stderr());
    assert.ok(
      ends.every((e) => e.ok),
      d.stderr(),
    );
    assert.equal(await compareTrees(src, join(root, `s${SEQUENTIAL_SESSIONS}`)), []);
  } finally {
    const exit = await d.stop();
    assert.is(exit.code, 0, describeRun(exit));
  }
});

test('a destination directory removed between two sessions is created again by the next push', async () => {
  // fcpd is long-lived; an operator may delete an old upload directory while it runs.
  const root = join(tmp, 'root-removed');
  mkdirSync(root);
  const src = join(tmp, 'removed-src');
  await buildTree(src, tree(99));
  const d = await startFcpd({ root, stateDir: state });
  children.push(d);
  try {
    const args = ['push', '-n', '2', `${src}/`, d.remote('uploads')];
    const first = await startFcp(args, 30_000).done;
    assert.is(first.code, 0, describeRun(first));
    await removeTree(join(root, 'uploads'));
    const again = await startFcp(args, 30_000).done;
    assert.is(again.code, 0, `the same push after the directory was removed: ${describeRun(again)}`);
    assert.equal(await compareTrees(src, join(root, 'uploads')), []);
  } finally {
    await d.stop();
  }
});

test.run();
