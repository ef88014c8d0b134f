/**
 * The Source of a local file system (POSIX): today's sender file code behind the storage seam. Nothing is
 * followed (O_NOFOLLOW, lstat), every open and every read is checked against the listing, and a file of one
 * piece is read with synchronous calls (the small-file fast path, see readWholeSync).
 */
import {
  type BigIntStats,
  closeSync,
  constants as fsConstants,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  type Stats,
} from 'node:fs';
import { type FileHandle, lstat, open } from 'node:fs/promises';
import { FcpError, keepShape } from '../../protocol/index.js';
import type { Hasher } from '../checksum.js';
import type { Selector } from '../select.js';
import type { SourceRoot } from './source-spec.js';
import { readvFully } from './vector-io.js';
import { type EntryKind, walkBatches } from './walk.js';
import type { Source, SourceEntry, SourceEntryState, SourceFeatures, SourceFile } from './source.js';

// O_NONBLOCK: a FIFO swapped in since the listing must not block an open (the synchronous one least of all).
const READ_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;

// readWholeSync's two fstats a file: their Stats die with the session (protocol/kept-shapes.ts).
keepShape(lstatSync('/'));

export class PosixSource implements Source {
  readonly features: SourceFeatures = { readWholeSync };

  walk(
    root: SourceRoot,
    selector: Selector,
    onWarning: (err: FcpError) => void,
  ): AsyncIterable<SourceEntry[]> {
    return walkBatches(root.abs, root.topRel, selector, onWarning, root.within);
  }

  async restat(entry: SourceEntry): Promise<SourceEntryState> {
    const st = await lstat(entry.abs, { bigint: true });
    const kind: EntryKind = st.isFile()
      ? 'file'
      : st.isDirectory()
        ? 'dir'
        : st.isSymbolicLink()
          ? 'symlink'
          : 'other';
    return { kind, size: st.size, mtimeNs: st.mtimeNs, mode: Number(st.mode) & 0o7777 };
  }

  /**
   * Opens without following a link, and refuses a file that is not the one listed (another inode: a
   * directory above it was swapped for a link since, see pinned-dir.ts) or changed since it was listed.
   */
  async open(entry: SourceEntry): Promise<SourceFile> {
    const fh = await open(entry.abs, READ_FLAGS);
    try {
      checkListed(entry, await fh.stat({ bigint: true }));
    } catch (err) {
      await fh.close();
      throw err;
    }
    return new PosixFile(fh, entry);
  }

  /** As open() checks, before a byte is hashed: a FIFO swapped in must not block a thread-pool thread. */
  async hashWhole(entry: SourceEntry, hasher: Hasher): Promise<bigint> {
    const fh = await open(entry.abs, READ_FLAGS);
    try {
      checkListed(entry, await fh.stat({ bigint: true }));
      return await hasher.hashOpenFile(fh, Number(entry.size));
    } finally {
      await fh.close();
    }
  }
}

class PosixFile implements SourceFile {
  readonly #fh: FileHandle;
  readonly #entry: SourceEntry;

  constructor(fh: FileHandle, entry: SourceEntry) {
    this.#fh = fh;
    this.#entry = entry;
  }

  read(views: Buffer[], position: number): Promise<void> {
    return readvFully(this.#fh, views, position);
  }

  async checkUnchanged(): Promise<void> {
    checkUnchanged(this.#entry, await this.#fh.stat({ bigint: true }));
  }

  close(): Promise<void> {
    return this.#fh.close();
  }
}

/**
 * A file of one piece, read with synchronous calls: open, read, fstat, close take a few
 * microseconds each on cached data, and the thread-pool round trip of each async call would cost ten
 * times that — which is what limits a tree of small files. One fstat after the read compares the file with
 * its listing: a file changed (or replaced) since, before or during the read, fails there.
 */
function readWholeSync(entry: SourceEntry, data: Buffer): void {
  const fd = openSync(entry.abs, READ_FLAGS);
  try {
    // Before the read: what was opened must be the file listed (a FIFO read fails, a device's has effects).
    checkSameFile(entry, fstatSync(fd));
    let filled = 0;
    while (filled < data.length) {
      const n = readSync(fd, data, filled, data.length - filled, filled);
      if (n === 0) throw new FcpError('FCP_ERR_FILE_CHANGED', undefined, { path: entry.rel });
      filled += n;
    }
    checkUnchangedLite(entry, fstatSync(fd));
  } finally {
    closeSync(fd);
  }
}

/**
 * checkUnchanged from a Stats of numbers: node builds a BigIntStats of 18 BigInts per call, the largest
 * allocation a small file cost its sender. Its mtimeMs resolves ~0.25 us near 2026, so the mtime is equal
 * within 1 us, the receiver's own tolerance (the quick check, PROTOCOL.md §6.2); file times come from the
 * kernel's coarse clock, so a write during the read moves them by a clock tick, not by a microsecond.
 */
function checkUnchangedLite(entry: SourceEntry, st: Stats): void {
  const delta = st.mtimeMs - Number(entry.mtimeNs) / 1e6;
  if (st.size !== Number(entry.size) || !(delta < MTIME_TOLERANCE_MS && delta > -MTIME_TOLERANCE_MS)) {
    throw new FcpError('FCP_ERR_FILE_CHANGED', undefined, { path: entry.rel });
  }
}

/** See checkUnchangedLite. */
const MTIME_TOLERANCE_MS = 0.001;

/**
 * The file opened is the one the walk listed: a regular file with the listing's device and inode. Another
 * inode means the path led elsewhere since (a directory above it swapped for a link); it is refused like a
 * changed file, before anything is read from it. Takes either kind of stat: the sync path's Stats of numbers
 * (see checkUnchangedLite) or the async paths' BigIntStats.
 */
function checkSameFile(entry: SourceEntry, st: Stats | BigIntStats): void {
  if (!st.isFile() || !sameInode(entry, st)) {
    throw new FcpError('FCP_ERR_FILE_CHANGED', undefined, { path: entry.rel });
  }
}

/** Compared in the stat's own type: a Stats holds an inode above 2^53 rounded, as Number(entry.ino) rounds it. */
function sameInode(entry: SourceEntry, st: Stats | BigIntStats): boolean {
  if (entry.ino === undefined) return true;
  if (entry.dev === undefined) return false; // the walk lists both or neither
  const inStatType = typeof st.ino === 'bigint' ? (n: bigint) => n : Number;
  return st.ino === inStatType(entry.ino) && st.dev === inStatType(entry.dev);
}

/** checkSameFile and checkUnchanged from one BigIntStats. */
function checkListed(entry: SourceEntry, st: BigIntStats): void {
  checkSameFile(entry, st);
  checkUnchanged(entry, st);
}

function checkUnchanged(entry: SourceEntry, st: { size: bigint; mtimeNs: bigint }): void {
  if (st.size !== entry.size || st.mtimeNs !== entry.mtimeNs) {
    throw new FcpError('FCP_ERR_FILE_CHANGED', undefined, { path: entry.rel });
  }
}
