// The glob half of a pull's source spec: the same matches as before for any pattern, with each directory
// read once, a work budget, and a stop when nobody waits. Regression for a review finding of session 12:
// `(**\/*\/)x5 nomatch` cost fcpd 16.6 s of CPU over 1,661 directories, x80 ~160 s, still running after the
// client had gone (each (segment, directory) pair read and lstat'ed its directory again).
import fs from 'node:fs';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/errors.js';
import { ConfinedRoot } from '../../src/transfer/store/confined-root.js';
import {
  EXPANSION_STEPS_PER_ENTRY,
  GlobExpansion,
  normaliseGlobs,
} from '../../src/transfer/store/glob-expansion.js';
import { expandRemoteSources } from '../../src/transfer/store/source-spec.js';
import { rejection, tempDirs } from '../helpers/expect.js';

const { make: tempDir, removeAll } = tempDirs();

test.after(removeAll);

/** A served tree with depth, dot names, links and files, for comparing patterns. */
function mixedTree(): string {
  const root = tempDir();
  for (const dir of ['a/b/c/d', 'a/x/y', 'b/c', '.dot/c', 'a/.hid/c', 'e']) {
    fs.mkdirSync(path.join(root, dir), { recursive: true });
  }
  for (const file of [
    'a/b/c/d/f.gz',
    'a/b/c/g.gz',
    'a/x/y/h.gz',
    'b/c/i.txt',
    '.dot/c/j.gz',
    'a/.hid/c/k',
    'e/c',
  ]) {
    fs.writeFileSync(path.join(root, file), '');
  }
  fs.symlinkSync('../a', path.join(root, 'b/link'));
  return root;
}

/** `globs` expanded below the root as given (they must already hold no repeated or trailing '**'). */
async function expand(root: string, globs: string[], dirsOnly = false): Promise<string[]> {
  const onWarning = () => {};
  return new GlobExpansion(await ConfinedRoot.open(root), globs, { spec: 'p', dirsOnly, onWarning }).from(
    '.',
  );
}

/** What normalisation did before the runs of stars were collapsed. */
function collapseRepeatsOnly(globs: string[]): string[] {
  const out = globs.filter((g, i) => !(g === '**' && globs[i - 1] === '**'));
  if (out[out.length - 1] === '**') out[out.length - 1] = '*';
  return out;
}

test('runs of * and ** become their *s then one **; at the end, their *s', () => {
  assert.equal(normaliseGlobs(['**', '*', '**', '*', 'x']), ['*', '*', '**', 'x']);
  assert.equal(normaliseGlobs(['**', '**', '**', 'x']), ['**', 'x']);
  assert.equal(normaliseGlobs(['a', '*', '**', 'b', '**', '*.gz']), ['a', '*', '**', 'b', '**', '*.gz']);
  assert.equal(normaliseGlobs(['**', '*']), ['*']);
  assert.equal(normaliseGlobs(['**']), ['*']);
  assert.equal(normaliseGlobs(['*', '**']), ['*', '*']);
  assert.equal(normaliseGlobs(['**', '*', '**']), ['*', '*']);
  assert.equal(normaliseGlobs(['x', '**', '*', '*']), ['x', '*', '*']);
  assert.equal(normaliseGlobs(['**', '?*', '**', 'x']), ['**', '?*', '**', 'x']);
});

test('a collapsed pattern matches exactly what the pattern as typed does', async () => {
  const root = mixedTree();
  const patterns = [
    ['**', '*', '**', '*', 'c'],
    ['**', '*', 'c'],
    ['*', '**', '*', 'c'],
    ['**', '*', '**'],
    ['**', '*'],
    ['*', '**'],
    ['**', '*', '*', '**', '*.gz'],
    ['a', '**', '*', '**', '{d,y}'],
    ['**', '*', '**', '*', '**', '*', '**', '*', 'nomatch'],
  ];
  for (const p of patterns) {
    for (const dirsOnly of [false, true]) {
      const typed = await expand(root, collapseRepeatsOnly(p), dirsOnly);
      assert.equal(
        await expand(root, normaliseGlobs(p), dirsOnly),
        typed,
        `${p.join('/')} dirsOnly=${dirsOnly}`,
      );
    }
  }
});

test('each directory is read once, however many ** branches reach it', async () => {
  // A name that cannot cross the wire is reported when its directory is read: once, not once per branch.
  const root = tempDir();
  const bad = Buffer.concat([Buffer.from(path.join(root, 'a/a/a/')), Buffer.from([0x66, 0xff])]);
  fs.mkdirSync(path.join(root, 'a/a/a'), { recursive: true });
  fs.writeFileSync(bad, '');
  const warnings: string[] = [];
  const served = await ConfinedRoot.open(root);
  for (const spec of ['**/*/**/*/**/*/nomatch', '**/a*/**/a*/**/nomatch']) {
    warnings.length = 0;
    await rejection(
      expandRemoteSources(served, spec, (w) => warnings.push(w.code)),
      'FCP_ERR_PATH_NO_MATCH',
    );
    assert.equal(warnings, ['FCP_ERR_PATH_ENCODING'], spec);
  }
});

/** A chain of `depth` directories named 'a', each holding `files` files: every '**\/a' branch stays alive. */
function chain(depth: number, files: number): string {
  const root = tempDir();
  let dir = root;
  for (let d = 0; d < depth; d++) {
    dir = path.join(dir, 'a');
    fs.mkdirSync(dir);
    for (let f = 0; f < files; f++) fs.writeFileSync(path.join(dir, `f${f}`), '');
  }
  return root;
}

test('a pattern that needs too much work is FCP_ERR_LIMIT_EXCEEDED, naming it', async () => {
  const root = await ConfinedRoot.open(chain(200, 10));
  const spec = `${'**/a/'.repeat(60)}nomatch`;
  const err = await rejection(expandRemoteSources(root, spec), 'FCP_ERR_LIMIT_EXCEEDED');
  assert.is(err.path, spec);
  assert.ok(err.message.includes(JSON.stringify(spec)), err.message);
  assert.ok(err.message.includes(`${EXPANSION_STEPS_PER_ENTRY} steps per name`), err.message);
});

test('a pattern of 32 segments stays within the budget on the same tree', async () => {
  const root = await ConfinedRoot.open(chain(200, 10));
  const spec = `${'**/a/'.repeat(15)}a/f1`;
  const got = await expandRemoteSources(root, spec);
  assert.is(got.length, 200 - 15);
});

test('an aborted signal stops the expansion between directories, rejecting with its reason', async () => {
  const root = tempDir();
  for (let i = 0; i < 20; i++) {
    fs.mkdirSync(path.join(root, `d${String(i).padStart(2, '0')}`));
    fs.writeFileSync(Buffer.from(path.join(root, `d${String(i).padStart(2, '0')}/\xff`), 'latin1'), '');
  }
  const served = await ConfinedRoot.open(root);
  const controller = new AbortController();
  const reason = new FcpError('FCP_ERR_NET_CLOSED', 'the client left');
  const warned: string[] = [];
  const err = await rejection(
    expandRemoteSources(
      served,
      '**/nomatch',
      (w) => {
        warned.push(w.path ?? '');
        controller.abort(reason);
      },
      controller.signal,
    ),
    'FCP_ERR_NET_CLOSED',
  );
  assert.is(err.cause, reason);
  assert.is(err.message, 'the client left (after reading 2 directories)');
  assert.is(warned.length, 1, warned.join(', '));
});

test.run();
