// A re-run over a tree that is already there: deep directories, a directory wider than the walk's batch,
// links of every kind, odd modes. Nothing is sent and nothing on the destination is touched, both ways.
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { describeRun, parseSummary, type RunResult, runFcp } from '../helpers/cli.js';
import { execFileSync } from '../helpers/sync.js';
import { servedByFcpd } from '../helpers/transfers.js';
import { buildTree, compareTrees, type EntrySpec, timeAt, toUtimes } from '../helpers/tree.js';

const { tmp, served, remote } = servedByFcpd('fcp-e2e-rerun-');

/** 40 levels deep, 1,300 files in one directory, 60 small directories, links and modes of every kind. */
function rerunTree(): EntrySpec[] {
  const specs: EntrySpec[] = [];
  let deep = 'deep';
  for (let level = 0; level < 40; level++) {
    deep += `/level-${level}`;
    specs.push({ kind: 'file', path: `${deep}/f.txt`, size: level, mtime: timeAt(level) });
  }
  specs.push({ kind: 'symlink', path: `${deep}/up`, target: '../../../..' });
  for (let i = 0; i < 1300; i++) {
    specs.push({
      kind: 'file',
      path: `wide/${String(i).padStart(5, '0')}`,
      size: i % 50,
      mode: 0o600 + (i % 2) * 0o44,
    });
  }
  for (let d = 0; d < 60; d++) {
    const dir = `many/d${d}`;
    specs.push({ kind: 'dir', path: dir, mode: d % 3 === 0 ? 0o700 : d % 3 === 1 ? 0o1750 : 0o755 });
    specs.push({ kind: 'file', path: `${dir}/a`, size: 100 + d, mode: 0o640 });
    specs.push({ kind: 'file', path: `${dir}/b`, size: 0, mode: 0o755 });
    specs.push({ kind: 'symlink', path: `${dir}/to-a`, target: 'a' });
    specs.push({ kind: 'symlink', path: `${dir}/to-dir`, target: '../d0' });
    specs.push({ kind: 'symlink', path: `${dir}/dangling`, target: `missing-${d}` });
    specs.push({ kind: 'symlink', path: `${dir}/absolute`, target: '/etc/hostname' });
  }
  // Names whose UTF-16 order differs from their byte order (U+FF21 sorts before U+1F600 as bytes).
  specs.push({ kind: 'file', path: 'odd/\uFF21', size: 1 });
  specs.push({ kind: 'file', path: 'odd/\u{1F600}', size: 2 });
  return specs;
}

interface Meta {
  mode: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
}

/** Every entry's mode, mtime, ctime and inode: a rewrite, rename, chmod or utimes shows in one of them. */
async function metaOf(root: string): Promise<Map<string, Meta>> {
  const out = new Map<string, Meta>();
  for (const rel of await readdir(root, { recursive: true })) {
    const st = await lstat(join(root, rel), { bigint: true });
    out.set(rel, { mode: st.mode, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino });
  }
  return out;
}

function expectNothingSent(r: RunResult, files: number): void {
  assert.is(r.code, 0, describeRun(r));
  const s = parseSummary(r.stdout);
  assert.ok(s, `no summary line: ${describeRun(r)}`);
  assert.equal(
    { sent: s.sent, skipped: s.skipped, failed: s.failed, bytes: s.bytes },
    {
      sent: 0,
      skipped: files,
      failed: 0,
      bytes: '0 B',
    },
  );
}

test('a no-change re-run of a deep, wide tree with links sends nothing and touches nothing (push and pull)', async () => {
  const src = join(tmp, 'src');
  const counts = await buildTree(src, rerunTree());
  const first = await runFcp(['push', `${src}/`, remote('copy')], { timeoutMs: 60_000 });
  assert.is(first.code, 0, describeRun(first));
  const pushed = join(served, 'copy');
  assert.equal(await compareTrees(src, pushed, { ignoreRootMeta: true }), []);

  const before = await metaOf(pushed);
  const again = await runFcp(['push', `${src}/`, remote('copy')], { timeoutMs: 60_000 });
  expectNothingSent(again, counts.files);
  assert.equal(await metaOf(pushed), before);

  const back = join(tmp, 'back');
  const pulled = await runFcp(['pull', remote('copy/'), back], { timeoutMs: 60_000 });
  assert.is(pulled.code, 0, describeRun(pulled));
  assert.equal(await compareTrees(src, back, { ignoreRootMeta: true }), []);
  const pulledBefore = await metaOf(back);
  const pulledAgain = await runFcp(['pull', remote('copy/'), back], { timeoutMs: 60_000 });
  expectNothingSent(pulledAgain, counts.files);
  assert.equal(await metaOf(back), pulledBefore);
});

/**
 * Three files of `root` changed after a run: `longer` grows a byte, `later` is rewritten at its size with an
 * mtime 3 us on, `same` is rewritten at its size keeping its mtime (only --checksum can see it).
 */
function changeThree(root: string): void {
  const t = timeAt(7);
  const rewrite = (rel: string, mtime: number) => {
    const abs = join(root, rel);
    writeFileSync(abs, Buffer.alloc(readFileSync(abs).length, 0x5a));
    utimesSync(abs, mtime, mtime);
  };
  writeFileSync(join(root, 'many/d1/a'), 'x', { flag: 'a' });
  rewrite('many/d2/a', toUtimes({ sec: t.sec, usec: t.usec + 3 }));
  rewrite('many/d3/a', toUtimes(t));
}

