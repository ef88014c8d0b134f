import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/errors.js';
import { ConfinedRoot } from '../../src/transfer/store/confined-root.js';
import { openNoFollow } from '../../src/transfer/store/no-follow.js';
import { sidecarNameFor, tempNameFor } from '../../src/transfer/store/temp-names.js';
import { checkWirePath, type SafePath } from '../../src/transfer/wire-path.js';
import { rejection, rootAndOutside, tempDirs } from '../helpers/expect.js';

const { make: tempDir, removeAll } = tempDirs();

type Fs = typeof fs;
type Patchable = 'mkdirSync' | 'lstatSync';

/**
 * Replaces one node:fs function for the length of `body`. The module under test imports it by name (its
 * directory checks are synchronous); syncBuiltinESMExports updates those live bindings.
 */
async function withPatched<K extends Patchable>(
  name: K,
  make: (original: Fs[K]) => Fs[K],
  body: () => Promise<void>,
): Promise<void> {
  const original = fs[name];
  fs[name] = make(original);
  syncBuiltinESMExports();
  try {
    await body();
  } finally {
    fs[name] = original;
    syncBuiltinESMExports();
  }
}

test.after(removeAll);

test('open resolves the real path and remembers how it was named', async () => {
  const base = tempDir();
  fs.mkdirSync(path.join(base, 'real'));
  fs.symlinkSync(path.join(base, 'real'), path.join(base, 'link'));
  const root = await ConfinedRoot.open(path.join(base, 'link'));
  assert.is(root.path, fs.realpathSync(path.join(base, 'real')));
  assert.is(root.openedAs, path.join(base, 'link'));
  assert.is(root.resolve('.'), root.path);
});

test('open refuses a missing root and a file, fatally', async () => {
  const base = tempDir();
  const missing = await rejection(ConfinedRoot.open(path.join(base, 'nope')), 'ENOENT');
  assert.is(missing.fatal, true);
  fs.writeFileSync(path.join(base, 'file'), '');
  const file = await rejection(ConfinedRoot.open(path.join(base, 'file')), 'ENOTDIR');
  assert.is(file.fatal, true);
});

test('resolve joins checked paths under the root and refuses the rest', async () => {
  const root = await ConfinedRoot.open(tempDir());
  assert.is(root.resolve('a/b c/d'), `${root.path}/a/b c/d`);
  assert.is(root.resolve('.'), root.path);
  for (const bad of ['../x', '/etc/passwd', 'a/../../x', 'a//b', '', 'a\0b', 'a/./b']) {
    assert.throws(
      () => root.resolve(bad),
      (err: unknown) => err instanceof FcpError && err.code === 'FCP_ERR_PATH_UNSAFE',
      JSON.stringify(bad),
    );
  }
});

test('resolveChecked appends a checked path as path.resolve would, and an unchecked one still cannot escape', async () => {
  const root = await ConfinedRoot.open(tempDir());
  const names = ['a', '...', '..a', 'a..', '.hidden', 'a/.b/.c', '.a.fcp-part', 'x/..y/z.', ' s p /~/C:'];
  for (const rel of names) {
    assert.is(root.resolveChecked(checkWirePath(rel)), path.resolve(root.path, rel), JSON.stringify(rel));
  }
  // A caller that cast instead of checking: the long route normalises, and the prefix check refuses.
  for (const bad of ['../x', 'a/../../x', '/etc/passwd', '..']) {
    assert.throws(
      () => root.resolveChecked(bad as SafePath),
      (err: unknown) => err instanceof FcpError && err.code === 'FCP_ERR_PATH_OUTSIDE_ROOT',
      JSON.stringify(bad),
    );
  }
  assert.is(root.resolveChecked('a//b/./c/' as SafePath), `${root.path}/a/b/c`);
});

test('ensureDir creates every level with the default mode', async () => {
  const root = await ConfinedRoot.open(tempDir());
  await root.ensureDir('a/b/c');
  const st = fs.lstatSync(path.join(root.path, 'a/b/c'));
  assert.ok(st.isDirectory());
  const umask = process.umask();
  assert.is(st.mode & 0o7777, 0o777 & ~umask);
  await root.ensureDir('a/b/c');
  await root.ensureDir('.');
  await root.ensureParent('x/y/file.txt');
  assert.ok(fs.lstatSync(path.join(root.path, 'x/y')).isDirectory());
  assert.not.ok(fs.existsSync(path.join(root.path, 'x/y/file.txt')));
});

