// The directories a receiver under `fcpd --root` holds open (held-dirs.ts, ConfinedRoot.freshHeld): a level
// swapped for a link or another directory after it was verified never leads a write outside the root; a
// level let go by the LRU is re-opened only if it is still the same directory; release lets go of them all
// (spec/SECURITY.md §11 "The receiver under --root").
import fs from 'node:fs';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import type { FcpError } from '../../src/protocol/errors.js';
import { ConfinedRoot } from '../../src/transfer/store/confined-root.js';
import { resolveLocalDestination, resolveServedDestination } from '../../src/transfer/store/destination.js';
import { HeldDirs } from '../../src/transfer/store/held-dirs.js';
import { canPinDirs } from '../../src/transfer/store/pinned-dir.js';
import type { SafePath } from '../../src/transfer/wire-path.js';
import { pathExposed } from '../../src/transfer/store/swap-exposure.js';
import { accountWithHome } from '../helpers/accounts.js';
import { rejection, rootAndOutside, tempDirs } from '../helpers/expect.js';

const { make: tempDir, removeAll } = tempDirs();
test.after(removeAll);

const W = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL;
const rel = (p: string) => p as SafePath;

/** Replaces `dir` by a link to `target`, as a local user who can write in its parent can at any moment. */
function swapForLink(dir: string, target: string): void {
  fs.renameSync(dir, `${dir}.old`);
  fs.symlinkSync(target, dir);
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

const linux = canPinDirs();

test('a level swapped for a link after it was verified: files, levels and renames land in the held directory', async () => {
  if (!linux) return;
  const { root, outside } = rootAndOutside(tempDir);
  const confined = (await ConfinedRoot.open(root)).freshHeld();
  await confined.ensureDir('a');
  swapForLink(path.join(root, 'a'), outside);

  fs.closeSync(confined.openFileSync(rel('a/.x.fcp-part'), W, 0o644));
  confined.withPath(rel('a/.x.fcp-part'), (temp) =>
    confined.withPath(rel('a/x'), (abs) => fs.renameSync(temp, abs)),
  );
  await confined.ensureDir('a/b');
  const fh = await confined.openFile('a/b/y', W, 0o644);
  await fh.close();
  confined.release();

  assert.equal(fs.readdirSync(outside), []);
  assert.equal(fs.readdirSync(path.join(root, 'a.old')).sort(), ['b', 'x']);
  assert.ok(fs.existsSync(path.join(root, 'a.old', 'b', 'y')));
});

test('a level swapped for a link before it is held is refused, and nothing is made through it', async () => {
  if (!linux) return;
  const { root, outside } = rootAndOutside(tempDir);
  fs.mkdirSync(path.join(root, 'a'));
  swapForLink(path.join(root, 'a'), outside);
  const confined = (await ConfinedRoot.open(root)).freshHeld();
  await rejection(confined.ensureDir('a/b'), 'FCP_ERR_PATH_SYMLINK');
  confined.release();
  assert.equal(fs.readdirSync(outside), []);
});

test('LRU: a level let go is re-opened through its parent while it is the same directory, refused once replaced', () => {
  if (!linux) return;
  const { root, outside } = rootAndOutside(tempDir);
  for (const d of ['a', 'b', 'c']) fs.mkdirSync(path.join(root, d));
  const held = HeldDirs.open(root, 2);
  for (const d of ['a', 'b', 'c']) held.hold(rel(d));
  assert.is(held.openCount, 2, 'the root and the last level only');

  held.use(rel('a/x'), (p) => fs.writeFileSync(p, 'x'));
  assert.ok(fs.existsSync(path.join(root, 'a', 'x')));
  assert.is(held.openCount, 2);

  // 'b' is let go now; replaced by another directory, then by a link: both refused, nothing written.
  fs.renameSync(path.join(root, 'b'), path.join(root, 'b.old'));
  fs.mkdirSync(path.join(root, 'b'));
  assert.throws(
    () => held.use(rel('b/y'), (p) => fs.writeFileSync(p, 'y')),
    (err: FcpError) => err.code === 'FCP_ERR_FILE_CHANGED' && err.message.includes(': b'),
  );
  fs.rmdirSync(path.join(root, 'b'));
  fs.symlinkSync(outside, path.join(root, 'b'));
  assert.throws(
    () => held.use(rel('b/y'), (p) => fs.writeFileSync(p, 'y')),
    (err: FcpError) => err.code === 'FCP_ERR_PATH_SYMLINK',
  );
  assert.equal(fs.readdirSync(outside), []);
  held.release();
  assert.is(held.openCount, 0);
});

test('LRU with many levels let go: the least recently used open level is the one closed, whatever was let go before', () => {
  if (!linux) return;
  const { root } = rootAndOutside(tempDir);
  const names = [...Array(10).keys()].map((i) => `a${i}`);
  for (const d of [...names, 'b']) fs.mkdirSync(path.join(root, d));
  const held = HeldDirs.open(root, 3);
  for (const d of names) held.hold(rel(d));
  assert.is(held.openCount, 3, 'the root, a8 and a9');
  held.use(rel('a8/x'), (p) => fs.writeFileSync(p, 'x'));
  held.hold(rel('b'));
  assert.is(held.openCount, 3, 'a9, used least recently, was let go; a8 is held');
  for (const d of ['a8', 'a9']) {
    fs.renameSync(path.join(root, d), path.join(root, `${d}.old`));
    fs.mkdirSync(path.join(root, d));
  }
  held.use(rel('a8/y'), (p) => fs.writeFileSync(p, 'y'));
  assert.ok(fs.existsSync(path.join(root, 'a8.old', 'y')), 'through the descriptor held');
  assert.throws(
    () => held.use(rel('a9/y'), (p) => fs.writeFileSync(p, 'y')),
    (err: FcpError) => err.code === 'FCP_ERR_FILE_CHANGED',
  );
  held.release();
  assert.is(held.openCount, 0);
});

test('release (the session ended or aborted) closes every level; a call in flight keeps its own until it settles', async () => {
  if (!linux) return;
  const { root } = rootAndOutside(tempDir);
  const before = openFds();
  const confined = (await ConfinedRoot.open(root)).freshHeld();
  await confined.ensureDir('a/b/c');
  assert.is(openFds(), before + 4);

  let settle = (): void => {};
  const gate = new Promise<void>((resolve) => {
    settle = resolve;
  });
  const inFlight = confined.withPathAsync(rel('a/b/c/f'), async (abs) => {
    await gate;
    fs.writeFileSync(abs, 'late');
  });
  confined.release();
  assert.is(openFds(), before + 1, 'only the level the call in flight goes through');
  settle();
  await inFlight;
  // Closed only now: the descriptor number was still this directory when the path was used.
  assert.is(openFds(), before);
  assert.ok(fs.existsSync(path.join(root, 'a', 'b', 'c', 'f')));

  // A call after release (a file's background discard) opens the levels for itself and closes them.
  confined.withPath(rel('a/b/c/f'), (abs) => fs.unlinkSync(abs));
  assert.not.ok(fs.existsSync(path.join(root, 'a', 'b', 'c', 'f')));
  assert.is(openFds(), before);
});

// Regression (review of session 14): a pull's local destination was a root by path, its levels reached by
// path again for every write; a push under --root into a destination it made opened that one by path too.
test("a pull's local destination holds its levels: a level swapped for a link is not written through", async () => {
  if (!linux) return;
  const { root, outside } = rootAndOutside(tempDir);
  // Others may write where the destination lies (a shared team directory): its path could be swapped.
  fs.chmodSync(path.dirname(root), 0o777);
  const dest = await resolveLocalDestination(`${root}/`, false);
  await dest.root.ensureDir('a');
  swapForLink(path.join(root, 'a'), outside);
  fs.closeSync(dest.root.openFileSync(rel('a/x'), W, 0o644));
  dest.root.release();
  assert.equal(fs.readdirSync(outside), []);
  assert.equal(fs.readdirSync(path.join(root, 'a.old')), ['x']);
});

test('a destination a push makes under --root is held: swapped for a link, it is not written through', async () => {
  if (!linux) return;
  const { root, outside } = rootAndOutside(tempDir);
  const dest = await resolveServedDestination(await ConfinedRoot.open(root), 'made', false);
  swapForLink(path.join(root, 'made'), outside);
  await dest.root.ensureDir('a');
  dest.root.release();
  assert.equal(fs.readdirSync(outside), []);
  assert.equal(fs.readdirSync(path.join(root, 'made.old')), ['a']);
});

/**
 * Makes `dir` a directory another local user controls: as root (CI) a real second account's, since root's
 * rights ignore the mode bits; otherwise one that everyone may write.
 */
function othersDir(dir: string): void {
  if (process.geteuid?.() !== 0) {
    fs.chmodSync(dir, 0o777);
    return;
  }
  const other = accountWithHome('fcpuser-swap');
  fs.chownSync(dir, other.uid, other.gid);
  fs.chmodSync(dir, 0o755);
}

/**
 * Runs `fn` under umask 022: what ensureDir makes is then not group-writable (under 002 it would be, and
 * the levels below it held).
 */
async function underUmask022(fn: () => Promise<void>): Promise<void> {
  const saved = process.umask(0o022);
  try {
    await fn();
  } finally {
    process.umask(saved);
  }
}

/** A root and outside as rootAndOutside, when the temp directory they are in is private (else undefined). */
function privateRoot(): { root: string; outside: string } | undefined {
  const made = rootAndOutside(tempDir);
  fs.chmodSync(made.root, 0o755);
  // A shared TMPDIR (a level others can write above it) makes every destination in it exposed.
  return pathExposed(made.root) ? undefined : made;
}

// Regression (session 15): holding every level of a private destination cost a no-change pull re-run of a
// 13,750-file tree 15 % more client CPU; nobody else can swap a level there, so it goes by path again.
test('a destination in a private tree holds nothing open: its levels, made or found, are reached by path', async () => {
  if (!linux) return;
  const made = privateRoot();
  if (made === undefined) return;
  fs.mkdirSync(path.join(made.root, 'found'), { mode: 0o755 });
  const before = openFds();
  const dest = await resolveLocalDestination(`${made.root}/`, false);
  await underUmask022(() => dest.root.ensureDir('found/a/b'));
  fs.closeSync(dest.root.openFileSync(rel('found/a/b/x'), W, 0o644));
  assert.ok(dest.root.setDirMetaSync(rel('found/a'), 0o750, 1_000_000, undefined));
  assert.is(openFds(), before, 'no level held');
  dest.root.release();
  assert.ok(fs.existsSync(path.join(made.root, 'found', 'a', 'b', 'x')));
  assert.is(fs.statSync(path.join(made.root, 'found', 'a')).mode & 0o7777, 0o750);
});

test("a level of another user's in a private destination: every level below it is held, a swap is not written through", async () => {
  if (!linux) return;
  const made = privateRoot();
  if (made === undefined) return;
  const { root, outside } = made;
  fs.mkdirSync(path.join(root, 'shared'));
  othersDir(path.join(root, 'shared'));
  // What a by-path write would find through the link: the same names, outside.
  fs.mkdirSync(path.join(outside, 'deep'));
  const before = openFds();
  const dest = await resolveLocalDestination(`${root}/`, false);
  await dest.root.ensureDir('shared/sub/deep');
  // 'shared' sits in our root, so it is reached by path; 'sub' could be renamed by shared's owner, and
  // 'deep', ours in a directory of ours, is below it.
  assert.is(openFds(), before + 2, 'sub and deep held');
  swapForLink(path.join(root, 'shared', 'sub'), outside);
  fs.closeSync(dest.root.openFileSync(rel('shared/sub/deep/x'), W, 0o644));
  await (await dest.root.openFile('shared/sub/y', W, 0o644)).close();
  dest.root.release();
  assert.is(openFds(), before);
  assert.equal(fs.readdirSync(path.join(outside, 'deep')), []);
  assert.equal(fs.readdirSync(outside), ['deep']);
  assert.equal(fs.readdirSync(path.join(root, 'shared', 'sub.old')).sort(), ['deep', 'y']);
  assert.equal(fs.readdirSync(path.join(root, 'shared', 'sub.old', 'deep')), ['x']);
});

test("in a sticky directory our own level is reached by path, another user's is held", async () => {
  if (!linux) return;
  const made = privateRoot();
  if (made === undefined) return;
  const { root } = made;
  fs.chmodSync(root, 0o1777);
  fs.mkdirSync(path.join(root, 'theirs'));
  othersDir(path.join(root, 'theirs'));
  const before = openFds();
  const dest = await resolveLocalDestination(`${root}/`, false);
  await underUmask022(() => dest.root.ensureDir('ours/a'));
  assert.is(openFds(), before, 'what we made in a sticky directory is ours: no one else can rename it');
  await dest.root.ensureDir('theirs/a');
  assert.is(openFds(), before + 2, "the other user's level and the one below it");
  dest.root.release();
  assert.is(openFds(), before);
});

test.run();
