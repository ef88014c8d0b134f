import { fileURLToPath } from 'node:url';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { READ_BYTES_PER_SCAVENGE } from '../../src/transfer/read-garbage.js';
import { execFileSync } from '../helpers/sync.js';

// src/transfer/read-garbage.ts: how much of the socket's read buffers a receiver leaves for the GC.

const MODULE_JS = fileURLToPath(new URL('../../src/transfer/read-garbage.js', import.meta.url));
const MIB = 1024 * 1024;

/**
 * The most ArrayBuffer memory held while 256 MiB arrive as TLS does it (a 16 KiB buffer of its own per read)
 * and are copied into one piece buffer, as the receiver's decoder does for a big file. Run in a child so
 * that nothing of the test process is counted.
 */
function peakWhileReceiving(collect: boolean): number {
  const script = `
    const { dataReceived } = await import(${JSON.stringify(MODULE_JS)});
    const piece = Buffer.allocUnsafeSlow(1024 * 1024);
    let peak = 0;
    for (let i = 0; i < 16384; i++) {
      const chunk = Buffer.allocUnsafeSlow(16384);
      piece.set(chunk, (i % 64) * 16384);
      if (${collect}) dataReceived(chunk.length);
      if (i % 64 === 0) peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }
    console.log(peak);
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return Number(out);
}

test('left to V8, a receiver keeps tens of MiB of read buffers pending', () => {
  const peak = peakWhileReceiving(false);
  assert.ok(peak > 24 * MIB, `peak ${(peak / MIB).toFixed(1)} MiB: the workload must show V8's own bound`);
});

// A scavenge's dead buffers are freed by the next one: about twice the interval is pending.
test('dataReceived keeps the read buffers pending to about twice READ_BYTES_PER_SCAVENGE', () => {
  const peak = peakWhileReceiving(true);
  const bound = 2 * READ_BYTES_PER_SCAVENGE + 4 * MIB;
  assert.ok(peak <= bound, `peak ${(peak / MIB).toFixed(1)} MiB, bound ${(bound / MIB).toFixed(1)} MiB`);
});

test.run();
