import { setTimeout as sleep } from 'node:timers/promises';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { releaseIdleMemory } from '../../src/daemon/idle-memory.js';
import { PIECE_SIZE } from '../../src/protocol/index.js';
import { sharedPool } from '../../src/transfer/buffer-pool.js';

// What a daemon does when its last session ends (src/daemon/idle-memory.ts): the pooled piece buffers and
// whatever else the sessions left for the GC are freed, not kept for the daemon's whole idle life.

const MIB = 1024 * 1024;

test('releaseIdleMemory frees the pooled piece buffers', async () => {
  // What a big transfer leaves in the pool: 32 pieces, written to (so their pages are resident).
  const pieces = Array.from({ length: 32 }, () => sharedPool.take(PIECE_SIZE).fill(0x5a));
  for (const piece of pieces) sharedPool.give(piece);
  pieces.length = 0;
  const held = process.memoryUsage().arrayBuffers;
  assert.ok(held >= 32 * MIB, `the pool holds ${(held / MIB).toFixed(1)} MiB`);
  releaseIdleMemory();
  // Backing stores may be freed just after the collection, off the main thread: give it up to 2 s.
  let now = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 200 && held - now < 30 * MIB; i++) {
    await sleep(10);
    now = process.memoryUsage().arrayBuffers;
  }
  assert.ok(
    held - now >= 30 * MIB,
    `freed ${((held - now) / MIB).toFixed(1)} MiB of ${(held / MIB).toFixed(1)}`,
  );
  // The pool still works: a new piece buffer comes from a fresh allocation.
  assert.is(sharedPool.take(PIECE_SIZE).length, PIECE_SIZE);
});

test.run();