test('ensureDir refuses a symlinked level and creates nothing outside (regression: symlink escape)', async () => {
  const { root: dir, outside } = rootAndOutside(tempDir);
  fs.symlinkSync(outside, path.join(dir, 'escape'));
  const root = await ConfinedRoot.open(dir);
  const err = await rejection(root.ensureDir('escape/x/y'), 'FCP_ERR_PATH_SYMLINK');
  assert.is(err.path, 'escape');
  await rejection(root.ensureParent('escape/file'), 'FCP_ERR_PATH_SYMLINK');
  await rejection(root.ensureDir('escape'), 'FCP_ERR_PATH_SYMLINK');
  assert.equal(fs.readdirSync(outside), []);
});

test('ensureDir refuses a symlink at a deeper level, even one pointing inside the root', async () => {
  const { root: dir, outside } = rootAndOutside(tempDir);
  fs.mkdirSync(path.join(dir, 'a/b'), { recursive: true });
  fs.symlinkSync(outside, path.join(dir, 'a/b/out'));
  fs.symlinkSync(path.join(dir, 'a'), path.join(dir, 'a/b/in'));
  fs.symlinkSync('../..', path.join(dir, 'a/b/rel'));
  const root = await ConfinedRoot.open(dir);
  assert.is((await rejection(root.ensureDir('a/b/out/x'), 'FCP_ERR_PATH_SYMLINK')).path, 'a/b/out');
  assert.is((await rejection(root.ensureDir('a/b/in/x'), 'FCP_ERR_PATH_SYMLINK')).path, 'a/b/in');
  assert.is((await rejection(root.ensureDir('a/b/rel/x'), 'FCP_ERR_PATH_SYMLINK')).path, 'a/b/rel');
  assert.equal(fs.readdirSync(outside), []);
  assert.equal(fs.readdirSync(path.join(dir, 'a')), ['b']);
});

test('ensureDir refuses a dangling symlink instead of creating its target', async () => {
  const { root: dir, outside } = rootAndOutside(tempDir);
  fs.symlinkSync(path.join(outside, 'made-by-attacker'), path.join(dir, 'dangling'));
  const root = await ConfinedRoot.open(dir);
  await rejection(root.ensureDir('dangling'), 'FCP_ERR_PATH_SYMLINK');
  await rejection(root.ensureDir('dangling/x'), 'FCP_ERR_PATH_SYMLINK');
  assert.equal(fs.readdirSync(outside), []);
});

test('ensureDir refuses a non-directory level, and forgets the failure', async () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'f'), 'data');
  const root = await ConfinedRoot.open(dir);
  const err = await rejection(root.ensureDir('f/x'), 'FCP_ERR_PATH_TYPE');
  assert.is(err.path, 'f');
  await rejection(root.ensureDir('f'), 'FCP_ERR_PATH_TYPE');
  fs.rmSync(path.join(dir, 'f'));
  await root.ensureDir('f/x');
  assert.ok(fs.lstatSync(path.join(dir, 'f/x')).isDirectory());
});

test('ensureDir refuses unsafe wire paths before touching the disk', async () => {
  const { root: dir, outside } = rootAndOutside(tempDir);
  const root = await ConfinedRoot.open(dir);
  await rejection(root.ensureDir('../outside/x'), 'FCP_ERR_PATH_UNSAFE');
  await rejection(root.ensureDir(`${outside}/x`), 'FCP_ERR_PATH_UNSAFE');
  await rejection(root.ensureParent('a/../../outside/x'), 'FCP_ERR_PATH_UNSAFE');
  assert.equal(fs.readdirSync(outside), []);
  assert.equal(fs.readdirSync(dir), []);
});

