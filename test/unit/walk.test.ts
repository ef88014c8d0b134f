import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/errors.js';
import { createSelector, type Selector } from '../../src/transfer/select.js';
import { type WalkEntry, walk, walkBatches } from '../../src/transfer/store/walk.js';
import { execFileSync, spawnSync } from '../helpers/sync.js';

const made: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(`${os.tmpdir()}/fcp-`);
  made.push(dir);
  return dir;
}

test.after(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

interface Walked {
  entries: WalkEntry[];
  warnings: FcpError[];
}

async function collect(abs: string, topRel: string, selector: Selector = createSelector()): Promise<Walked> {
  const entries: WalkEntry[] = [];
  const warnings: FcpError[] = [];
  for await (const entry of walk(abs, topRel, selector, (w) => warnings.push(w))) entries.push(entry);
  return { entries, warnings };
}

const rels = (w: Walked) => w.entries.map((e) => e.rel);

/**
 * base/
 *   outside/secret.txt             (must never be walked)
 *   tree/
 *     b.txt  'a b'  'new\nline'  Ünï.txt
 *     a/deep/er/file.bin
 *     empty/
 *     link-out -> ../outside         (symlink to a directory outside the tree)
 *     link-rel -> b.txt
 *     fifo                           (FIFO)
 */
function buildTree(): { base: string; tree: string; outside: string } {
  const base = tempDir();
  const tree = path.join(base, 'tree');
  const outside = path.join(base, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret.txt'), 'secret');
  fs.mkdirSync(path.join(tree, 'a/deep/er'), { recursive: true });
  fs.mkdirSync(path.join(tree, 'empty'));
  fs.writeFileSync(path.join(tree, 'b.txt'), 'bbb');
  fs.writeFileSync(path.join(tree, 'a b'), '');
  fs.writeFileSync(path.join(tree, 'new\nline'), '');
  fs.writeFileSync(path.join(tree, 'Ünï.txt'), '');
  fs.writeFileSync(path.join(tree, 'a/deep/er/file.bin'), Buffer.alloc(1000));
  fs.symlinkSync('../outside', path.join(tree, 'link-out'));
  fs.symlinkSync('b.txt', path.join(tree, 'link-rel'));
  execFileSync('mkfifo', [path.join(tree, 'fifo')]);
  return { base, tree, outside };
}

test('walks depth first in byte order, directories before their contents', async () => {
  const { tree } = buildTree();
  const walked = await collect(tree, 'tree');
  assert.equal(rels(walked), [
    'tree',
    'tree/a',
    'tree/a/deep',
    'tree/a/deep/er',
    'tree/a/deep/er/file.bin',
    'tree/a b',
    'tree/b.txt',
    'tree/empty',
    'tree/fifo',
    'tree/link-out',
    'tree/link-rel',
    'tree/new\nline',
    'tree/Ünï.txt',
  ]);
  assert.equal(walked.warnings, []);
});

test('topRel "." walks the contents, naming the top "."', async () => {
  const { tree } = buildTree();
  const walked = await collect(tree, '.');
  assert.is(walked.entries[0]?.rel, '.');
  assert.is(walked.entries[0]?.abs, tree);
  assert.equal(rels(walked).slice(1, 4), ['a', 'a/deep', 'a/deep/er']);
  assert.ok(rels(walked).includes('empty'));
});

test('kinds, modes, sizes, times and absolute paths are reported', async () => {
  const { tree } = buildTree();
  fs.chmodSync(path.join(tree, 'b.txt'), 0o640);
  fs.chmodSync(path.join(tree, 'a'), 0o2751);
  const byRel = new Map((await collect(tree, 'tree')).entries.map((e) => [e.rel, e]));
  const file = byRel.get('tree/b.txt')!;
  assert.is(file.kind, 'file');
  assert.is(file.mode, 0o640);
  assert.is(file.size, 3n);
  assert.is(file.mtimeNs, fs.lstatSync(path.join(tree, 'b.txt'), { bigint: true }).mtimeNs);
  assert.is(file.abs, path.join(tree, 'b.txt'));
  assert.is(file.linkTarget, undefined);
  const dir = byRel.get('tree/a')!;
  assert.is(dir.kind, 'dir');
  assert.is(dir.mode, 0o2751);
  assert.is(byRel.get('tree/a/deep/er/file.bin')?.size, 1000n);
  assert.is(byRel.get('tree/fifo')?.kind, 'other');
  assert.is(byRel.get('tree/empty')?.kind, 'dir');
});

test('symlinks are yielded with their text and never followed (regression: walking outside the tree)', async () => {
  const { tree, outside } = buildTree();
  fs.symlinkSync(outside, path.join(tree, 'link-abs'));
  const walked = await collect(tree, 'tree');
  const byRel = new Map(walked.entries.map((e) => [e.rel, e]));
  assert.is(byRel.get('tree/link-out')?.kind, 'symlink');
  assert.is(byRel.get('tree/link-out')?.linkTarget, '../outside');
  assert.is(byRel.get('tree/link-abs')?.linkTarget, outside);
  assert.is(byRel.get('tree/link-rel')?.kind, 'symlink');
  assert.is(byRel.get('tree/link-rel')?.linkTarget, 'b.txt');
  for (const e of walked.entries) assert.not.match(e.rel, /secret/);
  for (const e of walked.entries) assert.not.ok(e.abs.startsWith(outside), e.abs);
});

test('a name that is not UTF-8 is reported and skipped', async () => {
  const { tree } = buildTree();
  const bad = Buffer.concat([Buffer.from(`${tree}/bad`), Buffer.from([0xff, 0xfe]), Buffer.from('.txt')]);
  fs.writeFileSync(bad, 'x');
  const badDir = Buffer.concat([Buffer.from(`${tree}/dir`), Buffer.from([0xc3])]);
  fs.mkdirSync(badDir);
  fs.writeFileSync(Buffer.concat([badDir, Buffer.from('/inner')]), 'x');
  const walked = await collect(tree, 'tree');
  assert.is(walked.warnings.length, 2);
  for (const w of walked.warnings) {
    assert.is(w.code, 'FCP_ERR_PATH_ENCODING');
    assert.is(w.fatal, false);
    assert.match(w.path ?? '', /^tree\/(bad|dir)\ufffd/);
  }
  for (const e of walked.entries) assert.not.match(e.rel, /bad|inner|\ufffd/);
  assert.ok(rels(walked).includes('tree/b.txt'));
});

test('a name holding U+FFFD itself (valid UTF-8: EF BF BD) is walked like any other', async () => {
  const { tree } = buildTree();
  fs.writeFileSync(`${tree}/odd-\ufffd.txt`, 'x');
  const walked = await collect(tree, 'tree');
  assert.is(walked.warnings.length, 0);
  assert.ok(rels(walked).includes('tree/odd-\ufffd.txt'));
});

test('a link whose target is not UTF-8 is reported and skipped', async () => {
  const tree = tempDir();
  fs.symlinkSync(Buffer.from([0x2e, 0x2f, 0xff]), path.join(tree, 'odd-link'));
  fs.writeFileSync(path.join(tree, 'fine'), '');
  const walked = await collect(tree, '.');
  assert.equal(rels(walked), ['.', 'fine']);
  assert.is(walked.warnings[0]?.code, 'FCP_ERR_PATH_ENCODING');
  assert.is(walked.warnings[0]?.path, 'odd-link');
});

test('an entry that vanishes between readdir and lstat is reported and the walk goes on', async () => {
  const { tree } = buildTree();
  // walk lstats children synchronously; patch that binding.
  const original = fs.lstatSync;
  Object.assign(fs, {
    lstatSync: ((p: fs.PathLike, opts?: fs.StatSyncOptions) => {
      if (String(p).endsWith('/b.txt')) throw Object.assign(new Error('ENOENT: gone'), { code: 'ENOENT' });
      return original(p, opts);
    }) as typeof fs.lstatSync,
  });
  syncBuiltinESMExports();
  let walked: Walked;
  try {
    walked = await collect(tree, 'tree');
  } finally {
    Object.assign(fs, { lstatSync: original });
    syncBuiltinESMExports();
  }
  assert.not.ok(rels(walked).includes('tree/b.txt'));
  assert.ok(rels(walked).includes('tree/empty'));
  assert.is(walked.warnings.length, 1);
  assert.is(walked.warnings[0]?.code, 'ENOENT');
  assert.is(walked.warnings[0]?.path, 'tree/b.txt');
});

/** The uid/gid of an unprivileged user, created if the machine has none (tests run as root in CI). */
function unprivilegedUser(): { uid: number; gid: number } {
  const lookup = (name: string) => {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      return undefined;
    }
  };
  const existing = lookup('nobody') ?? lookup('fcp-test');
  if (existing !== undefined) return existing;
  execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'fcp-test']);
  return lookup('fcp-test')!;
}

