/**
 * The sink of a dry run (fcp --dry-run, spec/PROTOCOL.md §5.6): every question a receiver asks to decide an
 * entry is answered from what is really there (inspect, hash, link target, a partial's verified pieces,
 * free space), and nothing is ever written. A directory that is missing is only remembered as one that
 * would be made, so what the list puts inside it reads as missing too; a destination that does not exist
 * yet is a sink with nothing in it.
 */
import { FcpError } from '../../protocol/index.js';
import { parentOf, ROOT_ENTRY, type SafePath } from '../wire-path.js';
import type { Hasher } from '../checksum.js';
import type { Sink, SinkEntry, SinkFile, SinkFileSpec } from './sink.js';
import { freeBytes } from './write-failures.js';

export class DryRunSink implements Sink {
  readonly features;
  /** What is there; undefined when the destination directory itself would be created. */
  readonly #inner: Sink | undefined;
  /** Directories that do not exist and would be made. */
  readonly #planned = new Set<SafePath>();
  /** Without `inner`: the existing directory the destination would be made in (its file system's space). */
  readonly #madeIn: string | undefined;

  constructor(inner: Sink | undefined, madeIn?: string) {
    this.#inner = inner;
    this.#madeIn = madeIn;
    this.features = { positionedWrites: false, resume: inner?.features.resume ?? false };
  }

  // Never ready: every decision takes the asynchronous way, which only reads.
  dirReady(): boolean {
    return false;
  }

  prepareDirNow(): boolean {
    return false;
  }

  /** Checks `dir` as the real sink would (a link or a file in the way fails alike), and makes nothing. */
  async prepareDir(dir: SafePath): Promise<void> {
    if (this.#missing(dir)) return;
    const st = await this.#inner?.inspect(dir);
    if (st === undefined) {
      this.#planned.add(dir);
      return;
    }
    if (st.isSymbolicLink())
      throw new FcpError('FCP_ERR_PATH_SYMLINK', `refusing to pass through a symbolic link: ${dir}`, {
        path: dir,
      });
    if (!st.isDirectory())
      throw new FcpError('FCP_ERR_PATH_TYPE', `exists and is not a directory: ${dir}`, { path: dir });
  }

  inspectNow(rel: SafePath): SinkEntry | undefined {
    return this.#missingParent(rel) ? undefined : this.#inner?.inspectNow(rel);
  }

  async inspect(rel: SafePath): Promise<SinkEntry | undefined> {
    return this.#missingParent(rel) ? undefined : this.#inner?.inspect(rel);
  }

  hashExisting(rel: SafePath, size: number, hasher: Hasher): Promise<bigint> {
    return this.#present().hashExisting(rel, size, hasher);
  }

  readLink(rel: SafePath): string {
    return this.#present().readLink(rel);
  }

  /**
   * The space a real run would find: in the nearest directory that exists. A destination that does not
   * exist asks the directory it would be made in, so a peer's invented size is refused here as in a real
   * run, before the receiver sizes anything by it.
   */
  freeBytes(dir: SafePath): number | undefined {
    if (this.#inner === undefined) return this.#madeIn === undefined ? undefined : freeBytes(this.#madeIn);
    return this.#inner.freeBytes(this.#missing(dir) ? (ROOT_ENTRY as SafePath) : dir);
  }

  workNames(rel: SafePath, pieces: number): readonly SafePath[] {
    return this.#inner?.workNames(rel, pieces) ?? [];
  }

  /** A file that reads its partial (what a resume would keep) and refuses every write. */
  openFile(rel: SafePath, spec: SinkFileSpec, workNames: readonly SafePath[]): SinkFile {
    const inner = this.#missingParent(rel) ? undefined : this.#inner?.openFile(rel, spec, workNames);
    return {
      loadPartial: async (pieceHash) => {
        if (inner === undefined) return new Map();
        try {
          return await inner.loadPartial(pieceHash);
        } finally {
          // Read, never written: the names go back at once for the real run (partial-claims.ts).
          inner.letGo?.();
        }
      },
      writePiece: () => Promise.reject(wouldWrite(rel)),
      commit: () => Promise.reject(wouldWrite(rel)),
      // Nothing was stored, and a real partial from an earlier run is not ours to remove.
      discard: () => Promise.resolve(),
      keepPartial: () => true,
    };
  }

  placeSymlink(): void {}

  setDirMeta(): void {}

  release(): void {
    this.#inner?.release();
  }

  sessionEndingFailure(
    err: FcpError,
    wirePath: string,
    dir: SafePath,
    needed: number | undefined,
  ): FcpError | undefined {
    return this.#inner?.sessionEndingFailure(err, wirePath, dir, needed);
  }

  /** `dir` or a level above it would be made: it does not exist. */
  #missing(dir: SafePath): boolean {
    if (this.#inner === undefined) return true;
    for (let d = dir; d !== ROOT_ENTRY; d = parentOf(d)) if (this.#planned.has(d)) return true;
    return false;
  }

  #missingParent(rel: SafePath): boolean {
    return rel !== ROOT_ENTRY && this.#missing(parentOf(rel));
  }

  /** The real sink, for questions only asked of what inspect() found. */
  #present(): Sink {
    if (this.#inner === undefined)
      throw new FcpError('FCP_ERR_INTERNAL', 'a dry run asked about a file in a missing destination');
    return this.#inner;
  }
}

function wouldWrite(rel: SafePath): FcpError {
  return new FcpError('FCP_ERR_INTERNAL', 'a dry run writes nothing', { path: rel });
}