test('200 concurrent ensureDir calls on nested paths do one lstat and one mkdir per level', async () => {
  const root = await ConfinedRoot.open(tempDir());
  const mkdirs: string[] = [];
  const lstats: string[] = [];
  await withPatched(
    'mkdirSync',
    (original) =>
      ((p: fs.PathLike, opts?: fs.MakeDirectoryOptions) => {
        mkdirs.push(String(p));
        return original(p, opts);
      }) as Fs['mkdirSync'],
    () =>
      withPatched(
        'lstatSync',
        (original) =>
          ((p: fs.PathLike, opts?: fs.StatSyncOptions) => {
            lstats.push(String(p));
            return original(p, opts);
          }) as Fs['lstatSync'],
        async () => {
          const calls: Promise<void>[] = [];
          for (let i = 0; i < 200; i++) {
            const leaf = `d${i % 4}/e${i % 3}`;
            calls.push(i % 2 === 0 ? root.ensureDir(`top/${leaf}`) : root.ensureParent(`top/${leaf}/f${i}`));
          }
          await Promise.all(calls);
        },
      ),
  );
  // top, 4 x d, 12 x d/e: 17 levels.
  assert.is(mkdirs.length, 17);
  assert.is(new Set(mkdirs).size, 17);
  assert.is(lstats.length, 17);
  for (let d = 0; d < 4; d++) {
    for (let e = 0; e < 3; e++)
      assert.ok(fs.lstatSync(path.join(root.path, `top/d${d}/e${e}`)).isDirectory());
  }
});

test('two roots racing on the same tree both succeed (EEXIST is tolerated)', async () => {
  const dir = tempDir();
  const one = await ConfinedRoot.open(dir);
  const two = await ConfinedRoot.open(dir);
  const paths = Array.from({ length: 50 }, (_, i) => `r/${i % 5}/${i % 7}`);
  await Promise.all(paths.flatMap((p) => [one.ensureDir(p), two.ensureDir(p)]));
  for (const p of paths) assert.ok(fs.lstatSync(path.join(dir, p)).isDirectory());
});

test('a symlink planted between lstat and mkdir is refused (regression: EEXIST race)', async () => {
  const { root: dir, outside } = rootAndOutside(tempDir);
  const root = await ConfinedRoot.open(dir);
  await withPatched(
    'mkdirSync',
    () =>
      ((p: fs.PathLike) => {
        fs.symlinkSync(outside, String(p));
        throw Object.assign(new Error('EEXIST: file already exists'), { code: 'EEXIST' });
      }) as Fs['mkdirSync'],
    async () => {
      await rejection(root.ensureDir('planted/x'), 'FCP_ERR_PATH_SYMLINK');
    },
  );
  assert.equal(fs.readdirSync(outside), []);
  assert.ok(fs.lstatSync(path.join(dir, 'planted')).isSymbolicLink());
});

test('a failed mkdir reaches the caller as an FcpError with the wire path', async () => {
  const root = await ConfinedRoot.open(tempDir());
  await withPatched(
    'mkdirSync',
    () =>
      (() => {
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }) as Fs['mkdirSync'],
    async () => {
      const err = await rejection(root.ensureDir('full/x'), 'ENOSPC');
      assert.is(err.path, 'full');
    },
  );
  await root.ensureDir('full/x');
});

test('inspect creates nothing and returns undefined for missing paths', async () => {
  const dir = tempDir();
  const root = await ConfinedRoot.open(dir);
  assert.is(await root.inspect('missing'), undefined);
  assert.is(await root.inspect('missing/deeper/file'), undefined);
  assert.equal(fs.readdirSync(dir), []);
  fs.mkdirSync(path.join(dir, 'a'));
  assert.is(await root.inspect('a/missing'), undefined);
  assert.is(await root.inspect('a/missing/x'), undefined);
  assert.equal(fs.readdirSync(path.join(dir, 'a')), []);
});

test('inspect lstats files and directories with bigint stats', async () => {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'a/b'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'a/b/file'), 'hello');
  const root = await ConfinedRoot.open(dir);
  const st = await root.inspect('a/b/file');
  assert.ok(st?.isFile());
  assert.is(st?.size, 5n);
  assert.is(typeof st?.mtimeNs, 'bigint');
  assert.ok((await root.inspect('a/b'))?.isDirectory());
  assert.ok((await root.inspect('.'))?.isDirectory());
});