const WALK_MODULE = new URL('../../src/transfer/store/walk.js', import.meta.url).href;
const SELECT_MODULE = new URL('../../src/transfer/select.js', import.meta.url).href;

// Run by an unprivileged child: walks argv[1] and prints what it saw as JSON.
const CHILD_WALK = `
const { walk } = await import(${JSON.stringify(WALK_MODULE)});
const { createSelector } = await import(${JSON.stringify(SELECT_MODULE)});
const rels = [];
const warnings = [];
for await (const e of walk(process.argv[1], '.', createSelector(), (w) => warnings.push({ code: w.code, path: w.path }))) rels.push(e.rel);
console.log(JSON.stringify({ rels, warnings }));
`;

test('an unreadable subdirectory is reported (EACCES) and the walk goes on', async () => {
  const base = tempDir();
  fs.chmodSync(base, 0o755);
  const tree = path.join(base, 'tree');
  fs.mkdirSync(path.join(tree, 'locked'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'locked/inner.txt'), 'x');
  fs.mkdirSync(path.join(tree, 'open'));
  fs.writeFileSync(path.join(tree, 'open/x'), 'x');
  fs.writeFileSync(path.join(tree, 'ok.txt'), 'x');
  fs.chmodSync(path.join(tree, 'locked'), 0o000);
  let result: { rels: string[]; warnings: { code: string; path: string }[] };
  if (process.getuid?.() === 0) {
    // Root ignores permission bits, so the walk runs as an unprivileged user.
    const { uid, gid } = unprivilegedUser();
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD_WALK, tree], {
      uid,
      gid,
      encoding: 'utf8',
      cwd: '/',
    });
    assert.is(child.status, 0, child.stderr);
    result = JSON.parse(child.stdout);
  } else {
    const walked = await collect(tree, '.');
    result = {
      rels: rels(walked),
      warnings: walked.warnings.map((w) => ({ code: w.code, path: w.path ?? '' })),
    };
  }
  fs.chmodSync(path.join(tree, 'locked'), 0o755);
  assert.equal(result.rels, ['.', 'locked', 'ok.txt', 'open', 'open/x']);
  assert.equal(result.warnings, [{ code: 'EACCES', path: 'locked' }]);
});

