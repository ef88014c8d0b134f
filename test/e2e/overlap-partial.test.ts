// Two sessions receiving the same destination at once (overlapping cron runs; spec/PROTOCOL.md §7.1
// "Overlapping sessions"): the second must not resume, truncate or rename the partial the first is still
// writing. Before the fix the second resumed the live `.NAME.fcp-part`, renamed it into place, and the first
// then failed "no such file" (exit 3). Both sessions of a standing daemon (one process) and two `fcp pull`
// into one directory (two processes); the second starts once the first's piece index records pieces.
import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import { link } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { describeRun, type RunResult } from '../helpers/cli.js';
import {
  leftoverTemporaries,
  MiB,
  partialOf,
  type RunningChild,
  recordedPieces,
  sha256File,
  startFcp,
  startFcpd,
  waitUntil,
  writeRandomFile,
} from '../helpers/reliability.js';
import { removeTree } from '../helpers/tree.js';

const SIZE = 24 * MiB + 777;
/** The first session is held to this rate so that the second starts while it is still writing. */
const SLOW = ['--bwlimit', '4M'];
const RUN_TIMEOUT_MS = 60_000;

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-overlap-'));
chmodSync(tmp, 0o755);
const state = join(tmp, 'state');
const src = join(tmp, 'src');
mkdirSync(src);
const bigFile = join(src, 'big.bin');
let bigHash = '';
const children: RunningChild[] = [];

function track<T extends RunningChild>(c: T): T {
  children.push(c);
  return c;
}

function expectOk(r: RunResult, what: string): void {
  assert.is(r.code, 0, `${what}: expected exit 0: ${describeRun(r)}`);
}

/** Waits until the first session has recorded pieces in the shared index, still running. */
async function waitForLivePartial(meta: string, first: RunningChild): Promise<void> {
  await waitUntil(
    async () => {
      if (first.child.exitCode !== null) throw new Error(`the first session ended early: ${first.stderr()}`);
      return (await recordedPieces(meta)).length >= 2;
    },
    `pieces recorded in ${meta}`,
    RUN_TIMEOUT_MS,
  );
}

/** Runs the second session of `args` while `first` is live, then checks both and the result. */
async function overlap(first: RunningChild, args: readonly string[], dest: string, dir: string) {
  await waitForLivePartial(partialOf(dest).meta, first);
  const second = await startFcp(args, RUN_TIMEOUT_MS).done;
  expectOk(second, 'the second session, started while the first was writing');
  assert.is(await sha256File(dest), bigHash, 'the second session placed a wrong file');
  expectOk(await first.done, 'the first session, whose partial the second met');
  assert.is(await sha256File(dest), bigHash, 'the first session placed a wrong file');
  assert.equal(await leftoverTemporaries(dir), [], 'temporaries left behind');
}

test.before(async () => {
  await writeRandomFile(bigFile, SIZE);
  bigHash = await sha256File(bigFile);
});

test.after.each(async () => {
  for (const c of children.splice(0)) await c.kill().catch(() => {});
});

test.after(async () => {
  await removeTree(tmp);
});

test('two overlapping pushes of one file into a standing fcpd: both succeed, the live partial untouched', async () => {
  const root = join(tmp, 'root-push');
  mkdirSync(join(root, 'in'), { recursive: true });
  const d = track(await startFcpd({ root, stateDir: state }));
  const args = ['push', '-n', '2', bigFile, d.remote('in/big.bin')];
  const first = track(startFcp([...SLOW, ...args], RUN_TIMEOUT_MS));
  await overlap(first, args, join(root, 'in', 'big.bin'), join(root, 'in'));
});

test('two overlapping pulls of one file into one directory: both succeed, the live partial untouched', async () => {
  const root = join(tmp, 'root-pull');
  mkdirSync(join(root, 'out'), { recursive: true });
  await link(bigFile, join(root, 'out', 'big.bin'));
  const local = join(tmp, 'pulled');
  mkdirSync(local);
  const dest = join(local, 'big.bin');
  const d = track(await startFcpd({ root, stateDir: state }));
  const args = ['pull', '-n', '2', d.remote('out/big.bin'), dest];
  const first = track(startFcp([...SLOW, ...args], RUN_TIMEOUT_MS));
  await overlap(first, args, dest, local);
});

test.run();
