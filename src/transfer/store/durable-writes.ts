/**
 * `--fsync` (README "The machine loses power", spec/PROTOCOL.md §6.3): what a PosixSink does on top of its
 * writes so that a session's files survive a power loss once the session reports success.
 *
 * Each file is fsync()ed on its temporary's descriptor after its mode and mtime are set and before its
 * rename (posix-file.ts calls syncFile): a rename that reaches the disk before the data would leave the
 * final name holding zeros, which a quick-check re-run would then skip. fsync rather than fdatasync: the
 * file is new, so fdatasync must write its inode anyway (size, extents) and would save only the timestamps,
 * which ride in the same journal commit; fsync also keeps the mode and mtime the quick check compares.
 *
 * Renames, links and directories made or changed are only entries (and inodes) of their directory: each
 * such directory is fsync()ed once, at the end of the session (syncDirs), after its last rename, rather
 * than once per file. A directory this session made is an entry of its parent, so the parent is synced
 * too, up to the first level that already existed.
 *
 * The piece index (`.fcp-meta`) is never synced: a resume re-reads and re-hashes every piece it records
 * (§7.1), so an index or a temporary that lost writes in a crash only costs those pieces again.
 */
import { constants as fsConstants, fsync } from 'node:fs';
import { promisify } from 'node:util';
import { type FileHandle, open } from 'node:fs/promises';
import { FcpError, toFcpError } from '../../protocol/index.js';
import type { ConfinedRoot } from './confined-root.js';
import { parentOf, ROOT_ENTRY, type SafePath } from '../wire-path.js';
import type { SinkFile } from './sink.js';

const fsyncOnPool = promisify(fsync);

/** Directory fsyncs in flight at once: the size of libuv's default thread pool. */
const DIR_SYNCS_AT_ONCE = 4;

export class DurableWrites {
  readonly #root: ConfinedRoot;
  /** Directories whose entries or metadata this session changed. */
  readonly #dirs = new Set<SafePath>();
  /** The directory the root itself was made in by this run (its entry is new there), if it was. */
  readonly #rootMadeIn: string | undefined;

  constructor(root: ConfinedRoot, rootMadeIn: string | undefined) {
    this.#root = root;
    this.#rootMadeIn = rootMadeIn;
  }

  /** A file's data and metadata on disk, before it is renamed under its final name. */
  syncFile(fh: FileHandle): Promise<void> {
    return fh.sync();
  }

  /** syncFile for a raw descriptor (the small-file path's), on the thread pool all the same. */
  syncFd(fd: number): Promise<void> {
    return fsyncOnPool(fd);
  }

  /** `rel` was renamed (or linked) into its directory: that directory is synced at the end. */
  placed(rel: SafePath): void {
    this.#dirs.add(parentOf(rel));
  }

  /** Directory `dir`'s own mode or mtime changed. */
  dirChanged(dir: SafePath): void {
    this.#dirs.add(dir);
  }

  /** fsync of every directory recorded, and of each parent of one this session made. Rejects on the first failure. */
  async syncDirs(): Promise<void> {
    const dirs = [...this.#withMadeParents()];
    this.#dirs.clear();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < dirs.length) await this.#syncDir(dirs[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(DIR_SYNCS_AT_ONCE, dirs.length) }, worker));
    // Outside the root, so not through it: the path this run resolved and made the root in (destination.ts).
    if (this.#rootMadeIn !== undefined && dirs.some((d) => d === ROOT_ENTRY)) {
      await syncOpened(
        open(this.#rootMadeIn, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY),
        this.#rootMadeIn,
      );
    }
  }

  #withMadeParents(): Set<SafePath> {
    const all = new Set<SafePath>();
    for (let dir of this.#dirs) {
      all.add(dir);
      // Bounded by the path's depth: each step drops one segment, and the root is never made here.
      while (dir !== ROOT_ENTRY && this.#root.madeEmpty(dir)) {
        dir = parentOf(dir);
        all.add(dir);
      }
    }
    return all;
  }

  #syncDir(dir: SafePath): Promise<void> {
    return syncOpened(this.#root.openFile(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY), dir);
  }
}

/**
 * fsync of the directory being opened, then close; an error names `shown` and says it was the directory's
 * sync: its files are all in place by then, and the destination's root shows as `.`.
 */
async function syncOpened(opening: Promise<FileHandle>, shown: string): Promise<void> {
  try {
    const fh = await opening;
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    const failed = toFcpError(err, shown);
    throw new FcpError(failed.code, `${failed.message} syncing the directory to disk`, {
      path: shown,
      fatal: failed.fatal,
      cause: err,
    });
  }
}

/**
 * `file` without its synchronous commit (commitNow): under --fsync every file is committed through the
 * asynchronous commit, so that its fsync runs on the thread pool, not the event loop. A one-piece file is
 * still written with writeNow (posix-file.ts then syncs that descriptor).
 */
export function withoutSyncCommit(file: SinkFile & Required<Pick<SinkFile, 'writeNow'>>): SinkFile {
  return {
    loadPartial: (pieceHash) => file.loadPartial(pieceHash),
    writePiece: (seq, data, hash) => file.writePiece(seq, data, hash),
    writeNow: (data) => file.writeNow(data),
    commit: () => file.commit(),
    discard: () => file.discard(),
    keepPartial: () => file.keepPartial(),
    letGo: () => file.letGo?.(),
  };
}
