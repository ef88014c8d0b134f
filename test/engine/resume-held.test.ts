// A resumed piece is accepted by the end-of-file checksum, not by the xxh64 its piece index records
// (spec/PROTOCOL.md §7.1): a kept partial whose piece differs from the sender's file, with an index that
// records the hash of those wrong bytes (so the receiver offers the piece as held), fails the file with
// FCP_ERR_FILE_CHECKSUM, and the file is sent again in full and ends intact. An honest partial resumes.
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { PIECE_SIZE } from '../../src/protocol/index.js';
import { hasher, leftovers, scratchDirs, startRun } from '../helpers/engine-run.js';
import { bounded, MiB, partialOf, sha256File, writeRandomFile } from '../helpers/reliability.js';
import { test } from '../helpers/test.js';

const RUN_MS = 30_000;
const SIZE = 3 * MiB + 99;
const PIECES = Math.ceil(SIZE / PIECE_SIZE);
const { tmp, freshDir } = await scratchDirs('fcp-engine-resume-held-');

/** A kept partial of `src` in `dest` holding pieces `held` of `bytes`, its index recording their hashes. */
async function plantPartial(
  src: string,
  dest: string,
  bytes: Buffer,
  held: readonly number[],
): Promise<void> {
  const { part, meta } = partialOf(path.join(dest, 'data.bin'));
  await writeFile(part, bytes, { mode: 0o600 });
  // Layout: piece-index.ts (magic, size, mtime_ns, piece size, pieces; then 16-byte records).
  const index = Buffer.alloc(32 + PIECES * 16);
  index.write('FCPMETA1', 0, 'latin1');
  index.writeBigUInt64BE(BigInt(SIZE), 8);
  index.writeBigInt64BE((await stat(path.join(src, 'data.bin'), { bigint: true })).mtimeNs, 16);
  index.writeUInt32BE(PIECE_SIZE, 24);
  index.writeUInt32BE(PIECES, 28);
  for (const seq of held) {
    const piece = bytes.subarray(seq * PIECE_SIZE, Math.min(SIZE, (seq + 1) * PIECE_SIZE));
    index.writeBigUInt64BE(hasher.pieceHash(piece), 32 + seq * 16);
    index[32 + seq * 16 + 8] = 1;
  }
  await writeFile(meta, index, { mode: 0o600 });
}

async function pushWithPartial(damage: boolean) {
  const src = await freshDir('src');
  const dest = await freshDir('dest');
  await writeRandomFile(path.join(src, 'data.bin'), SIZE);
  const bytes = await readFile(path.join(src, 'data.bin'));
  if (damage) bytes[PIECE_SIZE + 4321]! ^= 0x5a;
  await plantPartial(src, dest, bytes, [0, 1, 2]);
  const run = await startRun({ src, dest });
  await bounded(run.done, RUN_MS, 'the transfer');
  const intact =
    (await sha256File(path.join(dest, 'data.bin'))) === (await sha256File(path.join(src, 'data.bin')));
  assert.ok(intact, 'the file arrived intact');
  assert.equal(await leftovers(dest), []);
  return run;
}

test('an honest kept partial is resumed: its held pieces are not sent again', async () => {
  const run = await pushWithPartial(false);
  assert.equal(run.warnings, []);
  assert.is(run.receiverStats.bytesResumed, 3 * PIECE_SIZE);
});

test('a held piece whose bytes differ from the sender file fails the file checksum; sent again in full', async () => {
  const run = await pushWithPartial(true);
  // Reported by each side for the first attempt; the second attempt (sent in full) has none.
  const codes = new Set(run.warnings.map((w) => w.code));
  assert.equal([...codes], ['FCP_ERR_FILE_CHECKSUM'], run.warnings.map((w) => w.message).join('\n'));
  assert.is(run.receiverStats.bytesResumed, 0);
});

test.after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test.run();
