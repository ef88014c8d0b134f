// The sending side against a local user who can write inside the tree it reads: a directory swapped for a
// link to somewhere else between the listing and the open, or in the middle of the walk, a file swapped
// for a FIFO. Nothing outside is listed or read, nothing blocks (spec/SECURITY.md §11, pinned-dir.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import type { FcpError } from '../../src/protocol/errors.js';
import { createSelector } from '../../src/transfer/select.js';
import { PosixSource } from '../../src/transfer/store/posix-source.js';
import type { SourceEntry } from '../../src/transfer/store/source.js';
import type { SourceRoot } from '../../src/transfer/store/source-spec.js';
import type { Hasher } from '../../src/transfer/checksum.js';
import { execFileSync } from '../helpers/sync.js';

const SECRET = 'SECRET OUTSIDE THE TREE\n';
const made: string[] = [];
const fifos: string[] = [];

test.after(() => {
  // A FIFO open that blocked (the old code) holds a thread-pool thread until a writer comes.
  for (const fifo of fifos) {
    try {
      // Non-blocking: opens (and so releases the reader) only when a reader waits; ENXIO otherwise.
      fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
    } catch {
      // No reader left waiting.
    }
  }
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

/** base/tree/d/secret.txt (a decoy: the outside file's size and mtime), base/outside/secret.txt. */
function setUp(): { tree: string; outside: string } {
  const base = fs.mkdtempSync(`${os.tmpdir()}/fcp-swap-`);
  made.push(base);
  const tree = path.join(base, 'tree');
  const outside = path.join(base, 'outside');
  fs.mkdirSync(path.join(tree, 'd'), { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret.txt'), SECRET);
  const decoy = path.join(tree, 'd', 'secret.txt');
  fs.writeFileSync(decoy, 'x'.repeat(SECRET.length));
  const st = fs.statSync(path.join(outside, 'secret.txt'));
  fs.utimesSync(decoy, st.atime, st.mtime);
  return { tree, outside };
}

/** Replaces `dir` by a link to `target`, as a local user can at any moment. */
function swapForLink(dir: string, target: string): void {
  fs.renameSync(dir, `${dir}.old`);
  fs.symlinkSync(target, dir);
}

async function list(
  source: PosixSource,
  root: SourceRoot,
  warnings: FcpError[] = [],
): Promise<SourceEntry[]> {
  const entries: SourceEntry[] = [];
  for await (const batch of source.walk(root, createSelector(), (w) => warnings.push(w)))
    entries.push(...batch);
  return entries;
}

test('a directory swapped for a link between listing and open: the open refuses, nothing outside is read', async () => {
  const { tree, outside } = setUp();
  const source = new PosixSource();
  const entry = (await list(source, { abs: tree, topRel: '.' })).find((e) => e.rel === 'd/secret.txt')!;
  swapForLink(path.join(tree, 'd'), outside);

  const data = Buffer.alloc(Number(entry.size));
  assert.throws(
    () => source.features.readWholeSync!(entry, data),
    (err: FcpError) => err.code === 'FCP_ERR_FILE_CHANGED',
  );
  assert.not.ok(data.toString().includes('SECRET'));
  const opened = await source.open(entry).then(
    async (file) => {
      await file.close();
      return 'opened';
    },
    (err: FcpError) => err.code,
  );
  assert.is(opened, 'FCP_ERR_FILE_CHANGED');
});

test('under a root, a directory swapped for a link in the middle of the walk: its remaining entries are its own', async () => {
  const { tree, outside } = setUp();
  // More entries than one batch (512), so the swap can come between two batches.
  const wide = path.join(tree, 'w');
  fs.mkdirSync(wide);
  for (let i = 0; i < 600; i++) fs.writeFileSync(path.join(wide, `f${String(i).padStart(3, '0')}`), 'i');
  // Outside, under the names the walk has still to look at: a bigger file and a directory.
  fs.writeFileSync(path.join(outside, 'f599'), SECRET);
  fs.mkdirSync(path.join(outside, 'f598'));
  fs.writeFileSync(path.join(outside, 'f598', 'leak'), SECRET);

  const source = new PosixSource();
  const entries: SourceEntry[] = [];
  let swapped = false;
  const root: SourceRoot = { abs: tree, topRel: '.', within: fs.realpathSync(tree) };
  for await (const batch of source.walk(root, createSelector(), () => {})) {
    entries.push(...batch);
    if (!swapped && entries.some((e) => e.rel === 'w/f000')) {
      swapForLink(wide, outside);
      swapped = true;
    }
  }
  assert.ok(swapped);
  const rels = entries.map((e) => e.rel);
  assert.not.ok(
    rels.some((r) => r.startsWith('w/f598/')),
    'a directory outside was walked',
  );
  assert.is(entries.find((e) => e.rel === 'w/f598')?.kind, 'file');
  assert.is(entries.find((e) => e.rel === 'w/f599')?.size, 1n);
  assert.is(rels.filter((r) => r.startsWith('w/')).length, 600);
});

test('a file swapped for a FIFO before a checksum: refused at once, no thread left blocked', async () => {
  const { tree } = setUp();
  const source = new PosixSource();
  const entry = (await list(source, { abs: tree, topRel: '.' })).find((e) => e.rel === 'd/secret.txt')!;
  const at = path.join(tree, 'd', 'secret.txt');
  fs.rmSync(at);
  execFileSync('mkfifo', [at]);
  fifos.push(at);
  const hasher = { hashOpenFile: () => Promise.resolve(0n) } as unknown as Hasher;
  const outcome = await Promise.race([
    source.hashWhole(entry, hasher).then(
      () => 'hashed',
      (err: FcpError) => err.code,
    ),
    sleep(5_000).then(() => 'still blocked after 5 s'),
  ]);
  assert.is(outcome, 'FCP_ERR_FILE_CHANGED');
  assert.throws(
    () => source.features.readWholeSync!(entry, Buffer.alloc(Number(entry.size))),
    (err: FcpError) => err.code === 'FCP_ERR_FILE_CHANGED',
  );
});

test('under a root, a top whose directory was swapped for a link outside is refused, file or directory', async () => {
  const { tree, outside } = setUp();
  fs.mkdirSync(path.join(outside, 'd'));
  fs.writeFileSync(path.join(outside, 'd', 'secret.txt'), SECRET);
  const root = fs.realpathSync(tree);
  // Resolved (and checked) while the tree was sound; a level above the top swapped before the walk.
  const dirTop: SourceRoot = { abs: path.join(root, 'd'), topRel: '.', within: root };
  const fileTop: SourceRoot = { abs: path.join(root, 'd', 'secret.txt'), topRel: 'secret.txt', within: root };
  fs.mkdirSync(path.join(root, 'd', 'sub'));
  const subTop: SourceRoot = { abs: path.join(root, 'd', 'sub'), topRel: 'sub', within: root };
  swapForLink(path.join(root, 'd'), outside);
  fs.mkdirSync(path.join(outside, 'sub'));
  fs.writeFileSync(path.join(outside, 'sub', 'leak'), SECRET);

  const source = new PosixSource();
  for (const top of [dirTop, fileTop, subTop]) {
    const outcome = await list(source, top).then(
      (entries) => entries.map((e) => e.rel).join(','),
      (err: FcpError) => err.code,
    );
    assert.is(outcome, 'FCP_ERR_PATH_OUTSIDE_ROOT', `${top.abs}: ${outcome}`);
  }
  // Without a root (a client's own operand: the user chose the path), the link is the user's business.
  const own = await list(source, { abs: path.join(root, 'd'), topRel: '.' });
  assert.ok(own.some((e) => e.rel === 'secret.txt'));
});

test.run();
