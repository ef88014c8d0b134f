// The piece-buffer pool: full pieces are reused, small buffers are carved from shared slabs without ever
// overlapping one still in use.
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { PIECE_SIZE } from '../../src/protocol/index.js';
import { BufferPool } from '../../src/transfer/buffer-pool.js';

test('small buffers never overlap, have exactly the size asked, and start 8-byte aligned', () => {
  const pool = new BufferPool();
  const sizes: number[] = [];
  for (let i = 0; i < 400; i++) sizes.push(1 + ((i * 7919) % 70_000));
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

test('a full piece comes back from the pool once given; a small buffer is never pooled', () => {
  const pool = new BufferPool();
  const piece = pool.take(PIECE_SIZE);
  pool.give(piece);
  assert.is(pool.take(PIECE_SIZE), piece);
  const small = pool.take(100);
  pool.give(small);
  assert.is.not(
    pool.take(100).byteOffset,
    small.byteOffset,
    'a small buffer given back is not handed out again',
  );
});

test.run();