function expectSent(r: RunResult, sent: number): void {
  assert.is(r.code, 0, describeRun(r));
  assert.is(parseSummary(r.stdout)?.sent, sent, describeRun(r));
}

test('a re-run after a run sends what changed: a size, an mtime 3 us on, and with -c same-size same-mtime content', async () => {
  const src = join(tmp, 'src3');
  const t = timeAt(7);
  const specs: EntrySpec[] = [];
  for (let d = 0; d < 4; d++) specs.push({ kind: 'file', path: `many/d${d}/a`, size: 100 + d, mtime: t });
  await buildTree(src, specs);
  assert.is((await runFcp(['push', `${src}/`, remote('copy3')])).code, 0);
  const pushed = join(served, 'copy3');
  const back = join(tmp, 'back3');
  assert.is((await runFcp(['pull', remote('copy3/'), back])).code, 0);

  // push: the daemon decides; pull: the client does.
  changeThree(src);
  expectSent(await runFcp(['push', `${src}/`, remote('copy3')]), 2);
  expectSent(await runFcp(['push', '-c', `${src}/`, remote('copy3')]), 1);
  assert.equal(await compareTrees(src, pushed, { ignoreRootMeta: true }), []);

  changeThree(pushed);
  expectSent(await runFcp(['pull', remote('copy3/'), back]), 2);
  expectSent(await runFcp(['pull', '-c', remote('copy3/'), back]), 1);
  assert.equal(await compareTrees(pushed, back, { ignoreRootMeta: true }), []);
});

/** More directories than a receiver holds open (DEFAULT_HELD_LIMIT, 256): the first are let go and re-opened. */
const MANY_DIRS = 300;

/** Files in the first two directories (long let go) and the last one change: size, mtime 3 us on, size. */
function changeAcrossLevels(root: string): void {
  const t = timeAt(9);
  writeFileSync(join(root, 'w/d000/a'), 'x', { flag: 'a' });
  const later = join(root, 'w/d001/a');
  writeFileSync(later, Buffer.alloc(readFileSync(later).length, 0x5a));
  const mtime = toUtimes({ sec: t.sec, usec: t.usec + 3 });
  utimesSync(later, mtime, mtime);
  writeFileSync(join(root, `w/d${MANY_DIRS - 1}/a`), 'y', { flag: 'a' });
}

test('a re-run over more directories than are held open sends what changed in the levels let go, skips the rest', async () => {
  const src = join(tmp, 'src-many');
  const t = timeAt(9);
  const specs: EntrySpec[] = [];
  for (let d = 0; d < MANY_DIRS; d++) {
    specs.push({ kind: 'file', path: `w/d${String(d).padStart(3, '0')}/a`, size: 10 + (d % 7), mtime: t });
  }
  await buildTree(src, specs);
  assert.is((await runFcp(['push', `${src}/`, remote('many')], { timeoutMs: 60_000 })).code, 0);
  const pushed = join(served, 'many');
  expectNothingSent(await runFcp(['push', `${src}/`, remote('many')], { timeoutMs: 60_000 }), MANY_DIRS);
  const back = join(tmp, 'back-many');
  assert.is((await runFcp(['pull', remote('many/'), back], { timeoutMs: 60_000 })).code, 0);

  changeAcrossLevels(src);
  expectSent(await runFcp(['push', `${src}/`, remote('many')], { timeoutMs: 60_000 }), 3);
  assert.equal(await compareTrees(src, pushed, { ignoreRootMeta: true }), []);
  expectSent(await runFcp(['pull', remote('many/'), back], { timeoutMs: 60_000 }), 3);
  assert.equal(await compareTrees(src, back, { ignoreRootMeta: true }), []);
});

/**
 * Source mtimes (ns since the epoch) whose copy, set to the microsecond by futimes() through a double of
 * seconds, reads back within 1 us as BigInt nanoseconds but over 1 us as a double of milliseconds (mtimeMs):
 * found by trying 200,000 values; about 1 % of real files behave so. A quick check on doubles re-sent them.
 */
const EDGE_MTIMES_NS = [
  '1765000001211608989',
  '1765000001813453977',
  '1765000003040900992',
  '1765000004236671955',
  '1765000004862273982',
  '1765000005464118970',
];

test('a re-run skips files whose mtimes the copy keeps to the microsecond only (the quick check is exact)', async () => {
  const src = join(tmp, 'src-edge');
  mkdirSync(src);
  EDGE_MTIMES_NS.forEach((ns, i) => {
    const file = join(src, `f${i}`);
    writeFileSync(file, `file ${i}\n`);
    // touch(1) sets nanoseconds; node's utimes takes a double of seconds.
    execFileSync('touch', ['-m', '-d', `@${ns.slice(0, -9)}.${ns.slice(-9)}`, file]);
  });
  assert.is((await lstat(join(src, 'f0'), { bigint: true })).mtimeNs, BigInt(EDGE_MTIMES_NS[0]!));
  assert.is((await runFcp(['push', `${src}/`, remote('edge')])).code, 0);
  expectNothingSent(await runFcp(['push', `${src}/`, remote('edge')]), EDGE_MTIMES_NS.length);
  const back = join(tmp, 'back-edge');
  assert.is((await runFcp(['pull', remote('edge/'), back])).code, 0);
  expectNothingSent(await runFcp(['pull', remote('edge/'), back]), EDGE_MTIMES_NS.length);
});

test.run();
