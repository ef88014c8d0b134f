// The V8 code cache of fcp and fcpd (src/cli/compile-cache.ts, compile-cache-dir.ts; spec/SECURITY.md): made
// at exit, used by the next run, a damaged or foreign file never given to V8, no directory another user owns
// or can write ever read or written, and nothing of it with FCP_NO_COMPILE_CACHE=1. What is observable from
// outside: a cache V8 accepted is left as it was (same inode); one refused or rejected is replaced at exit.
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { accountWithHome } from '../helpers/accounts.js';
import { describeRun, runFcp, runFcpd } from '../helpers/cli.js';
import { type ChildDaemon, spawnDaemon } from '../helpers/daemon.js';
import { test } from '../helpers/test.js';

const made: string[] = [];
let daemon: ChildDaemon | undefined;
test.after.each(async () => {
  await daemon?.stop();
  daemon = undefined;
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory (0755, ours), removed after the test. */
function scratch(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'fcp-compile-cache-'));
  chmodSync(dir, 0o755);
  made.push(dir);
  return dir;
}

/** Runs `fcp --version` with XDG_CACHE_HOME=`cache` (and `env`); asserts it printed the version. */
async function fcpVersion(cache: string, env: Record<string, string> = {}): Promise<void> {
  const r = await runFcp(['--version'], { env: { XDG_CACHE_HOME: cache, ...env } });
  assert.is(r.code, 0, describeRun(r));
  assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
}

/** The cache files in `dir` (none when it does not exist). */
function caches(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.code')) : [];
}

/** The one cache file in `cache`/fcp/v8, after one run made it. */
function onlyCache(cache: string): string {
  const dir = path.join(cache, 'fcp', 'v8');
  const files = caches(dir);
  assert.is(files.length, 1, `one cache file: ${files.join(', ')}`);
  return path.join(dir, files[0]!);
}

test('fcp makes its cache at exit, 0600 in a 0700 directory, and the next run uses it as it is', async () => {
  const cache = path.join(scratch(), 'cache');
  await fcpVersion(cache);
  const file = onlyCache(cache);
  assert.is(statSync(file).mode & 0o777, 0o600);
  assert.is(statSync(path.dirname(file)).mode & 0o777, 0o700);
  assert.equal(
    readdirSync(path.dirname(file)).filter((f) => f.endsWith('.tmp')),
    [],
    'no temp file left',
  );
  const made = statSync(file);
  await fcpVersion(cache);
  const after = statSync(file);
  assert.is(after.ino, made.ino, 'V8 accepted it: not written again');
  assert.is(after.mtimeMs, made.mtimeMs);
});

test('a push, --version and fcpd each keep a cache of their own, and the pushes land', async () => {
  const top = scratch();
  const cache = path.join(top, 'cache');
  const root = path.join(top, 'root');
  mkdirSync(root);
  const src = path.join(top, 'src.txt');
  writeFileSync(src, 'the same bytes either way\n');
  daemon = await spawnDaemon({ root });
  for (const name of ['first.txt', 'second.txt']) {
    const r = await runFcp(['-q', 'push', src, daemon.remote(`${root}/${name}`)], {
      env: { XDG_CACHE_HOME: cache },
    });
    assert.is(r.code, 0, describeRun(r));
    assert.is(readFileSync(path.join(root, name), 'utf8'), 'the same bytes either way\n');
  }
  const pushCache = onlyCache(cache);
  await fcpVersion(cache);
  assert.is(caches(path.dirname(pushCache)).length, 2, '--version has its own');
  const d = await runFcpd(['--version'], { env: { XDG_CACHE_HOME: cache } });
  assert.is(d.code, 0, describeRun(d));
  assert.ok(
    caches(path.dirname(pushCache)).some((f) => f.startsWith('fcpd-')),
    'fcpd makes one for the rest of itself',
  );
});

test('neither a failed run nor `push --help` makes the cache a push uses', async () => {
  const top = scratch();
  const cache = path.join(top, 'cache');
  const dir = path.join(cache, 'fcp', 'v8');
  const src = path.join(top, 'src.txt');
  writeFileSync(src, 'x\n');
  // Nothing listens on port 1 of the loopback: exit 4, having compiled little of a push.
  const failed = await runFcp(['-q', 'push', src, '127.0.0.1:1:/tmp/x'], { env: { XDG_CACHE_HOME: cache } });
  assert.is(failed.code, 4, describeRun(failed));
  assert.equal(caches(dir), [], 'a failed run writes none');
  const help = await runFcp(['push', '--help'], { env: { XDG_CACHE_HOME: cache } });
  assert.is(help.code, 0, describeRun(help));
  assert.is(caches(dir).length, 1);
  daemon = await spawnDaemon({ root: top });
  const pushed = await runFcp(['-q', 'push', src, daemon.remote(`${top}/dst.txt`)], {
    env: { XDG_CACHE_HOME: cache },
  });
  assert.is(pushed.code, 0, describeRun(pushed));
  assert.is(caches(dir).length, 2, 'the push made its own, not the help text');
});