test('excluded directories are neither yielded nor descended; includes filter files only', async () => {
  const { tree } = buildTree();
  fs.mkdirSync(path.join(tree, 'skip/inner'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'skip/inner/x.txt'), '');
  const lstats: string[] = [];
  const original = fs.lstatSync;
  Object.assign(fs, {
    lstatSync: ((p: fs.PathLike, opts?: fs.StatSyncOptions) => {
      lstats.push(String(p));
      return original(p, opts);
    }) as typeof fs.lstatSync,
  });
  syncBuiltinESMExports();
  let walked: Walked;
  try {
    walked = await collect(tree, 'tree', createSelector({ exclude: ['skip'], include: ['*.txt', '*.bin'] }));
  } finally {
    Object.assign(fs, { lstatSync: original });
    syncBuiltinESMExports();
  }
  assert.equal(rels(walked), [
    'tree',
    'tree/a',
    'tree/a/deep',
    'tree/a/deep/er',
    'tree/a/deep/er/file.bin',
    'tree/b.txt',
    'tree/empty',
    'tree/Ünï.txt',
  ]);
  // Pruned, not filtered: nothing under skip/ was even looked at.
  assert.not.ok(lstats.some((p) => p.includes('/skip/')));
});

test('the top directory is yielded and walked even when a pattern would exclude it (the user named it)', async () => {
  const { tree } = buildTree();
  fs.mkdirSync(path.join(tree, 'a/tree'));
  const walked = await collect(tree, 'tree', createSelector({ exclude: ['tree'] }));
  assert.is(rels(walked)[0], 'tree');
  assert.ok(rels(walked).includes('tree/b.txt'));
  assert.not.ok(rels(walked).includes('tree/a/tree'));
});