test('inspect does not follow a final symlink and refuses symlinked parents', async () => {
  const { root: dir, outside } = rootAndOutside(tempDir);
  fs.writeFileSync(path.join(outside, 'secret'), 'secret');
  fs.symlinkSync(outside, path.join(dir, 'out'));
  fs.symlinkSync(path.join(outside, 'secret'), path.join(dir, 'secret-link'));
  const root = await ConfinedRoot.open(dir);
  const link = await root.inspect('secret-link');
  assert.ok(link?.isSymbolicLink());
  assert.ok((await root.inspect('out'))?.isSymbolicLink());
  const err = await rejection(root.inspect('out/secret'), 'FCP_ERR_PATH_SYMLINK');
  assert.is(err.path, 'out');
  await rejection(root.inspect('out/missing/deeper'), 'FCP_ERR_PATH_SYMLINK');
  assert.equal(fs.readdirSync(outside), ['secret']);
});

test('inspect refuses a file used as a directory, and unsafe paths', async () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'f'), '');
  const root = await ConfinedRoot.open(dir);
  await rejection(root.inspect('f/x'), 'FCP_ERR_PATH_TYPE');
  await rejection(root.inspect('../x'), 'FCP_ERR_PATH_UNSAFE');
  await rejection(root.inspect('/etc/passwd'), 'FCP_ERR_PATH_UNSAFE');
});

test('inspect reuses levels that ensureDir verified', async () => {
  const root = await ConfinedRoot.open(tempDir());
  await root.ensureDir('a/b/c');
  const lstats: string[] = [];
  await withPatched(
    'lstatSync',
    (original) =>
      ((p: fs.PathLike, opts?: fs.StatSyncOptions) => {
        lstats.push(String(p));
        return original(p, opts);
      }) as Fs['lstatSync'],
    async () => {
      assert.is(await root.inspect('a/b/c/file'), undefined);
    },
  );
  assert.equal(lstats, [path.join(root.path, 'a/b/c/file')]);
});

test('forget drops verified levels at and under a path', async () => {
  const { root: dir, outside } = rootAndOutside(tempDir);
  const root = await ConfinedRoot.open(dir);
  await root.ensureDir('a/b/c');
  await root.ensureDir('ab/x');
  // The owner replaces 'a' (say with a file); an attacker then plants a symlink in its place.
  fs.rmSync(path.join(dir, 'a'), { recursive: true });
  fs.symlinkSync(outside, path.join(dir, 'a'));
  root.forget('a');
  await rejection(root.ensureDir('a/b/c'), 'FCP_ERR_PATH_SYMLINK');
  await rejection(root.inspect('a/b/c/f'), 'FCP_ERR_PATH_SYMLINK');
  assert.equal(fs.readdirSync(outside), []);
  // A sibling sharing the prefix "a" is still known.
  fs.rmSync(path.join(dir, 'ab'), { recursive: true });
  await root.ensureDir('ab/x');
  assert.not.ok(fs.existsSync(path.join(dir, 'ab')));
  root.forget('.');
  await root.ensureDir('ab/x');
  assert.ok(fs.existsSync(path.join(dir, 'ab/x')));
});

test('openNoFollow refuses a symlink as the final component', async () => {
  const { root: dir, outside } = rootAndOutside(tempDir);
  fs.writeFileSync(path.join(outside, 'secret'), 'secret');
  fs.writeFileSync(path.join(dir, 'plain'), 'plain');
  fs.symlinkSync(path.join(outside, 'secret'), path.join(dir, 'link'));
  const fh = await openNoFollow(path.join(dir, 'plain'), fs.constants.O_RDONLY);
  assert.is((await fh.readFile()).toString(), 'plain');
  await fh.close();
  const err = await rejection(
    openNoFollow(path.join(dir, 'link'), fs.constants.O_RDONLY),
    'FCP_ERR_PATH_SYMLINK',
  );
  assert.is(err.path, path.join(dir, 'link'));
  // Writing through a link must fail and leave the target untouched.
  await rejection(
    openNoFollow(path.join(dir, 'link'), fs.constants.O_WRONLY | fs.constants.O_TRUNC),
    'FCP_ERR_PATH_SYMLINK',
  );
  assert.is(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'secret');
  await rejection(openNoFollow(path.join(dir, 'missing'), fs.constants.O_RDONLY), 'ENOENT');
});

