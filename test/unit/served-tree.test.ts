// What fcpd serves (src/transfer/store/served-tree.ts, spec/SECURITY.md §11): by default what its account may
// open, absolute operands absolute and relative ones from its home, the operand resolved by the kernel
// (links the client named followed) and everything below it confined; with --root, the old confinement.
import fs from 'node:fs';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { openServedTree, type ServedTree } from '../../src/transfer/store/served-tree.js';
import { rejection, tempDirs } from '../helpers/expect.js';

const { make: tempDir, removeAll } = tempDirs();

test.after(removeAll);

/**
 * base/
 *   home/                     (the account's home)   home/logs/h.gz
 *   elsewhere/                (outside the home)     elsewhere/logs/a.gz b.gz c.txt  elsewhere/logs/sub/d.gz
 *     logs/link.gz -> ../secret.gz   logs/linkdir -> ..   secret.gz
 *   via -> elsewhere          (a link the client may name, like /var/run -> /run)
 */
function fixture(): { base: string; home: string; elsewhere: string; tree: Promise<ServedTree> } {
  const base = tempDir();
  const home = path.join(base, 'home');
  const elsewhere = path.join(base, 'elsewhere');
  fs.mkdirSync(path.join(home, 'logs'), { recursive: true });
  fs.writeFileSync(path.join(home, 'logs/h.gz'), '');
  fs.mkdirSync(path.join(elsewhere, 'logs/sub'), { recursive: true });
  for (const f of ['a.gz', 'b.gz', 'c.txt', 'sub/d.gz'])
    fs.writeFileSync(path.join(elsewhere, 'logs', f), '');
  fs.writeFileSync(path.join(elsewhere, 'secret.gz'), '');
  fs.symlinkSync('../secret.gz', path.join(elsewhere, 'logs/link.gz'));
  fs.symlinkSync('..', path.join(elsewhere, 'logs/linkdir'));
  fs.symlinkSync(elsewhere, path.join(base, 'via'));
  return { base, home, elsewhere, tree: openServedTree({ home }) };
}

test('serving the account: an absolute destination outside the home is that path (the design card)', async () => {
  const { elsewhere, tree } = fixture();
  const dest = await (await tree).destination(`${elsewhere}/dst`, false);
  assert.is(dest.root.path, path.join(elsewhere, 'dst'));
  assert.is(dest.singleName, undefined);
  assert.ok(fs.statSync(path.join(elsewhere, 'dst')).isDirectory());
});

test('serving the account: a relative destination starts at the home', async () => {
  const { home, tree } = fixture();
  const served = await tree;
  assert.is((await served.destination('incoming', false)).root.path, path.join(home, 'incoming'));
  assert.is((await served.destination('', false)).root.path, home);
  const single = await served.destination('logs/new-name.gz', true);
  assert.equal([single.root.path, single.singleName], [path.join(home, 'logs'), 'new-name.gz']);
});

test('serving the account: the links the client named are followed, as scp does', async () => {
  const { base, elsewhere, tree } = fixture();
  const served = await tree;
  assert.is((await served.destination(`${base}/via/logs/`, false)).root.path, path.join(elsewhere, 'logs'));
  assert.is((await served.destination(`${base}/via/fresh`, false)).root.path, path.join(elsewhere, 'fresh'));
  const single = await served.destination(`${base}/via/one.txt`, true);
  assert.equal([single.root.path, single.singleName], [elsewhere, 'one.txt']);
});

test('serving the account: below the destination a planted link is still refused', async () => {
  const { base, elsewhere, tree } = fixture();
  const dest = await (await tree).destination(`${base}/via/logs`, false);
  // The peer names entries below the destination: 'linkdir' (a link to elsewhere) must not be passed through.
  const err = await rejection(dest.root.ensureDir('linkdir/x'), 'FCP_ERR_PATH_SYMLINK');
  assert.match(err.message, path.join(elsewhere, 'logs'));
  assert.not.ok(fs.existsSync(path.join(elsewhere, 'x')));
  await rejection(dest.root.openFile('link.gz', fs.constants.O_WRONLY), 'FCP_ERR_PATH_SYMLINK');
  assert.is(fs.readFileSync(path.join(elsewhere, 'secret.gz'), 'utf8'), '');
});

test('serving the account: ".." and NUL in an operand are refused outright', async () => {
  const { home, tree } = fixture();
  const served = await tree;
  for (const spec of ['../elsewhere', `${home}/../elsewhere/dst`, 'a/..', 'a\0b']) {
    const err = await rejection(served.destination(spec, false), 'FCP_ERR_PATH_UNSAFE');
    assert.ok(err.fatal, spec);
    await rejection(
      served.sources(spec, () => {}),
      'FCP_ERR_PATH_UNSAFE',
    );
  }
});

