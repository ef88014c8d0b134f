import { fileURLToPath } from 'node:url';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { execFileSync } from '../helpers/sync.js';

const MODULE_JS = fileURLToPath(new URL('../../src/cli/young-generation.js', import.meta.url));

/**
 * New-space capacity in bytes before and after a churn that makes V8 grow it: short-lived buffers
 * allocated at a high rate while a ring of recent ones stays alive across scavenges, which is what a
 * transfer does. Run in a child so the test process's own heap is not part of it.
 */
function newSpaceGrowth(pin: boolean): { before: number; after: number } {
  const script = `
    import { getHeapSpaceStatistics } from 'node:v8';
    const { pinYoungGeneration } = await import(${JSON.stringify(MODULE_JS)});
    const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
    const before = newSpace();
    if (${pin}) pinYoungGeneration();
    const ring = new Array(4096);
    for (let i = 0; i < 1_000_000; i++) ring[i % ring.length] = { i, tag: 'x'.repeat(i % 64), buf: Buffer.allocUnsafe(256) };
    console.log(JSON.stringify({ before, after: newSpace() }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return JSON.parse(out) as { before: number; after: number };
}

// `before` counts one committed semi-space; once a scavenge has run, both are committed, so a pinned
// young generation reports twice its start.
test('the churn grows the young generation well past its start when nothing pins it', () => {
  const { before, after } = newSpaceGrowth(false);
  assert.ok(after > 4 * before, `new space ${before} -> ${after} bytes: the workload must make V8 grow it`);
});

test('pinYoungGeneration keeps the young generation at its start-up semi-space size', () => {
  const { before, after } = newSpaceGrowth(true);
  assert.ok(after <= 2 * before, `new space ${before} -> ${after} bytes after pinning`);
});

test.run();
