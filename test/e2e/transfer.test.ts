// End-to-end transfers: the built fcp client (a child process) against a real fcpd (a child process) on an
// ephemeral loopback port, with real temporary trees compared byte for byte, mode for mode, microsecond
// for microsecond afterwards.
import { chmodSync, mkdirSync } from 'node:fs';
import { chmod, lstat, open, readdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { formatBytes } from '../../src/cli/progress.js';
import { pull, push } from '../../src/client/transfer-client.js';
import type { FcpError } from '../../src/protocol/errors.js';
import { createStats } from '../../src/transfer/stats.js';
import { describeRun, parseSummary, type RunResult, runFcp, unprivileged } from '../helpers/cli.js';
import { clientOptions, HOST, spawnDaemon, startInProcessDaemon } from '../helpers/daemon.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { servedByFcpd } from '../helpers/transfers.js';
import {
  buildTree,
  compareTrees,
  type EntrySpec,
  listEntries,
  listFiles,
  mixedTree,
  restoreMtime,
  timeAt,
} from '../helpers/tree.js';
import { execFileSync } from '../helpers/sync.js';

const MiB = 1 << 20;
const BIG_TIMEOUT_MS = 90_000;

const { tmp, served, remote, daemon: fcpd } = servedByFcpd('fcp-e2e-transfer-');
// The unprivileged user must be able to reach the trees it reads.
chmodSync(tmp, 0o755);

/** Asserts a run exited with `code`, showing everything it printed otherwise. */
function expectExit(r: RunResult, code: number): void {
  assert.is(r.code, code, `expected exit ${code}: ${describeRun(r)}`);
}

function expectSummary(
  r: RunResult,
  want: { sent: number; skipped: number; failed: number; bytes?: string },
) {
  const s = parseSummary(r.stdout);
  assert.ok(s, `no summary line: ${describeRun(r)}`);
  const got = { sent: s.sent, skipped: s.skipped, failed: s.failed };
  assert.equal(want.bytes === undefined ? got : { ...got, bytes: s.bytes }, want, describeRun(r));
}

async function expectSame(a: string, b: string): Promise<void> {
  const diffs = await compareTrees(a, b);
  assert.equal(diffs, [], `${a} vs ${b}:\n${diffs.slice(0, 20).join('\n')}`);
}

/** A small tree of `n` files with explicit seeds and times, so two builds of it are identical. */
function smallTree(n: number, seed: number, prefix = ''): EntrySpec[] {
  const specs: EntrySpec[] = [];
  for (let i = 0; i < n; i++) {
    specs.push({
      kind: 'file',
      path: `${prefix}${i % 3 === 0 ? `sub${i % 4}/` : ''}file-${i}.dat`,
      size: 500 + ((i * 997 + seed) % 9000),
      seed: seed * 1000 + i,
      mtime: timeAt(seed * 100 + i),
    });
  }
  return specs;
}

test('push then pull back a mixed tree (65 MiB file, 1,000 small files, links, modes, odd names); reruns skip all', async () => {
  const base = join(tmp, 'mixed');
  const src = join(base, 'src');
  const bigSize = 65 * MiB + 123;
  const counts = await buildTree(src, mixedTree({ seed: 7, smallFiles: 1000, bigFileSize: bigSize }));
  assert.ok(counts.files > 1000 && counts.links >= 5, `tree too small: ${JSON.stringify(counts)}`);

  const first = await runFcp(['push', src, remote('mixed')], { timeoutMs: BIG_TIMEOUT_MS });
  expectExit(first, 0);
  expectSummary(first, { sent: counts.files, skipped: 0, failed: 0, bytes: formatBytes(counts.bytes) });
  await expectSame(src, join(served, 'mixed', 'src'));

  const again = await runFcp(['push', src, remote('mixed')], { timeoutMs: BIG_TIMEOUT_MS });
  expectExit(again, 0);
  expectSummary(again, { sent: 0, skipped: counts.files, failed: 0, bytes: '0 B' });

  const back = join(base, 'back');
  const pulled = await runFcp(['pull', remote('mixed/src'), back], { timeoutMs: BIG_TIMEOUT_MS });
  expectExit(pulled, 0);
  expectSummary(pulled, { sent: counts.files, skipped: 0, failed: 0, bytes: formatBytes(counts.bytes) });
  await expectSame(src, join(back, 'src'));

  const pulledAgain = await runFcp(['pull', remote('mixed/src'), back], { timeoutMs: BIG_TIMEOUT_MS });
  expectExit(pulledAgain, 0);
  expectSummary(pulledAgain, { sent: 0, skipped: counts.files, failed: 0, bytes: '0 B' });
  // Neither rerun may have disturbed anything (a rewrite would show as a changed time or a stray temp file).
  await expectSame(src, join(back, 'src'));
  await expectSame(src, join(served, 'mixed', 'src'));
});

test('modes come out exact whatever the umask, also over a stale temporary file (pull under umask 027)', async () => {
  const base = join(tmp, 'umask');
  const src = join(base, 'src');
  const modes = [0o644, 0o640, 0o600, 0o666, 0o755, 0o750, 0o700, 0o444, 0o1755];
  const specs: EntrySpec[] = modes.map((mode, i) => ({
    kind: 'file',
    path: `sub/m${mode.toString(8)}.dat`,
    size: 100 + i,
    mode,
    mtime: timeAt(900 + i),
  }));
  const counts = await buildTree(src, specs);
  expectExit(await runFcp(['push', src, remote('umask')]), 0);
  await expectSame(src, join(served, 'umask', 'src'));

  // Temporaries left by an earlier run, where the files go: a new file keeps its own mode, so these must
  // be truncated and given the right mode, not trusted.
  const back = join(base, 'back');
  mkdirSync(join(back, 'src', 'sub'), { recursive: true });
  for (const name of ['m640.dat', 'm644.dat', 'm1755.dat']) {
    await writeFile(join(back, 'src', 'sub', `.${name}.fcp-part`), 'stale bytes, longer than the file', {
      mode: 0o600,
    });
  }
  // The child inherits the umask: 027 narrows 0644 and 0666 (fchmod) and leaves 0640, 0750 whole (open).
  const before = process.umask(0o027);
  let pulling: Promise<RunResult>;
  try {
    pulling = runFcp(['pull', remote('umask/src'), back]);
  } finally {
    process.umask(before);
  }
  const r = await pulling;
  expectExit(r, 0);
  expectSummary(r, { sent: counts.files, skipped: 0, failed: 0 });
  await expectSame(src, join(back, 'src'));
  assert.equal(
    (await readdir(join(back, 'src', 'sub'))).filter((n) => n.endsWith('.fcp-part')),
    [],
    'no temporary left behind',
  );
});

/** Overwrites bytes in the middle of a file in place: same size, and the old mtime put back. */
async function tamperKeepingSizeAndMtime(abs: string): Promise<void> {
  const before = await lstat(abs, { bigint: true });
  const fh = await open(abs, 'r+');
  try {
    await fh.write(Buffer.from('TAMPERED'), 0, 8, Number(before.size / 2n));
  } finally {
    await fh.close();
  }
  await restoreMtime(abs, before.mtimeNs);
  const after = await lstat(abs, { bigint: true });
  assert.is(after.size, before.size);
  assert.is(after.mtimeNs / 1000n, before.mtimeNs / 1000n, 'mtime not restored');
}

test('--checksum catches a same-size, same-mtime change that the quick check skips (push and pull)', async () => {
  const src = join(tmp, 'cksum-src');
  const specs = smallTree(20, 3);
  specs.push({ kind: 'file', path: 'target.bin', size: 3 * MiB + 5, mtime: timeAt(999) });
  const counts = await buildTree(src, specs);
  expectExit(await runFcp(['push', `${src}/`, remote('cksum')]), 0);
  const dst = join(served, 'cksum');
  await expectSame(src, dst);

  await tamperKeepingSizeAndMtime(join(src, 'target.bin'));
  const quick = await runFcp(['push', `${src}/`, remote('cksum')]);
  expectExit(quick, 0);
  expectSummary(quick, { sent: 0, skipped: counts.files, failed: 0 });
  assert.equal(await compareTrees(src, dst), ['"target.bin": content differs'], 'quick check should skip it');

  const thorough = await runFcp(['push', '-c', `${src}/`, remote('cksum')]);
  expectExit(thorough, 0);
  expectSummary(thorough, { sent: 1, skipped: counts.files - 1, failed: 0 });
  await expectSame(src, dst);

  // The other way: the daemon's copy changes; a pull with -c brings the local copy back in line.
  const local = join(tmp, 'cksum-local');
  expectExit(await runFcp(['pull', remote('cksum/'), local]), 0);
  await expectSame(dst, local);
  await tamperKeepingSizeAndMtime(join(dst, 'sub0/file-0.dat'));
  const quickPull = await runFcp(['pull', remote('cksum/'), local]);
  expectExit(quickPull, 0);
  expectSummary(quickPull, { sent: 0, skipped: counts.files, failed: 0 });
  assert.equal(await compareTrees(dst, local), ['"sub0/file-0.dat": content differs']);
  const thoroughPull = await runFcp(['pull', '--checksum', remote('cksum/'), local]);
  expectExit(thoroughPull, 0);
  expectSummary(thoroughPull, { sent: 1, skipped: counts.files - 1, failed: 0 });
  await expectSame(dst, local);
});

test('pull with a remote glob (absolute path under the root) takes only the top-level matches', async () => {
  await buildTree(join(served, 'logs'), [
    { kind: 'file', path: 'a.gz', size: 1000 },
    { kind: 'file', path: 'b.gz', size: 2 * MiB + 1 },
    { kind: 'file', path: 'c.txt', size: 10 },
    { kind: 'file', path: '.hidden.gz', size: 10 },
    { kind: 'file', path: 'sub/d.gz', size: 10 },
    { kind: 'dir', path: 'dir.gz' },
    { kind: 'file', path: 'dir.gz/inner', size: 20 },
  ]);
  const out = join(tmp, 'glob-out');
  const r = await runFcp(['pull', remote(`${served}/logs/*.gz`), out]);
  expectExit(r, 0);
  // A matched directory comes whole; '*' does not match a leading dot; sub/ is not descended into.
  assert.equal(await listEntries(out), ['a.gz', 'b.gz', 'dir.gz', 'dir.gz/inner']);
  for (const name of ['a.gz', 'b.gz', 'dir.gz'])
    await expectSame(join(served, 'logs', name), join(out, name));

  // One match is a single file: the destination is its new name.
  const one = join(tmp, 'glob-one.txt');
  expectExit(await runFcp(['pull', remote('logs/*.txt'), one]), 0);
  await expectSame(join(served, 'logs', 'c.txt'), one);

  // No match is a path error, and nothing is created.
  const none = await runFcp(['pull', remote('logs/*.zip'), join(tmp, 'glob-none')]);
  expectExit(none, 2);
  assert.match(none.stderr, /^fcp: .*no match/);
  assert.not.ok(await exists(join(tmp, 'glob-none')));
});

async function exists(abs: string): Promise<boolean> {
  try {
    await lstat(abs);
    return true;
  } catch {
    return false;
  }
}

test('trailing slash: "dir" copies the directory itself, "dir/" its contents, both ways', async () => {
  const src = join(tmp, 'slash', 'tree');
  // A missing destination is created one level deep only: its parent must exist.
  mkdirSync(join(served, 'slash'));
  await buildTree(src, smallTree(12, 5), { rootMode: 0o750 });
  expectExit(await runFcp(['push', src, remote('slash/plain')]), 0);
  expectExit(await runFcp(['push', `${src}/`, remote('slash/contents')]), 0);
  assert.equal(await readdir(join(served, 'slash', 'plain')), ['tree']);
  await expectSame(src, join(served, 'slash', 'plain', 'tree'));
  // The contents form also carries the directory's own mode and mtime onto the destination.
  await expectSame(src, join(served, 'slash', 'contents'));

  const out = join(tmp, 'slash', 'out');
  mkdirSync(out);
  expectExit(await runFcp(['pull', remote('slash/plain/tree'), join(out, 'plain')]), 0);
  expectExit(await runFcp(['pull', remote('slash/plain/tree/'), join(out, 'contents')]), 0);
  assert.equal(await readdir(join(out, 'plain')), ['tree']);
  await expectSame(src, join(out, 'plain', 'tree'));
  await expectSame(src, join(out, 'contents'));
});

test('single file: to a new name, into an existing directory, into a new directory named with a slash', async () => {
  const src = join(tmp, 'single');
  await buildTree(src, [{ kind: 'file', path: 'file.txt', size: 4321, mode: 0o640, mtime: timeAt(42) }]);
  const file = join(src, 'file.txt');
  mkdirSync(join(served, 'single'));

  expectExit(await runFcp(['push', file, remote('single/renamed.txt')]), 0);
  expectExit(await runFcp(['push', file, remote('single')]), 0);
  expectExit(await runFcp(['push', file, remote('single/made/')]), 0);
  assert.equal(await listEntries(join(served, 'single')), [
    'file.txt',
    'made',
    'made/file.txt',
    'renamed.txt',
  ]);
  for (const rel of ['renamed.txt', 'file.txt', 'made/file.txt'])
    await expectSame(file, join(served, 'single', rel));

  const out = join(tmp, 'single-out');
  mkdirSync(out);
  expectExit(await runFcp(['pull', remote('single/renamed.txt'), join(out, 'new-name.txt')]), 0);
  expectExit(await runFcp(['pull', remote('single/renamed.txt'), out]), 0);
  assert.equal(await listEntries(out), ['new-name.txt', 'renamed.txt']);
  await expectSame(file, join(out, 'new-name.txt'));
  await expectSame(file, join(out, 'renamed.txt'));
});

test("multiple sources: files, a directory and a directory's contents land side by side", async () => {
  const base = join(tmp, 'multi');
  await buildTree(base, [
    { kind: 'file', path: 'one.txt', size: 10, mtime: timeAt(1) },
    { kind: 'file', path: 'two.bin', size: MiB + 7, mtime: timeAt(2) },
    ...smallTree(6, 11, 'dirA/'),
    ...smallTree(4, 12, 'dirB/'),
  ]);
  const r = await runFcp([
    'push',
    join(base, 'one.txt'),
    join(base, 'two.bin'),
    join(base, 'dirA'),
    `${join(base, 'dirB')}/`,
    remote('multi'),
  ]);
  expectExit(r, 0);
  expectSummary(r, { sent: 12, skipped: 0, failed: 0 });
  const dst = join(served, 'multi');
  await expectSame(join(base, 'one.txt'), join(dst, 'one.txt'));
  await expectSame(join(base, 'two.bin'), join(dst, 'two.bin'));
  await expectSame(join(base, 'dirA'), join(dst, 'dirA'));
  const fromB = (await listFiles(join(base, 'dirB'))).sort();
  for (const rel of fromB) await expectSame(join(base, 'dirB', rel), join(dst, rel));
});

test('include, exclude and regex select what is sent, on push and on pull', async () => {
  const src = join(tmp, 'sel');
  await buildTree(src, [
    { kind: 'file', path: 'top.txt', size: 10 },
    { kind: 'file', path: 'notes.md', size: 10 },
    { kind: 'file', path: 'src/main.ts', size: 10 },
    { kind: 'file', path: 'src/util.ts', size: 10 },
    { kind: 'file', path: 'src/readme.md', size: 10 },
    { kind: 'file', path: 'src/build/out.js', size: 10 },
    { kind: 'file', path: 'build/artifact.bin', size: 10 },
    { kind: 'file', path: 'node_modules/pkg/index.js', size: 10 },
    { kind: 'file', path: 'logs/x.log', size: 10 },
    { kind: 'file', path: 'logs/deep/y.log', size: 10 },
    { kind: 'symlink', path: 'src/link.ts', target: 'main.ts' },
  ]);
  const cases: Array<{ args: string[]; files: string[] }> = [
    { args: ['--include', '*.ts'], files: ['src/link.ts', 'src/main.ts', 'src/util.ts'] },
    {
      args: ['--exclude', 'node_modules', '--exclude', '*.log', '--exclude', '/build'],
      files: [
        'notes.md',
        'src/build/out.js',
        'src/link.ts',
        'src/main.ts',
        'src/readme.md',
        'src/util.ts',
        'top.txt',
      ],
    },
    { args: ['--regex', '\\.(md|txt)$'], files: ['notes.md', 'src/readme.md', 'top.txt'] },
    {
      args: ['--include', 'src/*', '--regex', '^src/[a-r]', '--exclude', 'link.ts'],
      files: ['src/main.ts', 'src/readme.md'],
    },
  ];
  mkdirSync(join(served, 'sel'));
  // Options after the operands: see cli.test.ts for options before them.
  for (const [i, c] of cases.entries()) {
    const r = await runFcp(['push', `${src}/`, remote(`sel/${i}`), ...c.args]);
    expectExit(r, 0);
    assert.equal(await listFiles(join(served, 'sel', String(i))), c.files, `push ${c.args.join(' ')}`);
    for (const rel of c.files) await expectSame(join(src, rel), join(served, 'sel', String(i), rel));
  }
  // An excluded directory is not created at all.
  assert.not.ok(await exists(join(served, 'sel', '1', 'node_modules')));
  assert.not.ok(await exists(join(served, 'sel', '1', 'build')));

  // The daemon applies the same selection on a pull.
  expectExit(await runFcp(['push', `${src}/`, remote('sel/all')]), 0);
  for (const [i, c] of cases.entries()) {
    const out = join(tmp, `sel-pull-${i}`);
    const r = await runFcp(['pull', remote('sel/all/'), out, ...c.args]);
    expectExit(r, 0);
    assert.equal(await listFiles(out), c.files, `pull ${c.args.join(' ')}`);
  }
});

test('two sessions at once: parallel pushes to different destinations both complete intact', async () => {
  const a = join(tmp, 'par-a');
  const b = join(tmp, 'par-b');
  await buildTree(a, [...smallTree(300, 21), { kind: 'file', path: 'big', size: 6 * MiB + 3 }]);
  await buildTree(b, [...smallTree(300, 22), { kind: 'file', path: 'big', size: 5 * MiB + 9 }]);
  mkdirSync(join(served, 'par'));
  const [ra, rb] = await Promise.all([
    runFcp(['push', '-n', '4', `${a}/`, remote('par/a')]),
    runFcp(['push', '-n', '4', `${b}/`, remote('par/b')]),
  ]);
  expectExit(ra, 0);
  expectExit(rb, 0);
  await expectSame(a, join(served, 'par', 'a'));
  await expectSame(b, join(served, 'par', 'b'));
  // And two pulls at once.
  const [pa, pb] = await Promise.all([
    runFcp(['pull', '-n', '3', remote('par/a/'), join(tmp, 'par-back-a')]),
    runFcp(['pull', '-n', '5', remote('par/b/'), join(tmp, 'par-back-b')]),
  ]);
  expectExit(pa, 0);
  expectExit(pb, 0);
  await expectSame(a, join(tmp, 'par-back-a'));
  await expectSame(b, join(tmp, 'par-back-b'));
});

test('-n 1 and -n 16 both carry multi-piece and small files intact', async () => {
  const src = join(tmp, 'conns');
  await buildTree(src, [
    ...smallTree(60, 31),
    { kind: 'file', path: 'p/five-plus', size: 5 * MiB + 1 },
    { kind: 'file', path: 'p/seven', size: 7 * MiB },
    { kind: 'file', path: 'p/three-odd', size: 3 * MiB - 17 },
  ]);
  for (const n of ['1', '16']) {
    const r = await runFcp(['push', '-n', n, `${src}/`, remote(`conns-${n}`)]);
    expectExit(r, 0);
    await expectSame(src, join(served, `conns-${n}`));
    const back = join(tmp, `conns-back-${n}`);
    const p = await runFcp(['pull', '--connections', n, remote(`conns-${n}/`), back]);
    expectExit(p, 0);
    await expectSame(src, back);
  }
});

test('in-process push() and pull() against an in-process daemon', async () => {
  const root = join(tmp, 'inproc-root');
  mkdirSync(root);
  const d = await startInProcessDaemon({ root });
  try {
    const src = join(tmp, 'inproc-src');
    await buildTree(src, [...smallTree(30, 41), { kind: 'file', path: 'two-pieces', size: MiB + 1 }]);
    const warnings: FcpError[] = [];
    const common = await clientOptions(d.port, 3, (e) => warnings.push(e));
    const pushStats = createStats(performance.now());
    await push({ ...common, stats: pushStats, sources: [src], dest: 'got' });
    assert.is(pushStats.filesSent, 31);
    await expectSame(src, join(root, 'got', 'inproc-src'));
    const pullStats = createStats(performance.now());
    await pull({ ...common, stats: pullStats, source: 'got/inproc-src/', dest: join(tmp, 'inproc-back') });
    assert.is(pullStats.filesSent, 31);
    await expectSame(src, join(tmp, 'inproc-back'));
    assert.equal(warnings, []);
  } finally {
    await d.stop();
  }
});

test("a pull's daemon counts every byte it delivered, though the client closes right after its DONE", async () => {
  // The receiver's PIECE_ACKs wait a few ms to share a frame; its DONE must not leave them behind, or a
  // daemon that sees an extra connection close before DONE drops that connection's pieces from its count.
  // Separate processes: in one, the event loop orders the two the same way every time.
  const d = fcpd();
  // Big enough that the extra connections are attached and carry pieces before the end.
  const size = 20 * MiB + 12_345;
  mkdirSync(join(served, 'count'));
  await writeFile(join(served, 'count', 'f.bin'), Buffer.alloc(size, 7));
  const before = d.stderr().length;
  const runs = 10;
  for (let i = 0; i < runs; i++) {
    const r = await runFcp(['pull', '-n', '4', remote('count/f.bin'), join(tmp, `count-${i}.bin`)]);
    assert.is(r.code, 0, describeRun(r));
  }
  // The daemon logs a session once it has read the client's DONE, which may be just after the client exits.
  const counted = (): number[] =>
    [
      ...d
        .stderr()
        .slice(before)
        .matchAll(/pull: session done \(.*, (\d+) bytes,/g),
    ].map((m) => Number(m[1]));
  for (let waited = 0; counted().length < runs && waited < 5000; waited += 20) await sleep(20);
  assert.equal(counted(), new Array<number>(runs).fill(size));
});

test('extra connections open only once the list holds more than one piece of data (push and pull)', async () => {
  const root = join(tmp, 'extras-root');
  mkdirSync(root);
  const d = await startInProcessDaemon({ root });
  const proxy = await startFaultProxy({ target: { host: HOST, port: d.port } });
  try {
    const tiny = join(tmp, 'extras-tiny');
    const big = join(tmp, 'extras-big');
    // Exactly one piece of file data in all: nothing a second connection could carry in parallel.
    await buildTree(tiny, [
      ...smallTree(5, 51),
      { kind: 'file', path: 'one-piece', size: MiB - 5 * 16 * 1024 },
    ]);
    await buildTree(big, [{ kind: 'file', path: 'nine-pieces', size: 8 * MiB + 1 }]);
    const common = await clientOptions(proxy.port, 4, (e) => assert.unreachable(e.message));
    const opened = async (run: () => Promise<void>): Promise<number> => {
      const before = proxy.connections.length;
      await run();
      return proxy.connections.length - before;
    };
    const stats = () => createStats(performance.now());
    const tinyPush = await opened(() => push({ ...common, stats: stats(), sources: [tiny], dest: 'tiny' }));
    const tinyPull = await opened(() =>
      pull({ ...common, stats: stats(), source: 'tiny/extras-tiny/', dest: join(tmp, 'extras-tiny-back') }),
    );
    assert.is(tinyPush, 1, 'a push of one piece of data uses the control connection alone');
    assert.is(tinyPull, 1, 'a pull of one piece of data uses the control connection alone');
    const bigPush = await opened(() => push({ ...common, stats: stats(), sources: [big], dest: 'big' }));
    const bigPull = await opened(() =>
      pull({ ...common, stats: stats(), source: 'big/extras-big/', dest: join(tmp, 'extras-big-back') }),
    );
    assert.is(bigPush, 4, 'a push of nine pieces opens all four connections');
    assert.is(bigPull, 4, 'a pull of nine pieces opens all four connections');
    await expectSame(tiny, join(tmp, 'extras-tiny-back'));
    await expectSame(big, join(tmp, 'extras-big-back'));
  } finally {
    await proxy.close();
    await d.stop();
  }
});

test('a failed replacement leaves the previous version in place (unreadable source, run unprivileged)', async () => {
  const user = unprivileged();
  // Client and daemon both run as the unprivileged user (so it cannot read the 0000 sources), as one
  // same-host account: the client logs in with that daemon's local token (spec/SECURITY.md §5.4).
  const keepRoot = join(tmp, 'keep-root');
  const dst = join(keepRoot, 'keep');
  await buildTree(dst, [
    { kind: 'file', path: 'victim.txt', size: 3000, seed: 1, mtime: timeAt(1) },
    { kind: 'file', path: 'other.txt', size: 3000, seed: 2, mtime: timeAt(2) },
    { kind: 'file', path: 'big-victim', size: 2 * MiB, seed: 3, mtime: timeAt(3) },
  ]);
  const before = await readFile(join(dst, 'victim.txt'));
  const bigBefore = await readFile(join(dst, 'big-victim'));
  const src = join(tmp, 'keep-src');
  await buildTree(src, [
    { kind: 'file', path: 'victim.txt', size: 5000, seed: 11, mtime: timeAt(11) },
    { kind: 'file', path: 'other.txt', size: 5000, seed: 12, mtime: timeAt(12) },
    { kind: 'file', path: 'big-victim', size: 3 * MiB + 1, seed: 13, mtime: timeAt(13) },
  ]);
  await chmod(join(src, 'victim.txt'), 0o000);
  await chmod(join(src, 'big-victim'), 0o000);
  if (user.uid !== undefined) execFileSync('chown', ['-R', `${user.uid}:${user.gid ?? user.uid}`, keepRoot]);
  const own = await spawnDaemon({ root: keepRoot, ...user });
  let r: Awaited<ReturnType<typeof runFcp>>;
  try {
    r = await runFcp(['push', `${src}/`, own.remote('keep')], user);
  } finally {
    await own.stop();
  }
  expectExit(r, 3);
  expectSummary(r, { sent: 1, skipped: 0, failed: 2 });
  assert.match(r.stderr, /victim\.txt/);
  assert.match(r.stderr, /big-victim/);
  assert.equal(await readFile(join(dst, 'victim.txt')), before, 'old victim.txt must survive');
  assert.equal(await readFile(join(dst, 'big-victim')), bigBefore, 'old big-victim must survive');
  await expectSame(join(src, 'other.txt'), join(dst, 'other.txt'));
  assert.equal(await readdir(dst).then((n) => n.sort()), ['big-victim', 'other.txt', 'victim.txt']);
});

/**
 * A loopback proxy that forwards one connection and cuts both sides once `limit` bytes have gone up:
 * a session that breaks in the middle of a file.
 */
async function startCuttingProxy(
  port: number,
  limit: number,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, HOST);
    sockets.add(client).add(upstream);
    let sent = 0;
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      if (sent >= limit) return;
      const room = limit - sent;
      sent += chunk.length;
      upstream.write(chunk.subarray(0, Math.min(room, chunk.length)));
      if (sent >= limit) upstream.end(cut);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    for (const s of [client, upstream]) {
      s.on('error', cut);
      s.on('close', cut);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr !== null ? addr.port : 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

test('a session cut in the middle of a replacement keeps the previous version; a rerun completes it cleanly', async () => {
  const dst = join(served, 'cut');
  await buildTree(dst, [{ kind: 'file', path: 'payload.bin', size: 1000, seed: 5, mtime: timeAt(5) }]);
  const before = await readFile(join(dst, 'payload.bin'));
  const src = join(tmp, 'cut-src');
  await buildTree(src, [{ kind: 'file', path: 'payload.bin', size: 8 * MiB, seed: 6, mtime: timeAt(6) }]);
  const proxy = await startCuttingProxy(fcpd().port, 3 * MiB);
  try {
    const r = await runFcp(['push', '-n', '1', '--retries', '0', `${src}/`, `${HOST}:${proxy.port}:cut`]);
    expectExit(r, 5);
  } finally {
    await proxy.close();
  }
  assert.equal(await readFile(join(dst, 'payload.bin')), before, 'the previous version must survive');
  // README "Interruptions": an interrupted upload may keep its partial file (and piece hashes) for resume,
  // beside the destination and under the temporary names only.
  const allowed = new Set(['payload.bin', '.payload.bin.fcp-part', '.payload.bin.fcp-meta']);
  const leftovers = (await readdir(dst)).filter((n) => !allowed.has(n));
  assert.equal(leftovers, [], 'nothing but the file and its resume state');

  // The same command again, uninterrupted: the new version in place, no temporary file left behind.
  const again = await runFcp(['push', '-n', '1', `${src}/`, remote('cut')]);
  expectExit(again, 0);
  let names: string[] = [];
  // The daemon finishes its bookkeeping right after the client's summary: allow a moment, bounded.
  for (let i = 0; i < 50; i++) {
    names = (await readdir(dst)).sort();
    if (names.length === 1) break;
    await sleep(100);
  }
  assert.equal(names, ['payload.bin']);
  await expectSame(src, dst);
});

test('a failed pull replacement leaves the previous local version in place', async () => {
  // The daemon cannot read the source: run a second daemon as the unprivileged user.
  const user = unprivileged();
  const root = join(tmp, 'pull-fail-root');
  await buildTree(root, [
    { kind: 'file', path: 'secret.txt', size: 4000, seed: 21, mtime: timeAt(21) },
    { kind: 'file', path: 'open.txt', size: 4000, seed: 22, mtime: timeAt(22) },
  ]);
  await chmod(join(root, 'secret.txt'), 0o000);
  const local = join(tmp, 'pull-fail-local');
  await buildTree(local, [
    { kind: 'file', path: 'secret.txt', size: 100, seed: 31, mtime: timeAt(31) },
    { kind: 'file', path: 'open.txt', size: 100, seed: 32, mtime: timeAt(32) },
  ]);
  const before = await readFile(join(local, 'secret.txt'));
  // The client runs as that user too: its token is the only one a client uses (spec/SECURITY.md §5.4).
  if (user.uid !== undefined) execFileSync('chown', ['-R', `${user.uid}:${user.gid ?? user.uid}`, local]);
  const other = await spawnDaemon({ root, ...user });
  try {
    const r = await runFcp(['pull', other.remote(`${root}/`), local], user);
    expectExit(r, 3);
    expectSummary(r, { sent: 1, skipped: 0, failed: 1 });
    // Each failed file is reported by name (exit code 3: "some files failed; each one was reported").
    assert.match(r.stderr, /^fcp: .*secret\.txt/m, describeRun(r));
  } finally {
    await other.stop();
  }
  assert.equal(await readFile(join(local, 'secret.txt')), before);
  assert.equal((await readdir(local)).sort(), ['open.txt', 'secret.txt']);
  await chmod(join(root, 'secret.txt'), 0o644);
  await expectSame(join(root, 'open.txt'), join(local, 'open.txt'));
});

test('the daemon is still serving after everything above', async () => {
  const probe = join(tmp, 'probe.txt');
  await writeFile(probe, 'still here\n');
  expectExit(await runFcp(['push', probe, remote('probe.txt')]), 0);
  assert.is(await readFile(join(served, 'probe.txt'), 'utf8'), 'still here\n');
  assert.is(fcpd().child.exitCode, null);
});

test.run();
