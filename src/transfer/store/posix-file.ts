/**
 * One file received into a POSIX directory tree: a temporary file beside the final name, written at each
 * piece's offset (piece-writer.ts), with a piece index beside it for files of more than one piece (§7.1);
 * committed by mode and mtime through the descriptor, then rename() over the final name (STYLE rule 9).
 * Until then the previous version is untouched. Files of one piece (or none) take a synchronous path.
 */
import { closeSync, fchmodSync, constants as fsConstants, futimesSync, renameSync, writeSync } from 'node:fs';
import { type FileHandle, rename } from 'node:fs/promises';
import { FcpError, keepShape } from '../../protocol/index.js';
import type { ConfinedRoot } from './confined-root.js';
import type { DurableWrites } from './durable-writes.js';
import { type PartialIdentity, PieceIndex } from './piece-index.js';
import { openFresh, openFreshSync } from './fresh-file.js';
import { verifyKeptPieces } from './kept-pieces.js';
import { claimPartial, type PartialClaim } from './partial-claims.js';
import { PieceWriter } from './piece-writer.js';
import type { SafePath } from '../wire-path.js';
import { nsToSeconds, unlinkQuiet, unlinkQuietSync } from './posix-io.js';
import type { SinkFile, SinkFileSpec } from './sink.js';
import { privateTempNameFor } from './temp-names.js';

/** Set-id and sticky bits: open() may drop them, so a mode with any of them is always set with fchmod. */
const SPECIAL_MODE_BITS = 0o7000;

/**
 * A link where the temporary goes: what a run killed while placing a link of that name leaves, or a local
 * user's plant. The name is the receiver's (a file found there is truncated and taken over just the same),
 * so the link itself is removed (unlink never follows it) and the temporary created afresh with O_EXCL;
 * refusing it failed that file on every later run.
 */

/** What every file of one PosixSink shares. */
export interface PosixFileContext {
  readonly root: ConfinedRoot;
  /** Read once per session: a new file whose mode it leaves whole is created with that mode. */
  readonly umask: number | undefined;
  /** True once the session is over: a temporary is then never (re)opened, which would truncate a partial. */
  readonly sessionOver: () => boolean;
  readonly onPartialKept: ((tempAbs: string, sidecarAbs: string) => void) | undefined;
  /** --fsync: each file synced before its rename, its directory at the end (durable-writes.ts). */
  readonly durable: DurableWrites | undefined;
}

export class PosixSinkFile implements SinkFile {
  readonly #ctx: PosixFileContext;
  readonly #spec: SinkFileSpec;
  readonly #rel: SafePath;
  #tempRel: SafePath;
  /**
   * The piece index's name: files of more than one piece only (§7.1), and only while this file may hold the
   * shared names (#claim); a file that writes a private temporary keeps no index.
   */
  #sidecarRel: SafePath | undefined;
  /** Multi-piece files: this session's hold on the shared names (partial-claims.ts), from loadPartial on. */
  #claim: PartialClaim | undefined;
  /** Discarded or kept: a claim that lands afterwards is let go at once. */
  #finished = false;
  /** Pieces kept from an interrupted run (verified); resuming opens the temp without truncating. */
  #resumed = false;
  #handle: Promise<FileHandle> | undefined;
  /** The temporary file's descriptor on the synchronous small-file path (one piece or none). */
  #fd: number | undefined;
  /** The small-file path created the temporary with its final mode (see #openSmallTemp). */
  #modeAtCreate = false;
  #index: Promise<PieceIndex> | undefined;
  /** Multi-piece files: serializes and coalesces the writes to the temporary file. */
  #writer: PieceWriter | undefined;

  /** `workNames` come from PosixSink.workNames: the temporary, then the piece index when there is one. */
  constructor(ctx: PosixFileContext, rel: SafePath, spec: SinkFileSpec, workNames: readonly SafePath[]) {
    this.#ctx = ctx;
    this.#spec = spec;
    this.#rel = rel;
    this.#tempRel = workNames[0]!;
    this.#sidecarRel = workNames[1];
  }

  get #identity(): PartialIdentity {
    return { size: this.#spec.wireSize, mtimeNs: this.#spec.mtimeNs, pieces: this.#spec.pieces };
  }

