// Root's fcp with a user's state directory (`sudo -E fcp push ...`): the user swaps `fcp/` for their own,
// whose `transfers` leads to a root-only directory, while the transfer runs. Every later write of the entry
// must still go to the directory fcp checked, never through the swapped path into the root-only one.
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import { registryDir, type TransferStatus } from '../../src/client/transfer-registry.js';
import { type Account, accountWithHome } from '../helpers/accounts.js';
import { describeRun, runFcp } from '../helpers/cli.js';
import { eventually } from '../helpers/detached.js';
import { execFileSync } from '../helpers/sync.js';
import { test } from '../helpers/test.js';
import { movingTo, servedTree, transferWhere } from '../helpers/transfers.js';
import { buildTree } from '../helpers/tree.js';

const BIG = 4_000_000;
const { tmp, remote } = servedTree('fcp-e2e-registry-swap-', (t) =>
  buildTree(join(t.tmp, 'src'), [{ kind: 'file', path: 'big.bin', size: BIG }]),
);

function updatedAt(entry: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(entry, 'utf8')) as TransferStatus).updated_at;
  } catch {
    return undefined;
  }
}

test("a user who swaps the registry's levels mid-transfer does not steer root's writes", async () => {
  const user = accountWithHome('fcpuser-s12local');
  const state = mkdtempSync(join(tmpdir(), 'fcp-registry-swap-state-'));
  chownSync(state, user.uid, user.gid);
  // Stands for /etc/cron.d or any directory only root may write.
  const rootOnly = mkdtempSync(join(tmpdir(), 'fcp-registry-swap-root-'));
  chmodSync(rootOnly, 0o755);
  try {
    await swapMidTransfer(user, state, rootOnly);
  } finally {
    for (const dir of [state, rootOnly]) rmSync(dir, { recursive: true, force: true });
  }
});

async function swapMidTransfer(user: Account, state: string, rootOnly: string): Promise<void> {
  const env = { XDG_STATE_HOME: state };
  const run = runFcp(['push', '-q', '--bwlimit', '1M', join(tmp, 'src', 'big.bin'), remote('swapped/')], {
    env,
  });
  const t = await transferWhere(registryDir(env), 'the push to be listed', movingTo('swapped/'));
  const held = join(state, 'fcp.old', 'transfers', `${t.id}.json`);
  const before = updatedAt(join(registryDir(env), `${t.id}.json`));
  execFileSync(
    'sh',
    [
      '-c',
      'mv "$1/fcp" "$1/fcp.old" && mkdir "$1/fcp" && ln -s "$2" "$1/fcp/transfers"',
      'swap',
      state,
      rootOnly,
    ],
    { uid: user.uid, gid: user.gid },
  );
  // The next write after the swap lands in one place or the other.
  await eventually(10_000, 'a write of the entry after the swap', () => {
    const after = updatedAt(held);
    return readdirSync(rootOnly).length > 0 || (after !== undefined && after !== before);
  });
  assert.equal(readdirSync(rootOnly), [], 'nothing is written into the directory the user pointed at');
  const done = await run;
  assert.is(done.code, EXIT.OK, describeRun(done));
  assert.equal(readdirSync(rootOnly), []);
  assert.not.ok(existsSync(held), 'the finished transfer removed its entry where it wrote it');
}

test.run();
