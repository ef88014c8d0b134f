/**
 * Resuming on the receiving side (spec/PROTOCOL.md §7.1): the pieces a file kept from an interrupted run,
 * verified, and the FILE_HAVE messages that name them before FILE_READY says RESUME.
 */
import { MAX_HAVE_BYTES } from '../protocol/index.js';
import { pieceLength } from './checksum.js';
import { PieceState, type ReceiveContext, type RecvFile } from './receive-files.js';

/** Marks the pieces the sink kept from an interrupted run of this same source file, verified (§7.1). */
export async function loadPartial(ctx: ReceiveContext, file: RecvFile): Promise<void> {
  const kept = await file.out.loadPartial((data) => ctx.hasher.pieceHash(data));
  for (const [seq, hash] of kept) {
    file.state[seq] = PieceState.Written;
    file.hashes[seq] = hash;
    file.piecesWritten++;
    file.resumedPieces++;
    file.resumedBytes += pieceLength(file.size, seq);
  }
}

/** FILE_HAVE for the pieces held, as many messages as the bitmap takes. */
export function sendHave(ctx: ReceiveContext, file: RecvFile): void {
  const bitsPerMsg = MAX_HAVE_BYTES * 8;
  for (let first = 0; first < file.pieces; first += bitsPerMsg) {
    const count = Math.min(bitsPerMsg, file.pieces - first);
    const bitmap = new Uint8Array(Math.ceil(count / 8));
    let any = false;
    for (let i = 0; i < count; i++) {
      if (file.state[first + i] !== PieceState.Written) continue;
      bitmap[i >> 3]! |= 0x80 >> (i & 7);
      any = true;
    }
    if (any) ctx.answers.have(file.id, first, bitmap);
  }
}