test('a top file is yielded alone, and only when wanted', async () => {
  const { tree } = buildTree();
  const file = path.join(tree, 'b.txt');
  const walked = await collect(file, 'b.txt');
  assert.equal(rels(walked), ['b.txt']);
  assert.is(walked.entries[0]?.kind, 'file');
  assert.equal(rels(await collect(file, 'b.txt', createSelector({ exclude: ['*.txt'] }))), []);
  assert.equal(rels(await collect(file, 'b.txt', createSelector({ include: ['*.gz'] }))), []);
});

test('a top symlink is yielded as a link, not followed', async () => {
  const { tree } = buildTree();
  const walked = await collect(path.join(tree, 'link-out'), 'link-out');
  assert.equal(rels(walked), ['link-out']);
  assert.is(walked.entries[0]?.kind, 'symlink');
  assert.is(walked.entries[0]?.linkTarget, '../outside');
});

test('a "." top that is a symlink to a directory walks its contents (the user typed link/)', async () => {
  const { base, tree } = buildTree();
  const link = path.join(base, 'tree-link');
  fs.symlinkSync(tree, link);
  const walked = await collect(link, '.');
  assert.is(walked.entries[0]?.kind, 'dir');
  assert.ok(rels(walked).includes('a/deep/er/file.bin'));
  // Below the top nothing is followed.
  assert.is(walked.entries.find((e) => e.rel === 'link-out')?.kind, 'symlink');
});

test('a failing top-level lstat throws, fatally', async () => {
  const base = tempDir();
  try {
    await collect(path.join(base, 'missing'), 'missing');
    assert.unreachable();
  } catch (err) {
    assert.instance(err, FcpError);
    assert.is((err as FcpError).code, 'ENOENT');
    assert.is((err as FcpError).fatal, true);
  }
});

test('a "." top that is not a directory throws ENOTDIR', async () => {
  const base = tempDir();
  fs.writeFileSync(path.join(base, 'f'), '');
  try {
    await collect(path.join(base, 'f'), '.');
    assert.unreachable();
  } catch (err) {
    assert.instance(err, FcpError);
    assert.is((err as FcpError).code, 'ENOTDIR');
  }
});

test('an unsafe topRel is refused', async () => {
  const { tree } = buildTree();
  try {
    await collect(tree, '../tree');
    assert.unreachable();
  } catch (err) {
    assert.is((err as FcpError).code, 'FCP_ERR_PATH_UNSAFE');
  }
});

test('walkBatches: the same entries as walk, in batches of at most 512 that run across directories', async () => {
  const base = tempDir();
  const tree = path.join(base, 'tree');
  fs.mkdirSync(path.join(tree, 'a', 'deep'), { recursive: true });
  fs.mkdirSync(path.join(tree, 'wide'));
  for (let i = 0; i < 1200; i++)
    fs.writeFileSync(path.join(tree, 'wide', `f${String(i).padStart(4, '0')}`), '');
  fs.writeFileSync(path.join(tree, 'a', 'one'), '');
  fs.writeFileSync(path.join(tree, 'a', 'deep', 'two'), '');
  fs.writeFileSync(path.join(tree, 'z'), '');

  const batches: WalkEntry[][] = [];
  for await (const batch of walkBatches(tree, 'tree', createSelector(), () => {})) batches.push(batch);
  const flat = batches.flat().map((e) => e.rel);
  assert.equal(flat, rels(await collect(tree, 'tree')));
  assert.is(flat.length, 1 + 2 + 1 + 1 + 1 + 1200 + 1);
  // The top alone (its contents are read once the caller took it), then full batches: a directory no
  // longer ends one, so a tree of small directories goes out in few writes.
  assert.equal(
    batches.map((b) => b.length),
    [1, 512, 512, 182],
  );
});

/** Runs `body` with fs.readdirSync recording the directories it reads. */
async function recordingReaddir<T>(reads: string[], body: () => Promise<T>): Promise<T> {
  const original = fs.readdirSync;
  Object.assign(fs, {
    readdirSync: ((p: fs.PathLike, opts?: unknown) => {
      reads.push(String(p));
      return (original as (p: fs.PathLike, o: unknown) => unknown)(p, opts);
    }) as typeof fs.readdirSync,
  });
  syncBuiltinESMExports();
  try {
    return await body();
  } finally {
    Object.assign(fs, { readdirSync: original });
    syncBuiltinESMExports();
  }
}

