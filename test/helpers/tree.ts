// Deterministic file trees for end-to-end tests: build one from a spec (seeded content, modes, sub-second
// mtimes, links, awkward names), and compare two trees the way a faithful copy must match (type, size,
// content hash, mode & 0o7777, mtime to the microsecond, link target), never following a link.
import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { chmod, lstat, lutimes, mkdir, open, readdir, readlink, rm, symlink, utimes } from 'node:fs/promises';
import path from 'node:path';

/** A time as whole seconds and microseconds since the epoch. */
export interface TimeSpec {
  sec: number;
  usec: number;
}

export interface FileSpec {
  kind: 'file';
  /** '/'-separated, relative to the tree's root. */
  path: string;
  size: number;
  /** Content seed; defaults to one derived from the path. */
  seed?: number;
  /** Defaults to 0o644. */
  mode?: number;
  mtime?: TimeSpec;
}

export interface DirSpec {
  kind: 'dir';
  path: string;
  /** Defaults to 0o755; applied after the children exist, so 0o500 works. */
  mode?: number;
  mtime?: TimeSpec;
}

export interface LinkSpec {
  kind: 'symlink';
  path: string;
  /** Stored as typed: may dangle or point outside the tree. */
  target: string;
  mtime?: TimeSpec;
}

export type EntrySpec = FileSpec | DirSpec | LinkSpec;

export interface BuildOptions {
  /** Mode of the root directory itself; default 0o755. */
  rootMode?: number;
  /** Mtime of the root directory itself; default a fixed time derived from nothing else. */
  rootMtime?: TimeSpec;
}

/** What a built tree holds, for assertions on transfer summaries. */
export interface TreeCounts {
  /** Regular files and symlinks: what a summary counts as files. */
  files: number;
  links: number;
  /** Directories below the root. */
  dirs: number;
  bytes: number;
}

const DEFAULT_FILE_MODE = 0o644;
const DEFAULT_DIR_MODE = 0o755;
const WRITE_CHUNK = 1 << 20;
/** 2023-11-14T22:13:20Z: a base far enough from "now" that a fresh write never matches it by accident. */
const BASE_SEC = 1_700_000_000;

/** mulberry32: a tiny seeded generator of 32-bit values; the same seed gives the same bytes everywhere. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A stable 32-bit seed for a string (FNV-1a). */
export function seedOf(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** A deterministic mtime with a sub-second part, distinct per index. */
export function timeAt(index: number): TimeSpec {
  return { sec: BASE_SEC + index * 37, usec: (index * 7919 + 123_457) % 1_000_000 };
}

/** Float seconds for utimes(): the middle of the microsecond, so libuv's truncation lands on it. */
export function toUtimes(t: TimeSpec): number {
  return t.sec + (t.usec + 0.5) / 1e6;
}

/** Sets a path's atime and mtime to the microsecond of `mtimeNs` (from a bigint stat), e.g. to restore it. */
export async function restoreMtime(abs: string, mtimeNs: bigint): Promise<void> {
  const micros = mtimeNs / 1000n;
  const sec = micros / 1_000_000n;
  const t = toUtimes({ sec: Number(sec), usec: Number(micros - sec * 1_000_000n) });
  await utimes(abs, t, t);
}

/** Writes `size` seeded pseudo-random bytes to `abs`, 1 MiB at a time. */
export async function writeSeededFile(abs: string, size: number, seed: number): Promise<void> {
  const next = prng(seed);
  const fh = await open(abs, 'w', 0o600);
  try {
    let left = size;
    while (left > 0) {
      const n = Math.min(left, WRITE_CHUNK);
      const chunk = Buffer.allocUnsafe(n);
      const words = Math.floor(n / 4);
      for (let i = 0; i < words; i++) chunk.writeUInt32LE(next(), i * 4);
      for (let i = words * 4; i < n; i++) chunk[i] = next() & 0xff;
      let written = 0;
      while (written < n) written += (await fh.write(chunk, written, n - written)).bytesWritten;
      left -= n;
    }
  } finally {
    await fh.close();
  }
}

function depth(rel: string): number {
  return rel.split('/').length;
}

/** Every entry of `specs` plus an entry (default mode, fixed time) for each parent directory not listed. */
function withParents(specs: readonly EntrySpec[]): EntrySpec[] {
  const listed = new Set(specs.filter((s) => s.kind === 'dir').map((s) => s.path));
  const out = [...specs];
  for (const spec of specs) {
    const parts = spec.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (listed.has(dir)) continue;
      listed.add(dir);
      out.push({ kind: 'dir', path: dir, mtime: timeAt(seedOf(dir) % 100_000) });
    }
  }
  return out;
}

