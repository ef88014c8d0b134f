/**
 * The Sink of a directory tree on this machine: every path confined to the destination root
 * (confined-root.ts), files received as PosixSinkFile (temporary, positioned writes, piece index, rename),
 * links and directory metadata set with synchronous calls, and the errors of a destination that can take
 * nothing more (write-failures.ts).
 */
import { constants as fsConstants, lutimesSync, readlinkSync, renameSync, symlinkSync } from 'node:fs';
import type { FcpError } from '../../protocol/index.js';
import type { Hasher } from '../checksum.js';
import type { ConfinedRoot } from './confined-root.js';
import { sidecarNameFor, tempNameFor } from './temp-names.js';
import { processUmask } from './umask.js';
import { parentOf, type SafePath } from '../wire-path.js';
import { freeBytes, sessionWriteFailure, unwritableDestination } from './write-failures.js';
import { DurableWrites, withoutSyncCommit } from './durable-writes.js';
import { type PosixFileContext, PosixSinkFile } from './posix-file.js';
import { nsToSeconds, storedTimeNs, unlinkQuietSync } from './posix-io.js';
import type { Sink, SinkEntry, SinkFeatures, SinkFile, SinkFileSpec } from './sink.js';

const FEATURES: SinkFeatures = { positionedWrites: true, resume: true };

export interface PosixSinkOptions {
  /** True once the session is over (a temporary is then never reopened). */
  sessionOver: () => boolean;
  /** Told about every partial file kept for resume when the session fails (the daemon sweeps stale ones). */
  onPartialKept?: (tempAbs: string, sidecarAbs: string) => void;
  /** --fsync: every file and every changed directory on disk before the session reports success. */
  fsync?: boolean;
  /** The directory `root` was made in by this run, if it was: synced with the rest under `fsync`. */
  rootMadeIn?: string | undefined;
}

export class PosixSink implements Sink {
  readonly features = FEATURES;
  readonly #root: ConfinedRoot;
  readonly #files: PosixFileContext;
  readonly #durable: DurableWrites | undefined;

  constructor(root: ConfinedRoot, opts: PosixSinkOptions) {
    this.#root = root;
    this.#durable = opts.fsync === true ? new DurableWrites(root, opts.rootMadeIn) : undefined;
    this.#files = {
      root,
      umask: processUmask(),
      sessionOver: opts.sessionOver,
      onPartialKept: opts.onPartialKept,
      durable: this.#durable,
    };
  }

  dirReady(dir: SafePath): boolean {
    return this.#root.isReadyDir(dir);
  }

  prepareDirNow(dir: SafePath): boolean {
    return this.#root.ensureDirNow(dir);
  }

  prepareDir(dir: SafePath): Promise<void> {
    return this.#root.ensureDirChecked(dir);
  }

  inspectNow(rel: SafePath): SinkEntry | undefined {
    // In a directory this session made, the path is free: the directory was empty and each path is
    // reserved once. That spares an lstat per file of a first copy (a tenth of the daemon's CPU per small
    // file). Should another process put something there meanwhile, the rename replaces a file as it
    // would have anyway, and fails on a directory.
    return this.#root.madeEmpty(parentOf(rel)) ? undefined : this.#root.inspectInReadyDir(rel);
  }

  inspect(rel: SafePath): Promise<SinkEntry | undefined> {
    return this.#root.inspectChecked(rel);
  }

  async hashExisting(rel: SafePath, size: number, hasher: Hasher): Promise<bigint> {
    // O_NONBLOCK: a FIFO swapped in since the lstat must not hang the open (a read of it then fails).
    const fh = await this.#root.openFile(rel, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    try {
      return await hasher.hashOpenFile(fh, size);
    } finally {
      await fh.close();
    }
  }

  readLink(rel: SafePath): string {
    return this.#root.withPath(rel, (abs) => readlinkSync(abs));
  }

  freeBytes(dir: SafePath): number | undefined {
    return freeBytes(this.#root.resolveChecked(dir));
  }

  workNames(rel: SafePath, pieces: number): readonly SafePath[] {
    return pieces > 1 ? [tempNameFor(rel), sidecarNameFor(rel)] : [tempNameFor(rel)];
  }

  openFile(rel: SafePath, spec: SinkFileSpec, workNames: readonly SafePath[]): SinkFile {
    const file = new PosixSinkFile(this.#files, rel, spec, workNames);
    // The synchronous path cannot fsync without blocking the event loop (durable-writes.ts).
    return this.#durable === undefined ? file : withoutSyncCommit(file);
  }

  /** Links are recreated with their target text unchanged, never followed (spec/SECURITY.md). */
  placeSymlink(rel: SafePath, target: string, mtimeNs: bigint): void {
    const root = this.#root;
    root.withPath(tempNameFor(rel), (tempAbs) =>
      root.withPath(rel, (abs) => {
        symlinkOver(target, tempAbs);
        try {
          const t = nsToSeconds(mtimeNs);
          lutimesSync(tempAbs, t, t);
          renameSync(tempAbs, abs);
        } catch (err) {
          unlinkQuietSync(tempAbs);
          throw err;
        }
      }),
    );
    root.forget(rel);
    this.#durable?.placed(rel);
  }

  release(): void {
    this.#root.release();
  }

  setDirMeta(dir: SafePath, mode: number, mtimeNs: bigint): void {
    const t = nsToSeconds(mtimeNs);
    if (this.#root.setDirMetaSync(dir, mode, t, storedTimeNs(t))) this.#durable?.dirChanged(dir);
  }

  /** --fsync: the directories whose entries or metadata changed, on disk (durable-writes.ts). */
  flush(): Promise<void> {
    return this.#durable?.syncDirs() ?? Promise.resolve();
  }

  sessionEndingFailure(
    err: FcpError,
    wirePath: string,
    dir: SafePath,
    needed: number | undefined,
  ): FcpError | undefined {
    return (
      sessionWriteFailure(err, wirePath, this.#root.resolveChecked(dir), needed) ??
      unwritableDestination(err, this.#root)
    );
  }
}

/**
 * symlink(), replacing a temporary left by an earlier run. Tried first and unlinked only on EEXIST: an
 * unlink of a name that is not there throws an ENOENT error that costs ten times the link itself.
 */
function symlinkOver(target: string, abs: string): void {
  try {
    symlinkSync(target, abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    unlinkQuietSync(abs);
    symlinkSync(target, abs);
  }
}