test('the walk streams: the first entry arrives before any directory is read', async () => {
  const { tree } = buildTree();
  const reads: string[] = [];
  await recordingReaddir(reads, async () => {
    const it = walk(tree, 'tree', createSelector(), () => {});
    const first = await it.next();
    assert.is(first.value?.rel, 'tree');
    assert.equal(reads, []);
    await it.next();
    assert.equal(reads.slice(0, 1), [tree]);
    await it.return(undefined);
  });
});

test('a wide tree is read one batch ahead at most: directories past the batch are not read yet', async () => {
  const base = tempDir();
  const tree = path.join(base, 'tree');
  // 2,000 directories of one file each: the walk holds only the open branch and the current batch.
  for (let i = 0; i < 2000; i++) {
    const dir = path.join(tree, `d${String(i).padStart(4, '0')}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'f'), '');
  }
  const reads: string[] = [];
  await recordingReaddir(reads, async () => {
    const it = walkBatches(tree, 'tree', createSelector(), () => {});
    await it.next(); // the top
    const batch = await it.next();
    assert.is(batch.value?.length, 512);
    // The top, and the 256 directories whose entries (and files) are in this batch.
    assert.is(reads.length, 1 + 256);
    await it.return(undefined);
  });
});

test('a directory that vanishes between its lstat and its read is reported and the walk goes on', async () => {
  const { tree } = buildTree();
  const gone = path.join(tree, 'a', 'deep');
  const original = fs.readdirSync;
  Object.assign(fs, {
    readdirSync: ((p: fs.PathLike, opts?: unknown) => {
      // rm(1), not fs.rmSync: that reads directories through this very function.
      if (String(p) === gone) execFileSync('rm', ['-rf', gone]);
      return (original as (p: fs.PathLike, o: unknown) => unknown)(p, opts);
    }) as typeof fs.readdirSync,
  });
  syncBuiltinESMExports();
  let walked: Walked;
  try {
    walked = await collect(tree, 'tree');
  } finally {
    Object.assign(fs, { readdirSync: original });
    syncBuiltinESMExports();
  }
  assert.ok(rels(walked).includes('tree/a/deep'));
  assert.not.ok(rels(walked).includes('tree/a/deep/er'));
  assert.ok(rels(walked).includes('tree/b.txt'));
  assert.equal(
    walked.warnings.map((w) => [w.code, w.path]),
    [['ENOENT', 'tree/a/deep']],
  );
});

test('an entry whose wire path would pass PATH_MAX is reported and skipped, and the walk goes on', async () => {
  const tree = tempDir();
  // 16 levels of 250-byte names: the 16th level's path is 4,015 bytes, a name under it 4,266.
  const name = 'n'.repeat(250);
  execFileSync('sh', [
    '-c',
    `cd "$1" && for i in $(seq 16); do mkdir "$2" && cd "$2"; done && : > "$2" && : > short`,
    'sh',
    tree,
    name,
  ]);
  fs.writeFileSync(path.join(tree, 'z'), '');
  let walked: Walked;
  try {
    walked = await collect(tree, '.');
  } finally {
    // rm(1): fs.rmSync gives up on paths past PATH_MAX.
    execFileSync('rm', ['-rf', tree]);
  }
  const deepest = Array(16).fill(name).join('/');
  assert.ok(rels(walked).includes(`${deepest}/short`));
  assert.not.ok(rels(walked).includes(`${deepest}/${name}`));
  assert.ok(rels(walked).includes('z'));
  assert.equal(
    walked.warnings.map((w) => [w.code, w.path]),
    [['FCP_ERR_PATH_UNSAFE', `${deepest}/${name}`]],
  );
});

test('names are in UTF-8 byte order, astral characters after U+E000..U+FFFF', async () => {
  const tree = tempDir();
  for (const name of ['\u{1F600}', '\uFF21', 'b', 'A', '\u00e9']) fs.writeFileSync(path.join(tree, name), '');
  assert.equal(rels(await collect(tree, '.')), ['.', 'A', 'b', '\u00e9', '\uFF21', '\u{1F600}']);
});

test.run();
