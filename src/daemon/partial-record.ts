/**
 * One line of `<state dir>/partials.jsonl`: a kept partial, named by the served root and the path below it
 * (the temporary and its piece index side by side), with the device and inode each had when it was kept.
 * The sweep goes down from that root and removes a file only if it is still that one (partial-walk.ts).
 *
 *   {"root":"/srv/drop","temp":"d/.big.fcp-part","sidecar":"d/.big.fcp-meta","tempId":"2049:77","sidecarId":"2049:78"}
 *
 * Daemons before this format wrote `{"temp":"/srv/drop/d/.big.fcp-part","sidecar":"..."}`: such a line is
 * read as the same record without ids when it lies under the root this daemon serves.
 */
import path from 'node:path';

const KEPT_SUFFIXES = ['.fcp-part', '.fcp-meta'];

export interface PartialRecord {
  /** The served root's real path. */
  readonly root: string;
  /** The directory below the root holding both files ('' for the root itself). */
  readonly dir: string;
  readonly temp: string;
  readonly sidecar: string;
  /** `dev:ino` when kept; absent for a record of the old format. */
  readonly tempId?: string;
  readonly sidecarId?: string;
}

/** The record of a partial kept at these absolute paths, or undefined when they do not lie under `root`. */
export function recordUnder(root: string, tempAbs: string, sidecarAbs: string): PartialRecord | undefined {
  if (!under(root, tempAbs) || !under(root, sidecarAbs)) return undefined;
  return checked(root, below(root, tempAbs), below(root, sidecarAbs));
}

/**
 * Reads one line: a record, 'other' for a well-formed record of another root (kept as it is, for a daemon
 * that serves that root), or undefined for anything else (dropped).
 */
export function parseRecord(line: string, servedRoot: string): PartialRecord | 'other' | undefined {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof e !== 'object' || e === null) return undefined;
  const { root, temp, sidecar, tempId, sidecarId } = e;
  if (typeof temp !== 'string' || typeof sidecar !== 'string') return undefined;
  if (root === undefined) return oldFormat(servedRoot, temp, sidecar);
  if (typeof root !== 'string' || !path.isAbsolute(root)) return undefined;
  const record = checked(root, temp, sidecar);
  if (record === undefined) return undefined;
  if (root !== servedRoot) return 'other';
  return { ...record, ...ids(tempId, sidecarId) };
}

/** The line for `record`. */
export function formatRecord(r: PartialRecord): string {
  const temp = joinRel(r.dir, r.temp);
  const sidecar = joinRel(r.dir, r.sidecar);
  return `${JSON.stringify({ root: r.root, temp, sidecar, tempId: r.tempId, sidecarId: r.sidecarId })}\n`;
}

/** What the log names: the temporary's absolute path. */
export function recordPath(r: PartialRecord): string {
  return path.join(r.root, r.dir, r.temp);
}

function oldFormat(servedRoot: string, temp: string, sidecar: string): PartialRecord | 'other' | undefined {
  if (!path.isAbsolute(temp) || !path.isAbsolute(sidecar)) return undefined;
  // Checked as a relative path would be: '..' is refused, not normalised away.
  if (!checked('/', temp.slice(1), sidecar.slice(1))) return undefined;
  return recordUnder(servedRoot, temp, sidecar) ?? 'other';
}

function under(root: string, abs: string): boolean {
  return root === '/' ? abs.startsWith('/') : abs.startsWith(`${root}/`);
}

function below(root: string, abs: string): string {
  return abs.slice(root === '/' ? 1 : root.length + 1);
}

/**
 * Both paths relative, in normal form, in one directory, with the names fcp gives its temporaries: only
 * what the daemon itself kept is ever removed.
 */
function checked(root: string, tempRel: string, sidecarRel: string): PartialRecord | undefined {
  if (!normalRel(tempRel) || !normalRel(sidecarRel)) return undefined;
  const dir = dirOf(tempRel);
  if (dirOf(sidecarRel) !== dir) return undefined;
  const temp = path.posix.basename(tempRel);
  const sidecar = path.posix.basename(sidecarRel);
  if (!keptName(temp) || !keptName(sidecar)) return undefined;
  return { root, dir, temp, sidecar };
}

function normalRel(rel: string): boolean {
  return rel.split('/').every((s) => s !== '' && s !== '.' && s !== '..' && !s.includes('\0'));
}

function keptName(name: string): boolean {
  return KEPT_SUFFIXES.some((s) => name.endsWith(s));
}

function dirOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i === -1 ? '' : rel.slice(0, i);
}

function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

function ids(tempId: unknown, sidecarId: unknown): { tempId?: string; sidecarId?: string } {
  return {
    ...(typeof tempId === 'string' ? { tempId } : {}),
    ...(typeof sidecarId === 'string' ? { sidecarId } : {}),
  };
}
