/**
 * Where a sender's bytes come from: the storage seam on the sending side. The sender asks a Source to walk
 * its roots, to look at an entry again, to open and read a file piece by piece, and to hash a whole file;
 * it never touches a file system itself. POSIX (posix-source.ts) is today's only implementation; an object
 * store or a delta reader would be one more file beside it (spec/ARCHITECTURE.md checks both on paper).
 *
 * What only some sources can do is an optional capability in `features`, looked up once at run time rather
 * than assumed (rclone's fs/features.go): a caller falls back to the general path when it is absent.
 */
import type { FcpError } from '../../protocol/index.js';
import type { Hasher } from '../checksum.js';
import type { Selector } from '../select.js';
import type { SourceRoot } from './source-spec.js';
import type { EntryKind, WalkEntry } from './walk.js';

/**
 * One listed entry. `rel` is its wire path; `abs` is the source's own name for it (a path for POSIX, an
 * object key for a bucket), opaque to the sender. A link carries its target (`linkTarget`), read while
 * listing: on POSIX one readlink beside the lstat, in a listing that has the text already, nothing more.
 * size and mtimeNs are what the listing saw: every read is checked against them.
 */
export type SourceEntry = WalkEntry;

/** What a second look at an entry finds (the sender announces a damaged file again from it). */
export interface SourceEntryState {
  kind: EntryKind;
  /** st_mode & 0o7777. */
  mode: number;
  size: bigint;
  mtimeNs: bigint;
}

/** A file opened for reading; it was still as listed when open() returned it. */
export interface SourceFile {
  /**
   * Fills `views` back to back from byte `position`: one piece, or a run of consecutive pieces in one call
   * (POSIX: one preadv). Throws FCP_ERR_FILE_CHANGED when the file is shorter than listed.
   */
  read(views: Buffer[], position: number): Promise<void>;
  /** Throws FCP_ERR_FILE_CHANGED (with the entry's path) when size or mtime differ from the listing. */
  checkUnchanged(): Promise<void>;
  close(): Promise<void>;
}

/** Optional capabilities: absent means the sender takes the general path. */
export interface SourceFeatures {
  /**
   * Reads a whole one-piece file into `into` (exactly its listed size) synchronously and checks it is still
   * as listed; throws like read() and checkUnchanged(). The small-file fast path: without it, a one-piece
   * file is opened, read and checked like any other. A plain function: it is called without its source as
   * `this`.
   */
  readWholeSync?: (entry: SourceEntry, into: Buffer) => void;
}

export interface Source {
  readonly features: SourceFeatures;
  /**
   * The entries under `root` that `selector` keeps, in batches, a directory before its contents, in
   * byte order of names. Problems with single entries go to `onWarning` and the walk goes on; only an
   * unreadable root throws (fatal).
   */
  walk(
    root: SourceRoot,
    selector: Selector,
    onWarning: (err: FcpError) => void,
  ): AsyncIterable<SourceEntry[]>;
  /** The entry as it is now (never following a link). */
  restat(entry: SourceEntry): Promise<SourceEntryState>;
  /** Opens a file for reading; throws FCP_ERR_FILE_CHANGED when it is no longer as listed. */
  open(entry: SourceEntry): Promise<SourceFile>;
  /** The file's checksum (spec/PROTOCOL.md §4), read piece by piece: what --checksum announces. */
  hashWhole(entry: SourceEntry, hasher: Hasher): Promise<bigint>;
}