  /**
   * Looks for a partial file left by an interrupted run of this same source file (size and mtime recorded
   * in its piece index). Every recorded piece is re-read and re-hashed: only pieces whose bytes on disk
   * still match are kept; a torn or tampered piece is simply sent again.
   */
  async loadPartial(pieceHash: (data: Uint8Array) => bigint): Promise<Map<number, bigint>> {
    if (this.#sidecarRel === undefined || !(await this.#claimNames())) return new Map();
    try {
      const kept = await this.#loadClaimed(pieceHash);
      // The session ended meanwhile: this file, not started yet, will be neither written, kept nor discarded.
      if (this.#ctx.sessionOver()) this.letGo();
      return kept;
    } catch (err) {
      this.#releaseClaim();
      throw err;
    }
  }

  /**
   * Claims the shared temporary and index names for this session; when another live session holds them,
   * this file switches to a private temporary without index (never resumed, never kept) and returns false.
   */
  async #claimNames(): Promise<boolean> {
    const claim = await claimPartial(this.#ctx.root.resolveChecked(this.#tempRel));
    if (claim === undefined) {
      this.#usePrivateTemp();
      return false;
    }
    if (this.#finished || this.#sidecarRel === undefined) {
      claim.release();
      return false;
    }
    this.#claim = claim;
    return true;
  }

  #usePrivateTemp(): void {
    this.#tempRel = privateTempNameFor(this.#rel);
    this.#sidecarRel = undefined;
  }

  letGo(): void {
    this.#finished = true;
    this.#releaseClaim();
  }

  #releaseClaim(): void {
    const claim = this.#claim;
    this.#claim = undefined;
    claim?.release();
  }

