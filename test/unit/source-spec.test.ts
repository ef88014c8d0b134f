import fs from 'node:fs';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/errors.js';
import { ConfinedRoot } from '../../src/transfer/store/confined-root.js';
import {
  expandRemoteSources,
  localSourceRoot,
  type SourceRoot,
} from '../../src/transfer/store/source-spec.js';
import { rejection, tempDirs } from '../helpers/expect.js';

const { make: tempDir, removeAll } = tempDirs();

test.after(removeAll);

/**
 * base/
 *   outside/x.gz  outside/secret.gz
 *   served/                     (the root)
 *     top.gz
 *     logs/ a.gz b.gz c.txt .hidden.gz 'sp ace.gz' 'a[1].gz'
 *       sub/d.gz  sub/deep/e.gz  .dot/f.gz
 *       link.gz -> ../../outside/secret.gz    linkdir -> ../../outside
 *   rootlink -> served
 *   servedevil/a.gz            (a sibling whose name starts like the root's)
 */
async function fixture(): Promise<{ base: string; root: ConfinedRoot; outside: string }> {
  const base = tempDir();
  const outside = path.join(base, 'outside');
  const served = path.join(base, 'served');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'x.gz'), '');
  fs.writeFileSync(path.join(outside, 'secret.gz'), '');
  const logs = path.join(served, 'logs');
  fs.mkdirSync(path.join(logs, 'sub/deep'), { recursive: true });
  fs.mkdirSync(path.join(logs, '.dot'));
  for (const f of [
    'a.gz',
    'b.gz',
    'c.txt',
    '.hidden.gz',
    'sp ace.gz',
    'a[1].gz',
    'sub/d.gz',
    'sub/deep/e.gz',
    '.dot/f.gz',
  ]) {
    fs.writeFileSync(path.join(logs, f), '');
  }
  fs.writeFileSync(path.join(served, 'top.gz'), '');
  fs.symlinkSync('../../outside/secret.gz', path.join(logs, 'link.gz'));
  fs.symlinkSync('../../outside', path.join(logs, 'linkdir'));
  fs.symlinkSync(served, path.join(base, 'rootlink'));
  fs.mkdirSync(path.join(base, 'servedevil'));
  fs.writeFileSync(path.join(base, 'servedevil/a.gz'), '');
  return { base, root: await ConfinedRoot.open(served), outside };
}

function relsOf(root: ConfinedRoot, sources: SourceRoot[]): string[] {
  return sources.map((s) => path.relative(root.path, s.abs) || '.');
}

test('localSourceRoot: a trailing slash means the contents', () => {
  const cwd = process.cwd();
  assert.equal(localSourceRoot('dir/'), { abs: path.join(cwd, 'dir'), topRel: '.' });
  assert.equal(localSourceRoot('dir/.'), { abs: path.join(cwd, 'dir'), topRel: '.' });
  assert.equal(localSourceRoot('.'), { abs: cwd, topRel: '.' });
  assert.equal(localSourceRoot('./'), { abs: cwd, topRel: '.' });
  assert.equal(localSourceRoot('/'), { abs: '/', topRel: '.' });
  assert.equal(localSourceRoot('/a/b//'), { abs: '/a/b', topRel: '.' });
});

test('localSourceRoot: without a trailing slash the entry keeps its name', () => {
  const cwd = process.cwd();
  assert.equal(localSourceRoot('dir'), { abs: path.join(cwd, 'dir'), topRel: 'dir' });
  assert.equal(localSourceRoot('a/b/file.txt'), { abs: path.join(cwd, 'a/b/file.txt'), topRel: 'file.txt' });
  assert.equal(localSourceRoot('/abs/with space'), { abs: '/abs/with space', topRel: 'with space' });
  assert.equal(localSourceRoot('..'), { abs: path.dirname(cwd), topRel: path.basename(path.dirname(cwd)) });
  assert.equal(localSourceRoot('-rf'), { abs: path.join(cwd, '-rf'), topRel: '-rf' });
});

test('localSourceRoot refuses empty and NUL paths as usage errors', () => {
  const isUsage = (err: unknown) => err instanceof FcpError && err.code === 'FCP_ERR_USAGE';
  assert.throws(() => localSourceRoot(''), isUsage);
  assert.throws(() => localSourceRoot('a\0b'), isUsage);
});