test('openFile opens under the root by wire path, without following links', async () => {
  const { root: dir, outside } = rootAndOutside(tempDir);
  fs.symlinkSync(path.join(outside, 'new'), path.join(dir, 'link'));
  const root = await ConfinedRoot.open(dir);
  const { O_WRONLY, O_CREAT, O_EXCL } = fs.constants;
  const fh = await root.openFile('made', O_WRONLY | O_CREAT | O_EXCL, 0o600);
  await fh.writeFile('x');
  await fh.close();
  assert.is(fs.statSync(path.join(dir, 'made')).mode & 0o777, 0o600 & ~process.umask());
  const err = await rejection(root.openFile('link', O_WRONLY | O_CREAT, 0o600), 'FCP_ERR_PATH_SYMLINK');
  assert.is(err.path, 'link');
  await rejection(root.openFile('../outside/new', O_WRONLY | O_CREAT, 0o600), 'FCP_ERR_PATH_UNSAFE');
  // The parents are checked too: O_NOFOLLOW alone only guards the last component.
  fs.symlinkSync(outside, path.join(dir, 'dirlink'));
  const parent = await rejection(
    root.openFile('dirlink/new', O_WRONLY | O_CREAT, 0o600),
    'FCP_ERR_PATH_SYMLINK',
  );
  assert.is(parent.path, 'dirlink');
  await rejection(root.openFile('missing/new', O_WRONLY | O_CREAT, 0o600), 'ENOENT');
  assert.not.ok(fs.existsSync(path.join(dir, 'missing')));
  assert.equal(fs.readdirSync(outside), []);
});

/** tempNameFor takes a checked path: the receiver checks each wire path once, when it arrives. */
function tempOf(rel: string): string {
  return tempNameFor(checkWirePath(rel));
}

test('tempNameFor keeps the directory and hides the name', () => {
  assert.is(tempOf('file.txt'), '.file.txt.fcp-part');
  assert.is(tempOf('a/b/file.txt'), 'a/b/.file.txt.fcp-part');
  assert.is(tempOf('a/.hidden'), 'a/..hidden.fcp-part');
  assert.is(tempOf('a/ü space'), 'a/.ü space.fcp-part');
  assert.is(sidecarNameFor(checkWirePath('a/b/file.txt')), 'a/b/.file.txt.fcp-meta');
});

test('tempNameFor hashes names that would pass 255 bytes', () => {
  // '.' + base + '.fcp-part' is 10 bytes more than base.
  const fits = 'x'.repeat(245);
  assert.is(tempOf(`d/${fits}`), `d/.${fits}.fcp-part`);
  const long = tempOf(`d/${'x'.repeat(246)}`);
  assert.match(long, /^d\/\.fcp-[0-9a-f]{16}\.fcp-part$/);
  assert.is(tempOf(`d/${'x'.repeat(246)}`), long);
  assert.is.not(tempOf(`d/${'x'.repeat(245)}y`), long);
  const wide = tempOf('あ'.repeat(85));
  assert.match(wide, /^\.fcp-[0-9a-f]{16}\.fcp-part$/);
});

test('tempNameFor refuses the root, and a name that would pass 4095 bytes; unsafe paths never get there', () => {
  const isUnsafe = (err: unknown) => err instanceof FcpError && err.code === 'FCP_ERR_PATH_UNSAFE';
  assert.throws(() => tempOf('.'), isUnsafe);
  assert.throws(() => tempOf('../x'), isUnsafe);
  assert.throws(() => tempOf(''), isUnsafe);
  // A path that fits leaves no room for the 10 bytes the temporary name adds.
  const deep = `${'d'.repeat(200)}/`.repeat(20) + 'f'.repeat(4095 - 201 * 20);
  assert.is(Buffer.byteLength(deep), 4095);
  assert.throws(() => tempOf(deep), isUnsafe);
  assert.throws(() => sidecarNameFor(checkWirePath(deep)), isUnsafe);
  assert.is(tempOf(deep.slice(0, -10)).length, 4095);
});

