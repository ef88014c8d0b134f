/**
 * The pieces of a kept partial that may be resumed (spec/PROTOCOL.md §7.1): every piece its index records is
 * re-read from the temporary and re-hashed, and only those whose bytes still match are kept; a torn or
 * tampered piece is simply sent again.
 */
import { constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { PIECE_SIZE } from '../../protocol/index.js';
import { sharedPool } from '../buffer-pool.js';
import { pieceLength, readFully } from '../checksum.js';
import type { ConfinedRoot } from './confined-root.js';
import { isOwnPlainFile } from './fresh-file.js';
import type { SafePath } from '../wire-path.js';

/** seq -> hash of the recorded pieces of the temporary at `tempRel` (a file of `size` bytes) still intact. */
export async function verifyKeptPieces(
  root: ConfinedRoot,
  tempRel: SafePath,
  size: number,
  recorded: ReadonlyMap<number, bigint>,
  pieceHash: (data: Uint8Array) => bigint,
): Promise<Map<number, bigint>> {
  const kept = new Map<number, bigint>();
  let fh: FileHandle;
  try {
    // O_NONBLOCK: a FIFO planted at the temporary's name must not hang the open; the check below refuses it.
    fh = await root.openFile(tempRel, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch {
    return kept;
  }
  // Another user's plant (or a hard link) is not ours to resume into: start over, which replaces it.
  const st = await fh.stat().catch(() => undefined);
  if (st === undefined || !isOwnPlainFile(st)) {
    await fh.close();
    return kept;
  }
  const buf = sharedPool.take(PIECE_SIZE);
  try {
    for (const [seq, hash] of recorded) {
      const view = buf.subarray(0, pieceLength(size, seq));
      try {
        await readFully(fh, view, seq * PIECE_SIZE);
      } catch {
        continue;
      }
      if (pieceHash(view) === hash) kept.set(seq, hash);
    }
  } finally {
    sharedPool.give(buf);
    await fh.close();
  }
  return kept;
}
