import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { loadHasher } from '../../src/transfer/checksum.js';

// Golden values and an independent construction of spec/PROTOCOL.md §4: sender and receiver share
// fileHash(), so a transfer test cannot catch a byte-order mistake that both ends make alike.

const XXH64_EMPTY = 0xef46db3751d8e999n;
const XXH32_EMPTY = 0x02cc5d05;

test('xxh64 and xxh32 of zero bytes are the published values', async () => {
  const h = await loadHasher();
  assert.is(h.pieceHash(new Uint8Array(0)), XXH64_EMPTY);
  assert.is(h.h32(new Uint8Array(0)), XXH32_EMPTY);
});

test('an empty file checksum is xxh64 of zero bytes', async () => {
  const h = await loadHasher();
  assert.is(h.fileHash(new BigUint64Array(0)), XXH64_EMPTY);
});

test('the file checksum is xxh64 of the piece hashes as big-endian u64s, in order', async () => {
  const h = await loadHasher();
  const pieces = [Buffer.from('first piece'), Buffer.from('second'), Buffer.alloc(3000, 7)];
  const hashes = BigUint64Array.from(pieces.map((p) => h.pieceHash(p)));
  for (let n = 1; n <= pieces.length; n++) {
    const be = Buffer.alloc(n * 8);
    for (let i = 0; i < n; i++) be.writeBigUInt64BE(hashes[i]!, i * 8);
    assert.is(h.fileHash(hashes.subarray(0, n)), h.pieceHash(be), `${n} piece(s)`);
  }
  const swapped = BigUint64Array.from([hashes[1]!, hashes[0]!]);
  assert.is.not(h.fileHash(swapped), h.fileHash(hashes.subarray(0, 2)), 'order matters');
});

test('the file checksum is the same construction for files of many pieces, and after them', async () => {
  const h = await loadHasher();
  // Either side of the 64 pieces fileHash lays out in a buffer it keeps, and a small file after a big one.
  for (const n of [64, 65, 200, 2, 1]) {
    const hashes = BigUint64Array.from(
      { length: n },
      (_, i) => (0x9e3779b97f4a7c15n * BigInt(i + n)) & 0xffff_ffff_ffff_ffffn,
    );
    const be = Buffer.alloc(n * 8);
    for (let i = 0; i < n; i++) be.writeBigUInt64BE(hashes[i]!, i * 8);
    assert.is(h.fileHash(hashes), h.pieceHash(be), `${n} piece(s)`);
  }
});

test('fileHash leaves its input as it was', async () => {
  const h = await loadHasher();
  const hashes = BigUint64Array.from([0x0102030405060708n, 0xf0e0d0c0b0a09080n]);
  h.fileHash(hashes);
  assert.equal([...hashes], [0x0102030405060708n, 0xf0e0d0c0b0a09080n]);
});

test.run();
