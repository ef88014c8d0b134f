/**
 * How the partial sweep reaches a kept partial's directory: from the served root down, one level at a time,
 * never through a link. The record names the root and the path below it; a local user who can write inside
 * the root may since have swapped a directory on that path for a link to somewhere else, and a sweep by
 * path would then read the age of, and delete, `.X.fcp-part` files out there (spec/SECURITY.md §11, "The
 * partial sweep").
 *
 * On Linux every level is held open and the next one opened relative to it without following a link
 * (pinned-dir.ts, as the pull walk does): the directory reached is the one below the root, whatever
 * happens to the paths meanwhile. Elsewhere each level is lstat'ed and a link refused, by path (§12).
 */
import { type BigIntStats, lstatSync, unlinkSync } from 'node:fs';
import { FcpError, toFcpError } from '../protocol/errors.js';
import { type PinnedDir, pinDir, unpinDir } from '../transfer/store/pinned-dir.js';

/** A file as the sweep saw it through its held directory. */
export interface SeenFile {
  /** `dev:ino`, compared with the one recorded when the partial was kept. */
  readonly id: string;
  readonly mtimeMs: number;
}

/** The directory `dirRel` under `root` (`''` for the root itself), held while it is looked into. */
export class SweptDir {
  readonly #dir: PinnedDir;

  private constructor(dir: PinnedDir) {
    this.#dir = dir;
  }

  /**
   * Opens `root` (as the operator named it: a link there is the operator's choice) and then each level of
   * `dirRel` without following a link. Throws FCP_ERR_PATH_SYMLINK naming the level that is a link, or the
   * fs error of one that is gone or not a directory.
   */
  static open(root: string, dirRel: string): SweptDir {
    let dir = pinDir(root, '.', undefined, { hold: true, follow: true });
    try {
      const names = dirRel === '' ? [] : dirRel.split('/');
      for (let i = 0; i < names.length; i++) {
        const next = openLevel(dir, names[i]!, names.slice(0, i + 1).join('/'));
        unpinDir(dir);
        dir = next;
      }
    } catch (err) {
      unpinDir(dir);
      throw err;
    }
    return new SweptDir(dir);
  }

  /** A plain file's identity and mtime; undefined when `name` is missing or is not a plain file. */
  look(name: string): SeenFile | undefined {
    let st: BigIntStats;
    try {
      st = lstatSync(`${this.#dir.via}/${name}`, { bigint: true });
    } catch {
      return undefined;
    }
    if (!st.isFile()) return undefined;
    return { id: fileId(st), mtimeMs: Number(st.mtimeMs) };
  }

  /** Unlinks `name` in this directory (unlink never follows a link at the last component). */
  remove(name: string): void {
    try {
      unlinkSync(`${this.#dir.via}/${name}`);
    } catch {
      // gone already
    }
  }

  close(): void {
    unpinDir(this.#dir);
  }
}

/** The id a record keeps for a file: device and inode, as text (JSON has no 64-bit integers). */
export function fileId(st: BigIntStats): string {
  return `${st.dev}:${st.ino}`;
}

/** One level below `parent`: lstat'ed through it (a link refused), then held, checked to be what was lstat'ed. */
function openLevel(parent: PinnedDir, name: string, rel: string): PinnedDir {
  const at = `${parent.via}/${name}`;
  let st: BigIntStats;
  try {
    st = lstatSync(at, { bigint: true });
  } catch (err) {
    const known = toFcpError(err, rel);
    throw new FcpError(known.code, `${rel}: ${known.message}`, { path: rel, cause: err });
  }
  if (st.isSymbolicLink()) {
    throw new FcpError('FCP_ERR_PATH_SYMLINK', `${rel} is a symbolic link`, { path: rel });
  }
  if (!st.isDirectory()) throw new FcpError('ENOTDIR', `${rel} is not a directory`, { path: rel });
  return pinDir(at, rel, st, { hold: true, follow: false });
}
