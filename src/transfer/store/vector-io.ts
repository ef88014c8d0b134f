/**
 * Positioned vector I/O on a file: several buffers, one preadv/pwritev, one thread-pool round trip. Both
 * loop until every byte is moved, since the kernel may move fewer bytes than asked even on a regular file.
 */
import type { FileHandle } from 'node:fs/promises';
import { FcpError } from '../../protocol/index.js';

/** Fills `views` back to back from `position`; a short read means the file shrank under us. */
export async function readvFully(fh: FileHandle, views: Buffer[], position: number): Promise<void> {
  let pending = views;
  let at = position;
  while (pending.length > 0) {
    const { bytesRead } = await fh.readv(pending, at);
    if (bytesRead === 0)
      throw new FcpError('FCP_ERR_FILE_CHANGED', 'file is shorter than when it was listed');
    at += bytesRead;
    pending = dropFront(pending, bytesRead);
  }
}

/** Writes `buffers` back to back from `position`. */
export async function writevFully(fh: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  let at = position;
  while (pending.length > 0) {
    const { bytesWritten } = await fh.writev(pending, at);
    if (bytesWritten === 0) throw new FcpError('EIO', 'the file system accepted no bytes');
    at += bytesWritten;
    pending = dropFront(pending, bytesWritten);
  }
}

/** What is left of `buffers` after their first `n` bytes (views, no copies). */
function dropFront(buffers: Buffer[], n: number): Buffer[] {
  let skip = n;
  const rest: Buffer[] = [];
  for (const b of buffers) {
    if (skip >= b.length) skip -= b.length;
    else {
      rest.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
  }
  return rest;
}
