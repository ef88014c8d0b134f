// Modification times far in the future survive a push and a pull: after 2262-04-11 (where an i64 of
// nanoseconds ends; the wire carries i64 seconds + u32 nanoseconds, ext4 goes to 2446) on a directory and on
// a file of several pieces (which keeps a piece index). One such time once aborted the whole session ("The
// value of "value" is out of range", exit 70) or failed the file (exit 3). And before 1970, which Node's
// utimes() took as "now" when given as a negative number.
import { mkdirSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { describeRun, runFcp } from '../helpers/cli.js';
import { MiB, writeRandomFile } from '../helpers/reliability.js';
import { execFileSync } from '../helpers/sync.js';
import { test } from '../helpers/test.js';
import { servedTree } from '../helpers/transfers.js';
import { compareTrees } from '../helpers/tree.js';

const { tmp, served, remote } = servedTree('fcp-e2e-far-mtimes-', async () => {});

function touch(abs: string, when: string): void {
  execFileSync('touch', ['-h', '-d', when, abs]);
}

/** Every entry's mtime in ns, by path (the tree's root left out: it is the destination's own). */
async function mtimesOf(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of (await readdir(root, { recursive: true })).sort()) {
    out[rel] = String((await lstat(path.join(root, rel), { bigint: true })).mtimeNs);
  }
  return out;
}

/** Pushes `src` to `name` on the daemon, pulls it back; both copies keep every entry and its mtime. */
async function roundTrip(src: string, name: string): Promise<void> {
  const want = await mtimesOf(src);
  const pushed = await runFcp(['push', `${src}/`, remote(name)], { timeoutMs: 60_000 });
  assert.is(pushed.code, 0, describeRun(pushed));
  assert.equal(await mtimesOf(path.join(served, name)), want);
  assert.equal(await compareTrees(src, path.join(served, name), { ignoreRootMeta: true }), []);
  const back = path.join(tmp, `${name}-back`);
  const pulled = await runFcp(['pull', remote(`${name}/`), back], { timeoutMs: 60_000 });
  assert.is(pulled.code, 0, describeRun(pulled));
  assert.equal(await mtimesOf(back), want);
  assert.equal(await compareTrees(src, back, { ignoreRootMeta: true }), []);
}

/** A file of `size` random bytes (more than one piece: a piece index is kept), or a directory, dated. */
interface Dated {
  rel: string;
  size?: number;
  when: string;
}

/** Makes `entries` under `src` (directories first), then dates them deepest first, so that no write moves a time. */
async function buildDated(src: string, entries: readonly Dated[]): Promise<void> {
  for (const e of entries) {
    if (e.size === undefined) mkdirSync(path.join(src, e.rel), { recursive: true });
    else await writeRandomFile(path.join(src, e.rel), e.size);
  }
  for (const e of [...entries].reverse()) touch(path.join(src, e.rel), e.when);
}

test('a directory and a multi-piece file dated 2400 keep their mtimes, push and pull', async () => {
  const src = path.join(tmp, 'src2400');
  // Whole seconds: utimes() takes a double, which resolves only ~2 us in 2400 (README, what is preserved).
  await buildDated(src, [
    { rel: 'far', when: '2400-01-01 12:34:56 UTC' },
    { rel: 'far/big.bin', size: 3 * MiB + 5, when: '2400-01-01 00:00:00 UTC' },
    { rel: 'far/small.txt', size: 6, when: '2400-01-01 00:00:01 UTC' },
  ]);
  await roundTrip(src, 'copy2400');
});

test('a directory and files dated 1901 and 1969 keep their mtimes, push and pull', async () => {
  const src = path.join(tmp, 'srcold');
  await buildDated(src, [
    { rel: 'd1901', when: '1901-12-14 20:45:53 UTC' },
    { rel: 'd1901/big.bin', size: 2 * MiB + 1, when: '1901-12-14 00:00:00 UTC' },
    { rel: 'd1969', when: '1969-12-31 23:59:58.5 UTC' },
    { rel: 'd1969/small.txt', size: 6, when: '1969-12-31 23:59:59.25 UTC' },
  ]);
  await roundTrip(src, 'copyold');
});

test.run();