test('madeEmpty: only levels this instance created itself, and not after forget', async () => {
  const { root: dir } = rootAndOutside(tempDir);
  fs.mkdirSync(path.join(dir, 'old'));
  const root = await ConfinedRoot.open(dir);
  assert.not.ok(root.madeEmpty(checkWirePath('.')), 'the root existed before');
  assert.ok(root.ensureDirNow(checkWirePath('old')));
  assert.not.ok(root.madeEmpty(checkWirePath('old')), 'found, not made');
  assert.ok(root.ensureDirNow(checkWirePath('new')));
  assert.ok(root.madeEmpty(checkWirePath('new')));
  await root.ensureDirChecked(checkWirePath('new/deeper'));
  assert.ok(root.madeEmpty(checkWirePath('new/deeper')));
  // Another instance (the next session) finds them: they are no longer known to be empty.
  const next = root.fresh();
  await next.ensureDirChecked(checkWirePath('new/deeper'));
  assert.not.ok(next.madeEmpty(checkWirePath('new/deeper')));
  root.forget('new');
  assert.not.ok(root.madeEmpty(checkWirePath('new')));
  assert.not.ok(root.madeEmpty(checkWirePath('new/deeper')));
});

test('ensureDirNow makes a level at once only under a ready parent', async () => {
  const { root: dir, outside } = rootAndOutside(tempDir);
  const root = await ConfinedRoot.open(dir);
  assert.ok(root.isReadyDir(checkWirePath('.')));
  assert.not.ok(root.isReadyDir(checkWirePath('a')));
  // The parent is unknown: nothing is done, the caller must await ensureDirChecked.
  assert.not.ok(root.ensureDirNow(checkWirePath('a/b')));
  assert.not.ok(fs.existsSync(path.join(dir, 'a')));
  assert.ok(root.ensureDirNow(checkWirePath('a')));
  assert.ok(root.isReadyDir(checkWirePath('a')));
  assert.ok(root.ensureDirNow(checkWirePath('a/b')));
  assert.ok(fs.lstatSync(path.join(dir, 'a/b')).isDirectory());
  // A level under way is not ready until its promise settles.
  const pending = root.ensureDirChecked(checkWirePath('c/d'));
  assert.not.ok(root.isReadyDir(checkWirePath('c')));
  assert.not.ok(root.ensureDirNow(checkWirePath('c')));
  await pending;
  assert.ok(root.isReadyDir(checkWirePath('c/d')));
  // Links and non-directories are refused as ensureDir refuses them.
  fs.symlinkSync(outside, path.join(dir, 'link'));
  fs.writeFileSync(path.join(dir, 'file'), 'x');
  assert.throws(
    () => root.ensureDirNow(checkWirePath('link')),
    (err: unknown) => err instanceof FcpError && err.code === 'FCP_ERR_PATH_SYMLINK',
  );
  assert.throws(
    () => root.ensureDirNow(checkWirePath('file')),
    (err: unknown) => err instanceof FcpError && err.code === 'FCP_ERR_PATH_TYPE',
  );
  assert.not.ok(root.isReadyDir(checkWirePath('link')));
  // forget() makes a level unready again.
  root.forget('a');
  assert.not.ok(root.isReadyDir(checkWirePath('a/b')));
  assert.equal(fs.readdirSync(outside), []);
});

test('inspectInReadyDir: a missing name is undefined, and only under a ready directory', async () => {
  const dir = tempDir();
  const root = await ConfinedRoot.open(dir);
  fs.mkdirSync(path.join(dir, 'a'));
  fs.writeFileSync(path.join(dir, 'a/f'), 'abc');
  assert.throws(
    () => root.inspectInReadyDir(checkWirePath('a/f')),
    (err: unknown) => err instanceof FcpError && err.code === 'FCP_ERR_INTERNAL',
  );
  await root.ensureDirChecked(checkWirePath('a'));
  assert.is(root.inspectInReadyDir(checkWirePath('a/f'))?.size, 3n);
  assert.is(root.inspectInReadyDir(checkWirePath('a/missing')), undefined);
  assert.is(root.inspectInReadyDir(checkWirePath('missing')), undefined);
});