/**
 * Creates the tree under `root` (which may exist). Files and links first, their times next, then the
 * directories deepest first (mode, then time), then the root, so no write disturbs a time already set.
 */
export async function buildTree(
  root: string,
  specs: readonly EntrySpec[],
  opts: BuildOptions = {},
): Promise<TreeCounts> {
  const all = withParents(specs);
  const counts: TreeCounts = { files: 0, links: 0, dirs: 0, bytes: 0 };
  await mkdir(root, { recursive: true });
  const dirs = all
    .filter((s): s is DirSpec => s.kind === 'dir')
    .sort((a, b) => depth(a.path) - depth(b.path));
  for (const dir of dirs) {
    await mkdir(path.join(root, dir.path), { recursive: true });
    counts.dirs++;
  }
  for (const [index, spec] of all.entries()) {
    const abs = path.join(root, spec.path);
    if (spec.kind === 'file') {
      await writeSeededFile(abs, spec.size, spec.seed ?? seedOf(spec.path));
      await chmod(abs, spec.mode ?? DEFAULT_FILE_MODE);
      const t = toUtimes(spec.mtime ?? timeAt(index));
      await utimes(abs, t, t);
      counts.files++;
      counts.bytes += spec.size;
    } else if (spec.kind === 'symlink') {
      await symlink(spec.target, abs);
      const t = toUtimes(spec.mtime ?? timeAt(index));
      await lutimes(abs, t, t);
      counts.files++;
      counts.links++;
    }
  }
  for (const dir of [...dirs].reverse()) {
    const abs = path.join(root, dir.path);
    await chmod(abs, dir.mode ?? DEFAULT_DIR_MODE);
    const t = toUtimes(dir.mtime ?? timeAt(seedOf(dir.path) % 100_000));
    await utimes(abs, t, t);
  }
  await chmod(root, opts.rootMode ?? DEFAULT_DIR_MODE);
  const rt = toUtimes(opts.rootMtime ?? { sec: BASE_SEC - 86_400, usec: 654_321 });
  await utimes(root, rt, rt);
  return counts;
}

/** Names that trip up shells, globs, option parsers and naive path code. */
export const ODD_NAMES: readonly string[] = [
  'with space',
  '  two leading spaces',
  'trailing space ',
  'ünïcødé-日本語-😀',
  "single'quote",
  'double"quote',
  'tab\there',
  'new\nline',
  '-leading-dash',
  '--double-dash',
  '*star?[brackets]{braces}',
  '#hash;semi&amp$dollar',
  'back\\slash',
  '.hidden',
];

export interface MixedTreeOptions {
  seed: number;
  /** Files of 1 to 16 KiB spread over nested directories. */
  smallFiles: number;
  /** Size of the one large file; 0 or absent for none. */
  bigFileSize?: number;
}

/**
 * A tree with every kind of entry fcp must carry: many small files in nested directories, optionally one
 * large file, empty files and directories, modes from 0o500 to 0o755, links (relative, dangling, absolute,
 * pointing outside), odd names, mtimes with sub-second parts.
 */