/** Makes the cache, lets `spoil` change it, runs again: the run works and the file is ours and new. */
async function replacedAfter(spoil: (file: string) => void): Promise<void> {
  const cache = path.join(scratch(), 'cache');
  await fcpVersion(cache);
  const file = onlyCache(cache);
  spoil(file);
  const spoilt = statSync(file, { throwIfNoEntry: false });
  await fcpVersion(cache);
  const now = statSync(file);
  assert.ok(now.isFile() && now.uid === process.geteuid?.() && (now.mode & 0o777) === 0o600);
  assert.is.not(now.ino, spoilt?.ino, 'written again at exit');
  assert.ok(readFileSync(file).length > 0);
  await fcpVersion(cache);
  assert.is(statSync(file).ino, now.ino, 'and the new one is used');
}

test('a damaged cache (a flipped byte, cut short, empty) is never given to V8: the run works, and it is replaced', async () => {
  await replacedAfter((file) => {
    const data = readFileSync(file);
    data[data.length - 100]! ^= 0xff;
    writeFileSync(file, data);
  });
  await replacedAfter((file) => writeFileSync(file, readFileSync(file).subarray(0, 1000)));
  await replacedAfter((file) => writeFileSync(file, ''));
});

test('a cache V8 rejects (intact, but made of something else) is replaced', async () => {
  await replacedAfter((file) => {
    const data = readFileSync(file);
    // Our header with a digest that matches: random bytes past it, which V8's own checks refuse.
    const junk = randomBytes(16 * 1024);
    const magic = data.subarray(0, data.indexOf(0x0a) + 1);
    writeFileSync(file, Buffer.concat([magic, createHash('sha256').update(junk).digest(), junk]));
  });
});

test('a cache file that is not ours alone (another owner, mode 0644, a link) is not read, and is replaced', async () => {
  const other = accountWithHome('fcpuser-cache');
  await replacedAfter((file) => chownSync(file, other.uid, other.gid));
  await replacedAfter((file) => chmodSync(file, 0o644));
  const target = path.join(scratch(), 'target');
  await replacedAfter((file) => {
    writeFileSync(target, readFileSync(file), { mode: 0o600 });
    rmSync(file);
    symlinkSync(target, file);
  });
  assert.is(readFileSync(target).length > 0, true, 'the link was replaced, its target left alone');
});

/** Runs fcp with XDG_CACHE_HOME=`cache`; asserts nothing was written under `cache`. */
async function refused(cache: string, why: string): Promise<void> {
  const before = listing(cache);
  await fcpVersion(cache);
  assert.equal(listing(cache), before, `${why}: nothing written`);
}

function listing(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true }).map(String).sort();
}

test('a cache directory another user owns or can write is never read or written', async () => {
  const other = accountWithHome('fcpuser-cache');
  // Their XDG_CACHE_HOME (or a HOME of theirs: root with sudo -E or as a service): nothing made in it.
  const theirs = path.join(scratch(), 'theirs');
  mkdirSync(theirs, { mode: 0o755 });
  chownSync(theirs, other.uid, other.gid);
  await refused(theirs, 'a cache dir of another user');
  const r = await runFcp(['--version'], { env: { HOME: other.home, XDG_CACHE_HOME: '' } });
  assert.is(r.code, 0, describeRun(r));
  assert.not.ok(existsSync(path.join(other.home, '.cache', 'fcp', 'v8')), "nothing in another user's home");
  // Ours, but below a level others can write (no sticky bit): they could swap fcp/ for their own.
  const open = path.join(scratch(), 'open');
  mkdirSync(open, { mode: 0o755 });
  const cache = path.join(open, 'cache');
  await fcpVersion(cache);
  const file = onlyCache(cache);
  chmodSync(open, 0o777);
  rmSync(file);
  await refused(cache, 'a level above writable by others');
  // fcp/v8 itself open to the group (writing, or only reading), or another user's.
  chmodSync(open, 0o755);
  chmodSync(path.dirname(file), 0o770);
  await refused(cache, 'v8/ mode 0770');
  chmodSync(path.dirname(file), 0o750);
  await refused(cache, 'v8/ mode 0750');
  chmodSync(path.dirname(file), 0o700);
  chownSync(path.dirname(file), other.uid, other.gid);
  await refused(cache, 'v8/ owned by another user');
});

test('FCP_NO_COMPILE_CACHE=1: nothing read or made, and fcp does what it does with one', async () => {
  const cache = path.join(scratch(), 'cache');
  await fcpVersion(cache, { FCP_NO_COMPILE_CACHE: '1' });
  assert.not.ok(existsSync(cache), 'no directory made');
  const off = await runFcp(['push', '--help'], { env: { XDG_CACHE_HOME: cache, FCP_NO_COMPILE_CACHE: '1' } });
  const on = await runFcp(['push', '--help'], { env: { XDG_CACHE_HOME: cache } });
  assert.is(off.code, 0, describeRun(off));
  assert.is(on.stdout, off.stdout);
  assert.is(on.code, off.code);
});

test.run();
