// TransferStatusWriter's current file (src/client/transfer-status.ts): the oldest file of a piece or more on
// its way, else the latest smaller one until it is done. Each case waits for the entry's next rewrite (1 s
// timer) rather than a fixed time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { findTransfer, newTransferId } from '../../src/client/transfer-registry.js';
import { TransferStatusWriter } from '../../src/client/transfer-status.js';
import type { TransferEvent } from '../../src/transfer/events.js';
import { createStats } from '../../src/transfer/stats.js';
import { eventually } from '../helpers/detached.js';
import { test } from '../helpers/test.js';
import { samplePush } from '../helpers/transfers.js';

const base = mkdtempSync(path.join(tmpdir(), 'fcp-status-'));
test.after(() => rmSync(base, { recursive: true, force: true }));

const MiB = 1 << 20;

function writer(): { w: TransferStatusWriter; id: string; dir: string } {
  const dir = path.join(base, newTransferId());
  const id = newTransferId();
  const description = samplePush(id);
  const stats = createStats(performance.now());
  const w = new TransferStatusWriter(dir, description, {
    stats: () => stats,
    connections: () => 1,
    route: () => undefined,
  });
  return { w, id, dir };
}

/** Feeds `events`, then waits for a rewrite of the entry and returns its current file. */
async function currentAfter(t: ReturnType<typeof writer>, events: TransferEvent[]): Promise<string | null> {
  const before = findTransfer(t.dir, t.id).updated_at;
  for (const e of events) t.w.listener(e);
  let current: string | null = null;
  await eventually(5000, 'the entry to be rewritten', () => {
    const s = findTransfer(t.dir, t.id);
    current = s.current_file;
    return s.updated_at !== before;
  });
  return current;
}

const needed = (p: string, bytes: number): TransferEvent => ({ type: 'needed', path: p, bytes, held: 0 });
const finished = (p: string, size: number): TransferEvent => ({
  type: 'finished',
  path: p,
  kind: 'file',
  size,
  resumedBytes: 0,
});

test('a big file on its way is the current file while small ones come and go; then the latest small one', async () => {
  const t = writer();
  try {
    assert.is(await currentAfter(t, [needed('big', 8 * MiB), needed('a', 100), finished('a', 100)]), 'big');
    assert.is(await currentAfter(t, [needed('b', 100), finished('big', 8 * MiB)]), 'b');
    assert.is(await currentAfter(t, [finished('b', 100)]), null);
  } finally {
    t.w.remove();
  }
});

test.run();
