/**
 * The receiver's bookkeeping for a file it will fetch: its piece states, the sink's work names reserved
 * beside it, and the early checks that a hostile peer's announced size cannot get past (a size no real file
 * has; a file its file system has no room for).
 */
import { FcpError, type FileInfoMsg, PIECE_SIZE } from '../protocol/index.js';
import { pieceCount } from './checksum.js';
import type { FilesInProgress, ReceiveContext, RecvFile } from './receive-files.js';
import { notEnoughSpace } from './store/write-failures.js';
import { parentOf, type SafePath } from './wire-path.js';

/**
 * Permission bits applied from the wire: everything but setuid and setgid. A peer must not be able to plant
 * a set-id program (owned by whoever runs the receiver, root included); the sticky bit is harmless.
 */
export const MODE_MASK = 0o1777;
/** Larger than this cannot be a real file (and would lose precision as a JS number). */
const MAX_FILE_SIZE = BigInt(Number.MAX_SAFE_INTEGER);
/** Files from this size up are checked against the free space of their file system before they start. */
const SPACE_CHECK_MIN = 16 * PIECE_SIZE;

/**
 * The bookkeeping of a file to be received, the sink's work names (temporary, piece index) reserved beside
 * `rel`, which the caller reserved.
 */
export function newRecvFile(
  ctx: ReceiveContext,
  files: FilesInProgress,
  info: FileInfoMsg,
  rel: SafePath,
): RecvFile {
  if (info.size > MAX_FILE_SIZE) {
    throw new FcpError('FCP_ERR_LIMIT_EXCEEDED', `announced size ${info.size} is not a real file size`, {
      path: info.path,
      fatal: false,
    });
  }
  const size = Number(info.size);
  if (size >= SPACE_CHECK_MIN) checkSpace(ctx, files, rel, size, info.path);
  const pieces = pieceCount(size);
  const sink = ctx.sink;
  const workNames = sink.workNames(rel, pieces);
  ctx.reservations.reserve(workNames, info.path);
  const spec = {
    wirePath: info.path,
    wireSize: info.size,
    size,
    pieces,
    mode: info.mode & MODE_MASK,
    mtimeNs: info.mtimeNs,
  };
  return {
    id: info.id,
    rel,
    workNames,
    info,
    size,
    pieces,
    state: new Uint8Array(pieces),
    hashes: new BigUint64Array(pieces),
    piecesWritten: 0,
    resumedPieces: 0,
    resumedBytes: 0,
    out: sink.openFile(rel, spec, workNames),
    end: undefined,
    settled: false,
  };
}

/**
 * Refuses, before a byte is sent, a file its file system has no room for (counting the files already in
 * progress): a clear early error instead of ENOSPC halfway through, and no bookkeeping sized by a
 * hostile peer's invented size.
 */
function checkSpace(
  ctx: ReceiveContext,
  files: FilesInProgress,
  rel: SafePath,
  size: number,
  path: string,
): void {
  const free = ctx.sink.freeBytes(parentOf(rel));
  if (free === undefined) return; // no statfs here: the write itself will report ENOSPC
  const inProgress = files.bytesInProgress();
  if (size > free - inProgress) throw notEnoughSpace(path, size, Math.max(0, free - inProgress));
}
