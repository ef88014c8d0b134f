// A re-run over a tree that is already there: deep directories, a directory wider than the walk's batch,
// links of every kind, odd modes. Nothing is sent and nothing on the destination is touched, both ways.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { describeRun, parseSummary, type RunResult, runFcp } from '../helpers/cli.js';
import { servedByFcpd } from '../helpers/transfers.js';
import { buildTree, compareTrees, type EntrySpec, timeAt } from '../helpers/tree.js';

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

test.run();
