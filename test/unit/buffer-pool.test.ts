// The piece-buffer pool: full pieces are reused, small buffers are carved from shared slabs without ever
// overlapping one still in use, and a slab whose views all came back is carved again.
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { PIECE_SIZE } from '../../src/protocol/index.js';
import { BufferPool } from '../../src/transfer/buffer-pool.js';

test('small buffers never overlap, have exactly the size asked, and start 8-byte aligned', () => {
  const pool = new BufferPool();
  const sizes: number[] = [];
  for (let i = 0; i < 400; i++) sizes.push(1 + ((i * 7919) % (i % 10 === 0 ? PIECE_SIZE : 70_000)));
  const bufs = sizes.map((n) => pool.take(n));
  bufs.forEach((b, i) => b.fill(i & 0xff));
  bufs.forEach((b, i) => {
    assert.is(b.length, sizes[i]);
    assert.is(b.byteOffset % 8, 0, `buffer ${i} offset ${b.byteOffset}`);
    assert.ok(
      b.every((x) => x === (i & 0xff)),
      `buffer ${i} was overwritten by another`,
    );
  });
});

test('a full piece comes back from the pool once given; a small buffer is not handed out twice', () => {
  const pool = new BufferPool();
  const piece = pool.take(PIECE_SIZE);
  pool.give(piece);
  assert.is(pool.take(PIECE_SIZE).buffer, piece.buffer);
  const small = pool.take(100);
  pool.give(small);
  assert.is.not(
    pool.take(100).byteOffset,
    small.byteOffset,
    'a small buffer given back is handed out again while its slab is being carved',
  );
  assert.is(pool.take(PIECE_SIZE + 1_000_000).length, PIECE_SIZE + 1_000_000);
});

test('buffers of every size up to a piece, each given back before the next, cost no new memory', () => {
  const pool = new BufferPool();
  const first = pool.take(70_000);
  pool.give(first);
  for (let i = 0; i < 200; i++) {
    const n = 1 + ((i * 104_729) % PIECE_SIZE);
    const b = i % 2 === 0 ? pool.take(n) : pool.takeFramed(n);
    assert.is(b.buffer, first.buffer, `buffer ${i} (${n} bytes) is new memory`);
    pool.give(b);
  }
});

/** Takes `n`-byte buffers until one comes from a slab other than `first`'s. */
function takeUntilNextSlab(pool: BufferPool, first: Buffer, n: number): Buffer[] {
  const taken = [first];
  for (let i = 0; i < 1000; i++) {
    const b = pool.take(n);
    taken.push(b);
    if (b.buffer !== first.buffer) return taken;
  }
  throw new Error('no second slab after 1000 buffers');
}

test('a slab whose views all came back is carved again instead of a new one', () => {
  const pool = new BufferPool();
  const first = pool.take(16_384);
  const taken = takeUntilNextSlab(pool, first, 16_384);
  const second = taken.pop()!;
  for (const b of taken) pool.give(b);
  // The second slab fills up; the next one is the first slab again, not a fresh allocation.
  const more = takeUntilNextSlab(pool, second, 16_384);
  assert.is(more[more.length - 1]!.buffer, first.buffer);
});

test('a slab with one view still out is never carved again', () => {
  const pool = new BufferPool();
  const kept = pool.take(16_384).fill(0xab);
  const taken = takeUntilNextSlab(pool, kept, 16_384).slice(1);
  let current = taken.pop()!;
  for (const b of taken) pool.give(b);
  for (let round = 0; round < 4; round++) {
    const next = takeUntilNextSlab(pool, current, 16_384);
    assert.is.not(next[next.length - 1]!.buffer, kept.buffer, `round ${round}`);
    for (const b of next.slice(0, -1)) pool.give(b.fill(0xcd));
    current = next[next.length - 1]!;
  }
  assert.ok(
    kept.every((x) => x === 0xab),
    'the view still out was overwritten',
  );
});

test.run();