export function mixedTree(opts: MixedTreeOptions): EntrySpec[] {
  const rand = prng(opts.seed);
  const specs: EntrySpec[] = [];
  let t = 1;
  const time = () => timeAt(t++ + opts.seed);
  for (let i = 0; i < opts.smallFiles; i++) {
    const dir = `d${String(i % 10).padStart(2, '0')}/e${(i >> 4) % 5}`;
    const size = 1024 + (rand() % (15 * 1024 + 1));
    const mode = i % 7 === 0 ? 0o600 : i % 11 === 0 ? 0o755 : 0o644;
    specs.push({
      kind: 'file',
      path: `${dir}/f${String(i).padStart(4, '0')}.bin`,
      size,
      mode,
      mtime: time(),
    });
  }
  if (opts.bigFileSize !== undefined && opts.bigFileSize > 0) {
    specs.push({ kind: 'file', path: 'big/large.bin', size: opts.bigFileSize, mode: 0o640, mtime: time() });
  }
  specs.push(
    { kind: 'dir', path: 'empty-dir', mode: 0o755, mtime: time() },
    { kind: 'dir', path: 'nested/empty/deeper', mode: 0o700, mtime: time() },
    { kind: 'file', path: 'empty-file', size: 0, mode: 0o644, mtime: time() },
    { kind: 'file', path: 'nested/empty-too', size: 0, mode: 0o600, mtime: time() },
    { kind: 'file', path: 'edges/one-byte', size: 1, mtime: time() },
    { kind: 'file', path: 'edges/piece-minus-1', size: (1 << 20) - 1, mtime: time() },
    { kind: 'file', path: 'edges/piece-exact', size: 1 << 20, mtime: time() },
    { kind: 'file', path: 'edges/piece-plus-1', size: (1 << 20) + 1, mtime: time() },
    { kind: 'file', path: 'modes/private', size: 100, mode: 0o600, mtime: time() },
    { kind: 'file', path: 'modes/exec', size: 200, mode: 0o755, mtime: time() },
    { kind: 'file', path: 'modes/read-only', size: 300, mode: 0o444, mtime: time() },
    { kind: 'dir', path: 'modes/locked', mode: 0o500, mtime: time() },
    { kind: 'file', path: 'modes/locked/inside', size: 4000, mode: 0o644, mtime: time() },
    { kind: 'dir', path: 'modes/locked/sub', mode: 0o700, mtime: time() },
    { kind: 'file', path: 'modes/locked/sub/deep', size: 5000, mode: 0o600, mtime: time() },
    { kind: 'dir', path: 'modes/owner-only', mode: 0o700, mtime: time() },
    { kind: 'file', path: 'times/old', size: 10, mtime: { sec: 631_152_000, usec: 1 } },
    { kind: 'file', path: 'times/future', size: 10, mtime: { sec: 4_102_444_800, usec: 999_999 } },
    { kind: 'file', path: 'times/whole-second', size: 10, mtime: { sec: BASE_SEC, usec: 0 } },
    { kind: 'symlink', path: 'links/relative', target: '../edges/one-byte', mtime: time() },
    { kind: 'symlink', path: 'links/dangling', target: 'does/not/exist', mtime: time() },
    { kind: 'symlink', path: 'links/absolute-outside', target: '/etc/hostname', mtime: time() },
    { kind: 'symlink', path: 'links/up-and-out', target: '../../../../outside/the/tree', mtime: time() },
    { kind: 'symlink', path: 'links/to-dir', target: '../nested', mtime: time() },
    { kind: 'symlink', path: 'links/odd target', target: 'tab\tand\nnewline ü', mtime: time() },
  );
  for (const [i, name] of ODD_NAMES.entries()) {
    specs.push({ kind: 'file', path: `odd names/${name}`, size: 17 + i, mtime: time() });
  }
  specs.push({ kind: 'dir', path: 'odd names/-dir with ü', mode: 0o750, mtime: time() });
  specs.push({ kind: 'file', path: 'odd names/-dir with ü/"inner" \'file\'', size: 33, mtime: time() });
  return specs;
}

/** What compareTrees looks at for one entry. */
export interface EntrySnapshot {
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: bigint;
  mode: number;
  mtimeUs: bigint;
  /** sha256 of the content, files only. */
  hash?: string;
  target?: string;
}

