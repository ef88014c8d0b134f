// Review s13 F3 (spec/SECURITY.md §11 "The partial sweep"): the daemon kept a partial of an interrupted push
// under `--root`; a local user who may write in the root then replaces its directory by a link to another
// directory of the daemon's account. The start-up sweep of the restarted daemon must neither read the age
// of, nor delete, the `.big.fcp-part` / `.big.fcp-meta` it finds through the link. Real fcpd and fcp.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import {
  MiB,
  partialOf,
  recordedPieces,
  sessionEnds,
  startFcp,
  startFcpd,
  waitUntil,
  writeRandomFile,
} from '../helpers/reliability.js';
import { removeTree } from '../helpers/tree.js';

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-sweep-link-'));
const DAY_MS = 24 * 3600_000;

test.after(() => removeTree(tmp));

/** Pushes src/big to root/d/big and kills the client mid-way: the daemon keeps and records the partial. */
async function keepPartial(root: string, state: string, big: string): Promise<void> {
  const d = await startFcpd({ root, stateDir: state });
  try {
    const { meta } = partialOf(join(root, 'd', 'big'));
    const args = ['push', '--bwlimit', '2000000', '--retries', '0', big, d.remote('d/big')];
    const client = startFcp(args, 60_000);
    await waitUntil(async () => (await recordedPieces(meta)).length >= 2, 'pieces recorded', 30_000);
    await client.kill();
    await waitUntil(() => sessionEnds(d.stderr()).length === 1, 'the daemon to end the session', 10_000);
    const records = join(state, 'partials.jsonl');
    await waitUntil(() => existsSync(records) && readFileSync(records, 'utf8') !== '', 'the record', 10_000);
  } finally {
    await d.stop();
  }
}

test('the start-up sweep does not follow a directory of the root swapped for a link', async () => {
  const root = join(tmp, 'root');
  const state = join(tmp, 'state');
  const outside = join(tmp, 'outside');
  mkdirSync(join(root, 'd'), { recursive: true });
  mkdirSync(join(tmp, 'src'));
  mkdirSync(outside);
  const big = join(tmp, 'src', 'big');
  await writeRandomFile(big, 8 * MiB);
  await keepPartial(root, state, big);

  // The daemon account's other files, two days old, and the local user's swap.
  const theirs = [join(outside, '.big.fcp-part'), join(outside, '.big.fcp-meta')];
  const old = (Date.now() - 2 * DAY_MS) / 1000;
  for (const f of theirs) {
    await writeFile(f, 'precious\n');
    utimesSync(f, old, old);
  }
  renameSync(join(root, 'd'), join(root, 'd.moved'));
  symlinkSync(outside, join(root, 'd'));

  const d = await startFcpd({ root, stateDir: state, args: ['--partial-max-age', '1'] });
  try {
    await waitUntil(() => /stale partial|partial record/.test(d.stderr()), 'the sweep to report', 10_000);
  } finally {
    await d.stop();
  }
  for (const f of theirs) assert.ok(existsSync(f), `${f} was removed by the sweep:\n${d.stderr()}`);
  assert.match(d.stderr(), /partial record dropped, not swept: .*d is a symbolic link/);
  const moved = partialOf(join(root, 'd.moved', 'big'));
  assert.ok(existsSync(moved.part) && existsSync(moved.meta), 'the real partial is untouched');
});

test.run();