test('setDirMetaSync applies mode and mtime without following links, and skips a directory already so', async () => {
  const { root: dir, outside } = rootAndOutside(tempDir);
  const root = await ConfinedRoot.open(dir);
  fs.mkdirSync(path.join(dir, 'a/b'), { recursive: true });
  const t = 1_600_000_000.1234565; // the middle of a microsecond, as the receiver aims
  const stored = 1_600_000_000_123_456_000n;
  assert.ok(root.setDirMetaSync(checkWirePath('a/b'), 0o750, t, stored));
  const st = fs.lstatSync(path.join(dir, 'a/b'), { bigint: true });
  assert.is(Number(st.mode & 0o7777n), 0o750);
  assert.is(st.mtimeNs, stored);
  // Already so: nothing is done (the ctime stays).
  assert.not.ok(root.setDirMetaSync(checkWirePath('a/b'), 0o750, t, stored));
  assert.is(fs.lstatSync(path.join(dir, 'a/b'), { bigint: true }).ctimeNs, st.ctimeNs);
  // Something written into it since: applied again.
  fs.writeFileSync(path.join(dir, 'a/b/new'), 'x');
  assert.ok(root.setDirMetaSync(checkWirePath('a/b'), 0o750, t, stored));
  assert.is(fs.lstatSync(path.join(dir, 'a/b'), { bigint: true }).mtimeNs, stored);
  // An unpredictable time never skips.
  assert.ok(root.setDirMetaSync(checkWirePath('a/b'), 0o750, t, undefined));
  // A link in the place of the directory, or above it, is refused and its target untouched.
  fs.chmodSync(outside, 0o700);
  fs.symlinkSync(outside, path.join(dir, 'link'));
  // O_DIRECTORY | O_NOFOLLOW on a link: Linux says ENOTDIR, others ELOOP (FCP_ERR_PATH_SYMLINK).
  assert.throws(
    () => root.setDirMetaSync(checkWirePath('link'), 0o777, t, stored),
    (err: unknown) =>
      err instanceof FcpError && (err.code === 'FCP_ERR_PATH_SYMLINK' || err.code === 'ENOTDIR'),
  );
  fs.mkdirSync(path.join(outside, 'x'));
  assert.throws(
    () => root.setDirMetaSync(checkWirePath('link/x'), 0o777, t, stored),
    (err: unknown) => err instanceof FcpError && err.code === 'FCP_ERR_PATH_SYMLINK',
  );
  assert.is(fs.statSync(outside).mode & 0o7777, 0o700);
  assert.throws(
    () => root.setDirMetaSync(checkWirePath('missing/x'), 0o777, t, stored),
    (err: unknown) => err instanceof FcpError && err.code === 'ENOENT',
  );
});

test('fresh() forgets what an earlier session verified (regression: push after the tree was changed)', async () => {
  const dir = tempDir();
  const served = await ConfinedRoot.open(dir);
  await served.ensureDir('dst/b');
  fs.rmSync(path.join(dir, 'dst/b'), { recursive: true });
  // The long-lived instance still believes in dst/b; a fresh one looks at the disk again.
  const session = served.fresh();
  assert.is(await session.inspect('dst/b'), undefined);
  await session.ensureDir('dst/b');
  assert.ok(fs.lstatSync(path.join(dir, 'dst/b')).isDirectory());
  assert.is(session.path, served.path);
});

test('a root of "/" still refuses links below it, and its errors name it', async () => {
  const { root: dir, outside } = rootAndOutside(tempDir);
  fs.symlinkSync(outside, path.join(dir, 'escape'));
  const root = await ConfinedRoot.open('/');
  const rel = path.relative('/', fs.realpathSync(dir));
  assert.is(root.resolve(`${rel}/escape`), `${fs.realpathSync(dir)}/escape`);
  const err = await rejection(root.ensureDir(`${rel}/escape/x`), 'FCP_ERR_PATH_SYMLINK');
  assert.is(err.path, `${rel}/escape`);
  assert.match(err.message, '(confined to /)');
  await rejection(
    root.openFile(`${rel}/escape/f`, fs.constants.O_WRONLY | fs.constants.O_CREAT),
    'FCP_ERR_PATH_SYMLINK',
  );
  assert.equal(fs.readdirSync(outside), []);
});

test('a root that cannot be opened is named in the error', async () => {
  const missing = path.join(tempDir(), 'missing');
  const err = await rejection(ConfinedRoot.open(missing), 'ENOENT');
  assert.is(err.message, `${missing}: no such file or directory`);
});

test.run();