test('serving the account: a destination whose parent is missing or a file says so', async () => {
  const { elsewhere, tree } = fixture();
  const served = await tree;
  const err = await rejection(served.destination(`${elsewhere}/no/such`, false), 'ENOENT');
  assert.match(err.message, `${elsewhere}/no/such`);
  await rejection(served.destination(`${elsewhere}/secret.gz/x`, false), 'ENOENT');
  await rejection(served.destination(`${elsewhere}/secret.gz`, false), 'ENOTDIR');
});

test('serving the account: an absolute glob is expanded where it points (the design card)', async () => {
  const { elsewhere, tree } = fixture();
  const sources = await (await tree).sources(`${elsewhere}/logs/*.gz`, () => {});
  assert.equal(sources, [
    { abs: path.join(elsewhere, 'logs/a.gz'), topRel: 'a.gz' },
    { abs: path.join(elsewhere, 'logs/b.gz'), topRel: 'b.gz' },
    // A matched link is sent as a link, never followed.
    { abs: path.join(elsewhere, 'logs/link.gz'), topRel: 'link.gz' },
  ]);
});

test('serving the account: relative specs start at the home; links named are followed', async () => {
  const { base, home, elsewhere, tree } = fixture();
  const served = await tree;
  assert.equal(await served.sources('logs/*.gz', () => {}), [
    { abs: path.join(home, 'logs/h.gz'), topRel: 'h.gz' },
  ]);
  assert.equal(await served.sources('', () => {}), [{ abs: home, topRel: '.' }]);
  assert.equal(await served.sources(`${base}/via/logs/sub/`, () => {}), [
    { abs: path.join(elsewhere, 'logs/sub'), topRel: '.' },
  ]);
  assert.equal(await served.sources(`${base}/via/logs/sub/*.gz`, () => {}), [
    { abs: path.join(elsewhere, 'logs/sub/d.gz'), topRel: 'd.gz' },
  ]);
  // The last name of a literal spec is what is sent: a link goes as a link (as rsync), its parent followed.
  assert.equal(await served.sources(`${base}/via`, () => {}), [
    { abs: path.join(base, 'via'), topRel: 'via' },
  ]);
  assert.equal(await served.sources(`${base}/via/logs/linkdir`, () => {}), [
    { abs: path.join(elsewhere, 'logs/linkdir'), topRel: 'linkdir' },
  ]);
});

test('serving the account: globs below the base never pass through a link', async () => {
  const { elsewhere, tree } = fixture();
  // logs/linkdir -> .. would reach secret.gz; '*/*.gz' must match only through real directories.
  assert.equal(await (await tree).sources(`${elsewhere}/logs/*/*.gz`, () => {}), [
    { abs: path.join(elsewhere, 'logs/sub/d.gz'), topRel: 'd.gz' },
  ]);
});

test('serving the account: nothing there is FCP_ERR_PATH_NO_MATCH', async () => {
  const { elsewhere, tree } = fixture();
  const served = await tree;
  for (const spec of [`${elsewhere}/none`, `${elsewhere}/none/*.gz`, `${elsewhere}/secret.gz/*`, 'none/']) {
    await rejection(
      served.sources(spec, () => {}),
      'FCP_ERR_PATH_NO_MATCH',
    );
  }
});

test('with --root, an operand outside it is refused and the error names the served root', async () => {
  const { home, elsewhere } = fixture();
  const served = await openServedTree({ root: home });
  assert.is(served.description, home);
  const pushErr = await rejection(served.destination(`${elsewhere}/dst`, false), 'FCP_ERR_PATH_OUTSIDE_ROOT');
  assert.is(pushErr.message, `${elsewhere}/dst is outside the served root ${home}`);
  const pullErr = await rejection(
    served.sources(`${elsewhere}/logs/*.gz`, () => {}),
    'FCP_ERR_PATH_OUTSIDE_ROOT',
  );
  assert.match(pullErr.message, `outside the served root ${home}`);
  assert.not.ok(fs.existsSync(path.join(elsewhere, 'dst')));
});

test('with --root, a link on the way to the operand is refused, naming the root', async () => {
  const { home, elsewhere } = fixture();
  fs.symlinkSync(elsewhere, path.join(home, 'via'));
  const served = await openServedTree({ root: home });
  const err = await rejection(served.destination('via/dst', false), 'FCP_ERR_PATH_SYMLINK');
  assert.match(err.message, home);
  await rejection(
    served.sources('via/logs/*.gz', () => {}),
    'FCP_ERR_PATH_SYMLINK',
  );
  assert.not.ok(fs.existsSync(path.join(elsewhere, 'dst')));
});

test('the start-up line says what is served', async () => {
  const { home } = fixture();
  assert.is((await openServedTree({ home })).description, `/ (relative paths from ${home})`);
});

test.run();
