// A symlink planted at a partial's piece index (`.NAME.fcp-meta`, beside `.NAME.fcp-part`) is removed, never
// followed: a multi-piece file still arrives, and the file the link pointed to is untouched. As for the
// temporary itself (posix-file.ts): a run killed while placing a link, or a local user's plant, must not fail
// that file on every later run, nor get a file outside written or truncated. Push and pull alike (the
// receiver is the daemon, then fcp).
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { describeRun, runFcp } from '../helpers/cli.js';
import { MiB, writeRandomFile } from '../helpers/reliability.js';
import { test } from '../helpers/test.js';
import { servedTree } from '../helpers/transfers.js';

const VICTIM = 'outside victim: must stay as it is\n';
const { tmp, served, remote } = servedTree('fcp-e2e-meta-link-', async (t) => {
  // Three pieces, so that the receiver keeps a piece index.
  await writeRandomFile(path.join(t.tmp, 'big.bin'), 3 * MiB + 5);
  writeFileSync(path.join(t.tmp, 'victim.txt'), VICTIM);
});

/** `dir/.big.bin.fcp-meta` as a link to the victim, and the victim as it was. */
function plantLink(dir: string): void {
  mkdirSync(dir, { recursive: true });
  symlinkSync(path.join(tmp, 'victim.txt'), path.join(dir, '.big.bin.fcp-meta'));
}

function assertArrivedIntact(dir: string): void {
  assert.equal(readFileSync(path.join(dir, 'big.bin')), readFileSync(path.join(tmp, 'big.bin')));
  assert.is(readFileSync(path.join(tmp, 'victim.txt'), 'utf8'), VICTIM);
  // The index goes with the commit: no link, no file left beside the copy.
  assert.not.ok(existsSync(path.join(dir, '.big.bin.fcp-meta')));
}

test('push: a link at the destination .fcp-meta is replaced; the file arrives, its target untouched', async () => {
  const dir = path.join(served, 'pushed');
  plantLink(dir);
  const r = await runFcp(['push', '-n', '2', path.join(tmp, 'big.bin'), remote('pushed/')]);
  assert.is(r.code, 0, describeRun(r));
  assertArrivedIntact(dir);
});

test('pull: a link at the local .fcp-meta is replaced; the file arrives, its target untouched', async () => {
  writeFileSync(path.join(served, 'big.bin'), readFileSync(path.join(tmp, 'big.bin')));
  const dir = path.join(tmp, 'pulled');
  plantLink(dir);
  const r = await runFcp(['pull', '-n', '2', remote('big.bin'), `${dir}/`]);
  assert.is(r.code, 0, describeRun(r));
  assertArrivedIntact(dir);
});

test.run();