test('a glob matches one level, skips dot names and returns links without following them', async () => {
  const { root } = await fixture();
  const sources = await expandRemoteSources(root, 'logs/*.gz');
  assert.equal(relsOf(root, sources), [
    'logs/a.gz',
    'logs/a[1].gz',
    'logs/b.gz',
    'logs/link.gz',
    'logs/sp ace.gz',
  ]);
  assert.equal(
    sources.map((s) => s.topRel),
    ['a.gz', 'a[1].gz', 'b.gz', 'link.gz', 'sp ace.gz'],
  );
  assert.is(sources[3]?.abs, path.join(root.path, 'logs/link.gz'));
});

test('an explicit dot glob matches dot names', async () => {
  const { root } = await fixture();
  assert.equal(relsOf(root, await expandRemoteSources(root, 'logs/.*.gz')), ['logs/.hidden.gz']);
});

test('an absolute spec inside the root works like a relative one', async () => {
  const { root } = await fixture();
  const abs = await expandRemoteSources(root, `${root.path}/logs/*.gz`);
  const rel = await expandRemoteSources(root, 'logs/*.gz');
  assert.equal(abs, rel);
  assert.equal(await expandRemoteSources(root, `${root.path}//logs/./a.gz`), [
    { abs: path.join(root.path, 'logs/a.gz'), topRel: 'a.gz' },
  ]);
});

test('an absolute spec through the path the root was opened as is inside too', async () => {
  const { base } = await fixture();
  const root = await ConfinedRoot.open(path.join(base, 'rootlink'));
  assert.equal(await expandRemoteSources(root, `${base}/rootlink/top.gz`), [
    { abs: path.join(root.path, 'top.gz'), topRel: 'top.gz' },
  ]);
});

test('an absolute spec outside the root is refused, fatally, even with a shared prefix', async () => {
  const { base, root, outside } = await fixture();
  for (const spec of [
    '/etc/passwd',
    `${outside}/x.gz`,
    `${base}/servedevil/a.gz`,
    `${base}/served*/a.gz`,
    '/',
  ]) {
    const err = await rejection(expandRemoteSources(root, spec), 'FCP_ERR_PATH_OUTSIDE_ROOT');
    assert.is(err.fatal, true);
  }
});

test('".." is refused even when it would stay inside the root', async () => {
  const { root } = await fixture();
  for (const spec of ['logs/../top.gz', '../served/top.gz', `${root.path}/logs/../top.gz`, '..', 'logs/..']) {
    await rejection(expandRemoteSources(root, spec), 'FCP_ERR_PATH_UNSAFE');
  }
  await rejection(expandRemoteSources(root, 'top.gz\0'), 'FCP_ERR_PATH_UNSAFE');
  await rejection(expandRemoteSources(root, 'logs/\0*'), 'FCP_ERR_PATH_UNSAFE');
});

test('"**" matches any number of levels, not into dot directories or through links', async () => {
  const { root } = await fixture();
  const sources = await expandRemoteSources(root, 'logs/**/*.gz');
  assert.equal(relsOf(root, sources), [
    'logs/a.gz',
    'logs/a[1].gz',
    'logs/b.gz',
    'logs/link.gz',
    'logs/sp ace.gz',
    'logs/sub/d.gz',
    'logs/sub/deep/e.gz',
  ]);
  assert.equal(
    sources.map((s) => s.topRel),
    ['a.gz', 'a[1].gz', 'b.gz', 'link.gz', 'sp ace.gz', 'd.gz', 'e.gz'],
  );
  assert.equal(relsOf(root, await expandRemoteSources(root, '**/e.gz')), ['logs/sub/deep/e.gz']);
  assert.equal(relsOf(root, await expandRemoteSources(root, '**/**/sub/**/e.gz')), ['logs/sub/deep/e.gz']);
});

test('a trailing "**" sends each top-level match once, not its contents again', async () => {
  const { root } = await fixture();
  assert.equal(relsOf(root, await expandRemoteSources(root, 'logs/**')), [
    'logs/a.gz',
    'logs/a[1].gz',
    'logs/b.gz',
    'logs/c.txt',
    'logs/link.gz',
    'logs/linkdir',
    'logs/sp ace.gz',
    'logs/sub',
  ]);
});

test('matches inside another matched directory are dropped', async () => {
  const { root } = await fixture();
  fs.mkdirSync(path.join(root.path, 'logs/sub/sub'));
  assert.equal(relsOf(root, await expandRemoteSources(root, '**/sub')), ['logs/sub']);
});

test('a glob with a trailing slash matches real directories only and means their contents', async () => {
  const { root } = await fixture();
  const sources = await expandRemoteSources(root, 'logs/*/');
  assert.equal(sources, [{ abs: path.join(root.path, 'logs/sub'), topRel: '.' }]);
});

