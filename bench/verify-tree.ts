/**
 * Checks a destination tree against its source after a run. Missing entries, wrong types and wrong sizes or
 * bytes are errors; differences that are a tool's documented semantics (modes not kept, a symlink copied as
 * the file it points to, or not copied at all) are warnings, so the table can say so without failing the run.
 * Full mode compares every byte; sampled mode compares 1 MiB at the start, middle and end of each file and
 * every byte of the first two files.
 */
import type { Stats } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';

export interface TreeCheck {
  errors: string[];
  warnings: string[];
  files: number;
  bytes: number;
}

const WINDOW = 1024 * 1024;
const FULL_FILES_IN_SAMPLED = 2;
const MAX_REPORTED = 5;

async function readAt(file: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function sameRanges(a: string, b: string, ranges: Array<[number, number]>): Promise<boolean> {
  for (const [offset, length] of ranges) {
    for (let off = offset; off < offset + length; off += 8 * WINDOW) {
      const n = Math.min(8 * WINDOW, offset + length - off);
      const [x, y] = await Promise.all([readAt(a, off, n), readAt(b, off, n)]);
      if (!x.equals(y)) return false;
    }
  }
  return true;
}

function sampleRanges(size: number): Array<[number, number]> {
  if (size <= 3 * WINDOW) return [[0, size]];
  const mid = Math.floor(size / 2 / 4096) * 4096;
  return [
    [0, WINDOW],
    [mid, WINDOW],
    [size - WINDOW, WINDOW],
  ];
}

class Checker {
  readonly result: TreeCheck = { errors: [], warnings: [], files: 0, bytes: 0 };
  #fullLeft: number;
  readonly #warningCounts = new Map<string, number>();

  /** `fullFiles`: how many files (in walk order) to compare whole before sampling the rest. */
  constructor(fullFiles: number) {
    this.#fullLeft = fullFiles;
  }

  error(msg: string): void {
    if (this.result.errors.length < MAX_REPORTED) this.result.errors.push(msg);
    else if (this.result.errors.length === MAX_REPORTED) this.result.errors.push('(more errors)');
  }

  /** Warnings are grouped by kind with a count: "mode not kept (x2000)". */
  warn(kind: string): void {
    this.#warningCounts.set(kind, (this.#warningCounts.get(kind) ?? 0) + 1);
  }

  finish(): TreeCheck {
    for (const [kind, n] of this.#warningCounts) this.result.warnings.push(`${kind} (x${n})`);
    return this.result;
  }

  async file(src: string, dst: string, size: number): Promise<void> {
    this.result.files++;
    this.result.bytes += size;
    const ranges = this.#fullLeft > 0 ? [[0, size] as [number, number]] : sampleRanges(size);
    this.#fullLeft--;
    if (!(await sameRanges(src, dst, ranges))) this.error(`content differs: ${dst}`);
  }
}

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await lstat(p);
  } catch {
    return null;
  }
}

async function walk(c: Checker, src: string, dst: string): Promise<void> {
  const names = (await readdir(src)).sort();
  for (const name of names) {
    const s = path.join(src, name);
    const d = path.join(dst, name);
    const ss = await lstat(s);
    const ds = await lstatOrNull(d);
    if (ss.isSymbolicLink()) {
      if (ds === null) c.warn('symlink not copied');
      else if (ds.isSymbolicLink()) {
        if ((await readlink(s)) !== (await readlink(d))) c.error(`symlink target differs: ${d}`);
      } else if (ds.isFile()) c.warn('symlink copied as a file');
      else c.error(`symlink became something else: ${d}`);
      continue;
    }
    if (ds === null) {
      c.error(`missing: ${d}`);
      continue;
    }
    if ((ss.mode & 0o7777) !== (ds.mode & 0o7777))
      c.warn(ss.isDirectory() ? 'dir mode not kept' : 'mode not kept');
    if (ss.isDirectory()) {
      if (!ds.isDirectory()) c.error(`not a directory: ${d}`);
      else await walk(c, s, d);
      continue;
    }
    if (!ss.isFile()) continue;
    if (!ds.isFile()) c.error(`not a file: ${d}`);
    else if (ds.size !== ss.size) c.error(`size ${ds.size} != ${ss.size}: ${d}`);
    else await c.file(s, d, ss.size);
  }
  const known = new Set(names);
  const extra = (await readdir(dst)).filter((n) => !known.has(n));
  if (extra.length > 0) c.warn('extra entries in destination');
}

/** Compares `dst` with `src` byte for byte. */
export function checkTreeFull(src: string, dst: string): Promise<TreeCheck> {
  return checkTree(new Checker(Number.POSITIVE_INFINITY), src, dst);
}

/** Compares `dst` with `src`: sizes of all files, bytes of the first two and three windows of the rest. */
export function checkTreeSampled(src: string, dst: string): Promise<TreeCheck> {
  return checkTree(new Checker(FULL_FILES_IN_SAMPLED), src, dst);
}

async function checkTree(c: Checker, src: string, dst: string): Promise<TreeCheck> {
  const ds = await lstatOrNull(dst);
  if (ds === null || !ds.isDirectory()) {
    c.error(`destination missing: ${dst}`);
    return c.finish();
  }
  await walk(c, src, dst);
  return c.finish();
}