async function hashFile(abs: string): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(abs, 'r');
  try {
    const buf = Buffer.allocUnsafe(WRITE_CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

function typeOf(st: BigIntStats): EntrySnapshot['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** Every entry under `root` ('.' is the root itself), by lstat: links are recorded, never followed. */
export async function snapshotTree(root: string): Promise<Map<string, EntrySnapshot>> {
  const out = new Map<string, EntrySnapshot>();
  const pending: string[] = ['.'];
  // Bounded: each directory is visited once, and a tree is finite because links are never followed.
  while (pending.length > 0) {
    const rel = pending.pop()!;
    const abs = rel === '.' ? root : path.join(root, rel);
    const st = await lstat(abs, { bigint: true });
    const snap: EntrySnapshot = {
      type: typeOf(st),
      size: st.isDirectory() ? 0n : st.size,
      mode: Number(st.mode & 0o7777n),
      mtimeUs: st.mtimeNs / 1000n,
    };
    if (snap.type === 'file') snap.hash = await hashFile(abs);
    if (snap.type === 'symlink') snap.target = await readlink(abs);
    out.set(rel, snap);
    if (snap.type === 'dir') {
      for (const name of await readdir(abs)) pending.push(rel === '.' ? name : `${rel}/${name}`);
    }
  }
  return out;
}

export interface CompareOptions {
  /** Skip the roots' own mode and mtime (e.g. a destination directory that existed before). */
  ignoreRootMeta?: boolean;
}

function octal(mode: number): string {
  return `0${mode.toString(8)}`;
}

/**
 * Differences between two trees, one line each (paths JSON-quoted so tabs and newlines show); empty when
 * `b` is a faithful copy of `a`. Compares type, size, content hash, mode & 0o7777, mtime to the
 * microsecond and link targets; extra and missing entries are differences too.
 */
export async function compareTrees(a: string, b: string, opts: CompareOptions = {}): Promise<string[]> {
  const [left, right] = await Promise.all([snapshotTree(a), snapshotTree(b)]);
  const diffs: string[] = [];
  const names = [...new Set([...left.keys(), ...right.keys()])].sort();
  for (const rel of names) {
    const x = left.get(rel);
    const y = right.get(rel);
    const name = JSON.stringify(rel);
    if (x === undefined) {
      diffs.push(`${name}: only in ${b} (${y?.type})`);
      continue;
    }
    if (y === undefined) {
      diffs.push(`${name}: missing from ${b} (${x.type})`);
      continue;
    }
    if (x.type !== y.type) {
      diffs.push(`${name}: type ${x.type} != ${y.type}`);
      continue;
    }
    if (x.type === 'file' && x.size !== y.size) diffs.push(`${name}: size ${x.size} != ${y.size}`);
    if (x.hash !== y.hash) diffs.push(`${name}: content differs`);
    if (x.target !== y.target) diffs.push(`${name}: link target ${x.target} != ${y.target}`);
    if (rel === '.' && opts.ignoreRootMeta) continue;
    if (x.mode !== y.mode) diffs.push(`${name}: mode ${octal(x.mode)} != ${octal(y.mode)}`);
    if (x.mtimeUs !== y.mtimeUs) diffs.push(`${name}: mtime ${x.mtimeUs} us != ${y.mtimeUs} us`);
  }
  return diffs;
}

/** Relative paths of the non-directories under `root`, sorted: for checking what a selection sent. */
export async function listFiles(root: string): Promise<string[]> {
  const snap = await snapshotTree(root);
  return [...snap.entries()]
    .filter(([, e]) => e.type !== 'dir')
    .map(([rel]) => rel)
    .sort();
}

/** Relative paths of every entry under `root` (directories too, not the root itself), sorted. */
export async function listEntries(root: string): Promise<string[]> {
  const snap = await snapshotTree(root);
  return [...snap.keys()].filter((rel) => rel !== '.').sort();
}

/** Removes a tree, first making its directories writable (a 0o500 directory blocks rm for non-root). */
export async function removeTree(root: string): Promise<void> {
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let st: BigIntStats;
    try {
      st = await lstat(dir, { bigint: true });
    } catch {
      continue;
    }
    if (!st.isDirectory()) continue;
    await chmod(dir, 0o700).catch(() => {});
    for (const name of await readdir(dir).catch(() => [] as string[])) pending.push(path.join(dir, name));
  }
  await rm(root, { recursive: true, force: true });
}