test('literal specs: a directory by name, its contents, the root', async () => {
  const { root } = await fixture();
  assert.equal(await expandRemoteSources(root, 'logs'), [
    { abs: path.join(root.path, 'logs'), topRel: 'logs' },
  ]);
  assert.equal(await expandRemoteSources(root, 'logs/'), [
    { abs: path.join(root.path, 'logs'), topRel: '.' },
  ]);
  assert.equal(await expandRemoteSources(root, 'logs/sub/d.gz'), [
    { abs: path.join(root.path, 'logs/sub/d.gz'), topRel: 'd.gz' },
  ]);
  assert.equal(await expandRemoteSources(root, 'logs/a[1].gz'), [
    { abs: path.join(root.path, 'logs/a[1].gz'), topRel: 'a[1].gz' },
  ]);
  for (const spec of ['', '.', './', root.path + '/']) {
    assert.equal(
      await expandRemoteSources(root, spec),
      [{ abs: root.path, topRel: '.' }],
      JSON.stringify(spec),
    );
  }
  assert.equal(await expandRemoteSources(root, root.path), [{ abs: root.path, topRel: 'served' }]);
});

test('a symlink in the literal base is refused, never followed', async () => {
  const { root } = await fixture();
  for (const spec of ['logs/linkdir/*.gz', 'logs/linkdir/x.gz', 'logs/linkdir/', 'logs/linkdir/**']) {
    const err = await rejection(expandRemoteSources(root, spec), 'FCP_ERR_PATH_SYMLINK');
    assert.is(err.path, 'logs/linkdir', spec);
  }
});

test('a symlink named as the last literal segment is a match, sent as a link', async () => {
  const { root } = await fixture();
  assert.equal(await expandRemoteSources(root, 'logs/linkdir'), [
    { abs: path.join(root.path, 'logs/linkdir'), topRel: 'linkdir' },
  ]);
});

test('a root whose own path has a symlink can still be served (it was resolved at open)', async () => {
  const { base } = await fixture();
  const root = await ConfinedRoot.open(path.join(base, 'rootlink'));
  assert.equal(relsOf(root, await expandRemoteSources(root, 'logs/sub/*')), [
    'logs/sub/d.gz',
    'logs/sub/deep',
  ]);
});

test('no match is FCP_ERR_PATH_NO_MATCH, fatal, naming the spec', async () => {
  const { root } = await fixture();
  for (const spec of [
    'logs/*.zip',
    'missing/*.gz',
    'missing',
    'logs/a.gz/x',
    'logs/a.gz/*',
    'logs/a.gz/',
    'nope/',
  ]) {
    const err = await rejection(expandRemoteSources(root, spec), 'FCP_ERR_PATH_NO_MATCH');
    assert.is(err.fatal, true);
    assert.match(err.message, `no match for ${spec}`);
  }
});

test('braces, classes and escapes in a segment; extglobs are a usage error naming the segment', async () => {
  const { root } = await fixture();
  assert.equal(relsOf(root, await expandRemoteSources(root, 'logs/{a,b}.gz')), ['logs/a.gz', 'logs/b.gz']);
  assert.equal(relsOf(root, await expandRemoteSources(root, 'logs/[!ab]*')), [
    'logs/c.txt',
    'logs/link.gz',
    'logs/linkdir',
    'logs/sp ace.gz',
    'logs/sub',
  ]);
  assert.equal(relsOf(root, await expandRemoteSources(root, 'logs/a\\[1\\]*')), ['logs/a[1].gz']);
  const err = await rejection(expandRemoteSources(root, 'logs/@(a|b).gz'), 'FCP_ERR_USAGE');
  assert.match(err.message, 'invalid pattern "@(a|b).gz": extglobs');
});

test('names that are not UTF-8 are reported during matching and skipped', async () => {
  const { root } = await fixture();
  fs.writeFileSync(
    Buffer.concat([Buffer.from(`${root.path}/logs/z`), Buffer.from([0xff]), Buffer.from('.gz')]),
    '',
  );
  const warnings: FcpError[] = [];
  const sources = await expandRemoteSources(root, 'logs/*.gz', (w) => warnings.push(w));
  assert.is(sources.length, 5);
  assert.is(warnings.length, 1);
  assert.is(warnings[0]?.code, 'FCP_ERR_PATH_ENCODING');
});

test('results come back in byte order', async () => {
  const base = tempDir();
  for (const name of ['b', 'B', 'a', 'é', '\uffff', '😀']) fs.writeFileSync(path.join(base, name), '');
  const root = await ConfinedRoot.open(base);
  const sources = await expandRemoteSources(root, '*');
  assert.equal(
    sources.map((s) => s.topRel),
    ['B', 'a', 'b', 'é', '\uffff', '😀'],
  );
});

test.run();
