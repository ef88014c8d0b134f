/**
 * The storage seam of the receiving side: what the receiver asks of the place its bytes go. The receiver
 * decides (skip, need, resume), assembles pieces, verifies them and answers the sender; a Sink only stores.
 *
 * One contract, several implementations beside it (STYLE.md rule 13-14): posix-sink.ts writes a directory
 * tree (temporary file, positioned writes, piece index, fchmod/futimes on the descriptor, rename); an
 * object-store sink would group pieces into multipart parts and commit by completing the upload; a delta
 * sink would copy unchanged ranges from the old version. What only some of them can do is a capability
 * (`SinkFeatures`, or an optional method such as `SinkFile.writeNow`), discovered at run time rather than
 * assumed, as rclone's fs/features.go does.
 *
 * Paths are wire paths already checked (SafePath) and mapped onto the destination; `.` is its root. A Sink
 * reports a missing or odd entry as FcpError (FCP_ERR_PATH_*, or an errno code passed through).
 */
import type { FcpError } from '../../protocol/index.js';
import type { Hasher } from '../checksum.js';
import type { SafePath } from '../wire-path.js';

/** What a sink may or may not do, asked at run time (rclone's fs/features.go). */
export interface SinkFeatures {
  /**
   * A file's pieces may be written at any offset, in any order, as they arrive. Without it a sink buffers
   * or groups them itself (an object store's multipart parts).
   */
  readonly positionedWrites: boolean;
  /**
   * Verified pieces outlive a failed session (loadPartial finds them, keepPartial keeps them), so the same
   * command run again resumes them (spec/PROTOCOL.md §7).
   */
  readonly resume: boolean;
}

/** What exists at a destination path: the subset of a BigIntStats the skip decisions read. */
export interface SinkEntry {
  readonly size: bigint;
  readonly mtimeNs: bigint;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/** The announced file a SinkFile receives. */
export interface SinkFileSpec {
  /** The path as the sender named it: what errors show. */
  readonly wirePath: string;
  /** The announced size (the partial's identity) and the same as a number (already bounded). */
  readonly wireSize: bigint;
  readonly size: number;
  readonly pieces: number;
  /** Permission bits to apply, already masked by the receiver (no set-id). */
  readonly mode: number;
  readonly mtimeNs: bigint;
}

export interface Sink {
  readonly features: SinkFeatures;

  /** True when `dir` and every level above it are known to be directories: the synchronous calls may be used. */
  dirReady(dir: SafePath): boolean;
  /**
   * Makes or verifies directory `dir` at once when its parent is ready: true when done, false (having done
   * nothing) when it must be awaited through prepareDir. Throws as prepareDir rejects.
   */
  prepareDirNow(dir: SafePath): boolean;
  /** Makes every level of `dir` exist as a directory. */
  prepareDir(dir: SafePath): Promise<void>;

  /** What exists at `rel`, whose parent is dirReady, without waiting (the small-file path). */
  inspectNow(rel: SafePath): SinkEntry | undefined;
  /** What exists at `rel`; undefined when it or a parent level is missing. Creates nothing. */
  inspect(rel: SafePath): Promise<SinkEntry | undefined>;
  /** --checksum: the hash of the existing file at `rel`, `size` bytes long. */
  hashExisting(rel: SafePath, size: number, hasher: Hasher): Promise<bigint>;
  /** The target of the existing link at `rel` (the skip check of a link). */
  readLink(rel: SafePath): string;
  /** Bytes that may still be stored under `dir`; undefined when the sink cannot tell. */
  freeBytes(dir: SafePath): number | undefined;

  /**
   * The paths beside `rel` this sink writes while an entry of `pieces` pieces is in progress (a link counts
   * as one piece): the receiver reserves them so that no other entry may use them meanwhile.
   */
  workNames(rel: SafePath, pieces: number): readonly SafePath[];
  /** A file to receive at `rel`. No side effect until its first write or load; `workNames` are its own. */
  openFile(rel: SafePath, spec: SinkFileSpec, workNames: readonly SafePath[]): SinkFile;
  /** Replaces whatever is at `rel` with a link to `target` (never followed), with that mtime. Synchronous. */
  placeSymlink(rel: SafePath, target: string, mtimeNs: bigint): void;
  /** Sets a directory's mode and mtime, after everything inside it is in place. Synchronous. */
  setDirMeta(dir: SafePath, mode: number, mtimeNs: bigint): void;
  /**
   * The session is over: lets go of what the sink holds open (directories under a daemon's --root). A
   * call after it (a file's background discard) still works, opening what it needs for itself.
   */
  release(): void;
  /**
   * Optional capability: makes what the session stored survive a power loss, when the sink was asked to
   * (--fsync; on POSIX the directories whose entries changed). Called once, after the last commit and the
   * directory metadata, before the session reports success; a rejection fails the session.
   */
  flush?(): Promise<void>;

  /**
   * The session-ending form of a storage failure that no later file can escape (no space, read-only, a
   * destination that refuses every write), or undefined for a per-file failure. `dir` is where the entry
   * was going, `needed` the bytes it still had to store.
   */
  sessionEndingFailure(
    err: FcpError,
    wirePath: string,
    dir: SafePath,
    needed: number | undefined,
  ): FcpError | undefined;
}

/** One file being received. The receiver calls commit only after every piece is written and verified. */
export interface SinkFile {
  /**
   * Pieces kept from an interrupted run of this same source file whose stored bytes still hash as recorded
   * (seq -> piece hash); empty when there is none or the sink cannot resume. Hashed with `pieceHash`. A
   * sink that resumes is asked this before the file's first write: it is where the file claims its
   * partial's names against other live sessions (spec/PROTOCOL.md §7.1, "Overlapping sessions").
   */
  loadPartial(pieceHash: (data: Uint8Array) => bigint): Promise<Map<number, bigint>>;
  /** Stores piece `seq` (hash already checked by the receiver); `data` stays untouched until it settles. */
  writePiece(seq: number, data: Buffer, hash: bigint): Promise<void>;
  /** Mode and mtime applied, then the file is put in place atomically: the previous version until then. */
  commit(): Promise<void>;
  /**
   * Gives up: whatever was stored for this file is removed; the previous version stays untouched. At once,
   * as far as callers go: the promise (which never rejects) says when the removal is done, for a process
   * about to exit (fcp cancel --discard).
   */
  discard(): Promise<void>;
  /**
   * The session died: keeps what was stored for a later resume and returns true, or returns false (having
   * done nothing) when there is nothing worth keeping; the caller then discards.
   */
  keepPartial(): boolean;

  /**
   * Optional capability: lets go of the partial's names loadPartial claimed, storing and removing nothing:
   * the file will not be written (a dry run only reads what a resume would keep).
   */
  letGo?(): void;

  /**
   * Optional capability: a file of one piece (or none) stored with synchronous calls, microseconds each
   * where an asynchronous one costs a thread-pool round trip. commitNow is present only with writeNow; a
   * file written by writeNow without commitNow is committed by commit() (--fsync: posix-file.ts).
   */
  writeNow?(data: Buffer): void;
  commitNow?(): void;
}