  async #loadClaimed(pieceHash: (data: Uint8Array) => bigint): Promise<Map<number, bigint>> {
    if (this.#sidecarRel === undefined) return new Map();
    const root = this.#ctx.root;
    // No index, or one we cannot read or trust: start the file over, as with no partial at all. A real
    // problem with the directory surfaces when the temp file is created.
    const recorded = await PieceIndex.load(root, this.#sidecarRel, this.#identity).catch(() => undefined);
    if (recorded === undefined || recorded.size === 0) return new Map();
    const kept = await verifyKeptPieces(root, this.#tempRel, this.#spec.size, recorded, pieceHash);
    if (kept.size > 0) this.#resumed = true;
    return kept;
  }

  /**
   * A one-piece file is written with synchronous calls (open, write; later fchmod, futimes, close, rename):
   * microseconds each, where every async call would add a thread-pool round trip ten times that — the
   * difference between hundreds and thousands of small files a second.
   */
  writeNow(data: Buffer): void {
    this.#fd ??= this.#openSmallTemp();
    let written = 0;
    while (written < data.length)
      written += writeSync(this.#fd, data, written, data.length - written, written);
  }

  commitNow(): void {
    // Never (re)open once the session is over: the temporary may be gone, or hold a torn write.
    if (this.#fd === undefined && this.#ctx.sessionOver()) throw new FcpError('FCP_ERR_SESSION_ABORTED');
    this.#fd ??= this.#openSmallTemp();
    if (!this.#modeAtCreate) fchmodSync(this.#fd, this.#spec.mode);
    futimesSync(this.#fd, Date.now() / 1000, nsToSeconds(this.#spec.mtimeNs));
    const fd = this.#fd;
    this.#fd = undefined;
    closeSync(fd);
    this.#renameIntoPlace();
  }

  /** The closed temporary onto its name; if that fails, the temporary is removed and the error thrown. */
  #renameIntoPlace(): void {
    const root = this.#ctx.root;
    try {
      root.withPath(this.#tempRel, (temp) => root.withPath(this.#rel, (abs) => renameSync(temp, abs)));
    } catch (err) {
      // The whole file, finished, would stay under its temporary name: discard() no longer knows of it
      // (the descriptor is closed), and no record lets a sweep find it.
      unlinkTempSync(root, this.#tempRel);
      throw err;
    }
  }

  /**
   * The temporary file of a one-piece file. When the umask leaves its mode as it is (0644 or 0755 under the
   * usual 022), open() creates it with its final mode and the commit needs no fchmod. That needs a new
   * file (O_EXCL): a temporary left by an earlier run keeps its own mode, so it is truncated, 0600 as ever,
   * and the commit sets the mode.
   */
  #openSmallTemp(): number {
    const mode = this.#spec.mode;
    const { root, umask } = this.#ctx;
    if (umask !== undefined && (mode & (umask | SPECIAL_MODE_BITS)) === 0) {
      try {
        const fd = root.openFileSync(
          this.#tempRel,
          fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL,
          mode,
        );
        this.#modeAtCreate = true;
        return fd;
      } catch (err) {
        if ((err as FcpError).code !== 'EEXIST') throw err;
      }
    }
    return openFreshSync(root, this.#tempRel, fsConstants.O_WRONLY, 0o600);
  }

  writePiece(seq: number, data: Buffer, hash: bigint): Promise<void> {
    this.#writer ??= new PieceWriter({
      // Never (re)open once the session is over: that would truncate a partial kept for resume.
      open: () =>
        this.#ctx.sessionOver() ? Promise.reject(new FcpError('FCP_ERR_SESSION_ABORTED')) : this.#openTemp(),
      index: () => this.#index,
    });
    return this.#writer.write(seq, data, hash);
  }

  /** The temporary file, created on the first piece (truncated unless pieces were kept for a resume). */
  #openTemp(): Promise<FileHandle> {
    if (this.#handle !== undefined) return this.#handle;
    // The shared names are touched only under a claim (loadPartial makes it): without one, a private name.
    if (this.#sidecarRel !== undefined && this.#claim === undefined) this.#usePrivateTemp();
    const root = this.#ctx.root;
    // A resumed temporary must be the one whose pieces were verified: one that vanished or was replaced
    // by a link since is never made afresh (its kept pieces would be committed as zeros). The file fails
    // and the next run starts it over.
    if (this.#resumed) {
      this.#handle = root.openFile(this.#tempRel, fsConstants.O_WRONLY);
    } else {
      this.#handle = this.#openFreshTemp();
    }
    if (this.#sidecarRel !== undefined) {
      this.#index = this.#resumed
        ? PieceIndex.reopen(root, this.#sidecarRel)
        : PieceIndex.create(root, this.#sidecarRel, this.#identity);
      // Not lost: the piece writer awaits the index before its first record and fails the file with this
      // error; the catch only keeps a failure that comes before then from being an unhandled rejection.
      this.#index.catch(() => {});
    }
    return this.#handle;
  }

  /** A new temporary, replacing whatever an earlier run (or anyone) left at its name (fresh-file.ts). */
  #openFreshTemp(): Promise<FileHandle> {
    return openFresh(this.#ctx.root, this.#tempRel, fsConstants.O_WRONLY, 0o600);
  }

  /**
   * Metadata through the descriptor, then the atomic rename (STYLE rule 9); under --fsync the data and
   * metadata are on disk before the rename, and a failed fsync fails the file, never renamed.
   */
  async commit(): Promise<void> {
    const durable = this.#ctx.durable;
    if (this.#fd !== undefined && durable !== undefined) return this.#commitWrittenNow(this.#fd, durable);
    const fh = await this.#openTemp();
    try {
      await fh.chmod(this.#spec.mode);
      await fh.utimes(Date.now() / 1000, nsToSeconds(this.#spec.mtimeNs));
      if (durable !== undefined) await durable.syncFile(fh);
    } catch (err) {
      // Closed here: once the session is over nobody else will (the receiver's failure path then does
      // nothing). The handle stays named so that discard() still knows it has a temporary to remove.
      await fh.close().catch(() => {}); // the chmod/utimes/fsync error is the one to report
      throw err;
    }
    this.#handle = undefined;
    await fh.close();
    // The index goes first: a crash between the two leaves a partial without index (started over next
    // time), never a finished file with a stray .fcp-meta beside it.
    await this.#removeIndex();
    const root = this.#ctx.root;
    try {
      await root.withPathAsync(this.#tempRel, (temp) =>
        root.withPathAsync(this.#rel, (abs) => rename(temp, abs)),
      );
    } catch (err) {
      // As in commitNow(): neither a handle nor an index is left for discard() or a sweep to find it by.
      await root.withPathAsync(this.#tempRel, unlinkQuiet).catch(() => {});
      throw err;
    } finally {
      // Held until the temporary is renamed: another session taking the names earlier would replace it.
      this.#releaseClaim();
    }
    durable?.placed(this.#rel);
  }

  /**
   * --fsync, a one-piece file written by writeNow: as commitNow, but the fsync goes to the thread pool (one
   * round trip, where the asynchronous path takes one per call). A discard meanwhile (the session ended)
   * closes the descriptor and removes the temporary: nothing is then closed twice nor renamed.
   */
  async #commitWrittenNow(fd: number, durable: DurableWrites): Promise<void> {
    if (!this.#modeAtCreate) fchmodSync(fd, this.#spec.mode);
    futimesSync(fd, Date.now() / 1000, nsToSeconds(this.#spec.mtimeNs));
    await durable.syncFd(fd);
    if (this.#fd !== fd) throw new FcpError('FCP_ERR_SESSION_ABORTED', 'file closed');
    this.#fd = undefined;
    closeSync(fd);
    this.#renameIntoPlace();
    durable.placed(this.#rel);
  }

  discard(): Promise<void> {
    this.#writer?.stop(new FcpError('FCP_ERR_SESSION_ABORTED', 'file closed'));
    const handle = this.#handle;
    const index = this.#index;
    const hadFd = this.#fd !== undefined;
    const claim = this.#claim;
    this.#claim = undefined;
    this.#finished = true;
    this.#handle = undefined;
    this.#index = undefined;
    if (this.#fd !== undefined) {
      closeSync(this.#fd);
      this.#fd = undefined;
    }
    const root = this.#ctx.root;
    const resumed = this.#resumed;
    const tempRel = this.#tempRel;
    const sidecarRel = this.#sidecarRel;
    // Best effort, in the background (callers go on at once): the file already failed and that error is
    // reported; a handle whose open failed has nothing to close; unlinkQuiet already passes a temp file
    // that is gone, and any other unlink error would only restate the failure.
    return (async () => {
      await handle?.then((fh) => fh.close()).catch(() => {});
      await index?.then((ix) => ix.close()).catch(() => {});
      if (handle !== undefined || hadFd || resumed) {
        await root.withPathAsync(tempRel, unlinkQuiet).catch(() => {});
      }
      if (sidecarRel !== undefined && (index !== undefined || resumed)) {
        await root.withPathAsync(sidecarRel, unlinkQuiet).catch(() => {});
      }
      claim?.release();
    })();
  }

  /**
   * A partial worth resuming (a multi-piece file with an index written or pieces kept) keeps its temporary
   * file and piece index; the daemon is told, to sweep stale ones.
   */
  keepPartial(): boolean {
    // A resumed file keeps its verified pieces even if this session wrote nothing new before dying.
    if (this.#sidecarRel === undefined || (this.#index === undefined && !this.#resumed)) return false;
    this.#writer?.stop(new FcpError('FCP_ERR_SESSION_ABORTED', 'session ended'));
    const handle = this.#handle;
    const index = this.#index;
    const claim = this.#claim;
    this.#claim = undefined;
    this.#finished = true;
    this.#handle = undefined;
    this.#index = undefined;
    // The data and records already written stay on disk for the resume, whatever close says; a handle whose
    // open failed failed the file already. The next session may take the names once both are closed.
    void Promise.all([
      handle?.then((fh) => fh.close()).catch(() => {}),
      index?.then((ix) => ix.close()).catch(() => {}),
    ]).then(() => claim?.release());
    const root = this.#ctx.root;
    this.#ctx.onPartialKept?.(root.resolveChecked(this.#tempRel), root.resolveChecked(this.#sidecarRel));
    return true;
  }

  async #removeIndex(): Promise<void> {
    const index = this.#index;
    this.#index = undefined;
    if (this.#sidecarRel === undefined || (index === undefined && !this.#resumed)) return;
    // Best effort: the file itself is complete and about to be renamed into place; an index that cannot be
    // closed or removed must not fail it (a stale one is ignored: load() checks size and mtime).
    await index?.then((ix) => ix.close()).catch(() => {});
    await this.#ctx.root.withPathAsync(this.#sidecarRel, unlinkQuiet).catch(() => {});
  }
}

/** Best effort: the rename's error is the one to report. */
function unlinkTempSync(root: ConfinedRoot, rel: SafePath): void {
  try {
    root.withPath(rel, unlinkQuietSync);
  } catch {
    // nothing more to do: the file already failed
  }
}

/**
 * Every PosixSinkFile lives as long as one file of one session: one held for good keeps V8's code for the
 * receive path (protocol/kept-shapes.ts). It is never used: nothing in its context can reach a file system.
 */
const SHAPE_ONLY: PosixFileContext = {
  // Never read: the sample is neither written nor committed.
  root: undefined as unknown as ConfinedRoot,
  umask: undefined,
  sessionOver: () => true,
  onPartialKept: undefined,
  durable: undefined,
};
keepShape(
  new PosixSinkFile(
    SHAPE_ONLY,
    '' as SafePath,
    { wirePath: '', wireSize: 0n, size: 0, pieces: 0, mode: 0, mtimeNs: 0n },
    ['' as SafePath],
  ),
);
