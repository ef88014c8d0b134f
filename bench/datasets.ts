/**
 * Deterministic bench data sets, generated once into a cache directory and reused:
 *   big    one 2 GiB file;
 *   medium 64 files of 32 MiB;
 *   small  20,000 files of 1-16 KiB in nested directories, 1 % symlinks, modes 0600/0644/0755;
 *   one    one file of 16 KiB (not scaled): what a single small copy costs in start-up and round trips;
 *   tree   55,000 files of 0-2 KiB, 1 in 20 with a symlink beside it, in directories 2 to 13 levels deep
 *          (about 60,000 entries): the no-change re-run of a system-like tree.
 * Content is an AES-128-CTR keystream keyed by the set's name and scale (a seeded PRNG that runs at
 * memory speed), so nothing compresses and every rerun produces the same bytes. FCP_BENCH_SCALE shrinks
 * file sizes (big, medium) and the file count (small).
 */
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, open, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export type DatasetName = 'big' | 'medium' | 'small' | 'one' | 'tree';

export const DATASET_NAMES: readonly DatasetName[] = ['big', 'medium', 'small', 'one', 'tree'];

export interface Dataset {
  name: DatasetName;
  /** The tree's root directory; tools copy its contents. */
  dir: string;
  files: number;
  symlinks: number;
  dirs: number;
  /** Bytes of regular-file data. */
  bytes: number;
  scale: number;
}

// Bump when the layout or content changes, so stale caches are regenerated.
const GENERATION = 1;
const MIB = 1024 * 1024;
const BLOCK = 8 * MIB;

/** Where data sets live: FCP_BENCH_DATA, else .bench-data/ under the working directory (the repo). */
export function defaultCacheDir(): string {
  return path.resolve(process.env['FCP_BENCH_DATA'] ?? '.bench-data');
}

/** The keystream: deterministic, incompressible bytes. Each call returns a fresh buffer. */
class Keystream {
  readonly #cipher;
  readonly #zeros = Buffer.alloc(BLOCK);

  constructor(seed: string) {
    const key = createHash('sha256').update(seed).digest().subarray(0, 16);
    this.#cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  }

  next(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let off = 0; off < n; off += BLOCK) {
      const len = Math.min(BLOCK, n - off);
      this.#cipher.update(this.#zeros.subarray(0, len)).copy(out, off);
    }
    return out;
  }
}

/** mulberry32: a small seeded PRNG for sizes, names and modes. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function writeStreamed(file: string, size: number, ks: Keystream): Promise<void> {
  const fh = await open(file, 'w', 0o644);
  try {
    for (let off = 0; off < size; off += BLOCK) {
      const buf = ks.next(Math.min(BLOCK, size - off));
      await fh.write(buf, 0, buf.length, off);
    }
  } finally {
    await fh.close();
  }
}

interface Counts {
  files: number;
  symlinks: number;
  dirs: number;
  bytes: number;
}

async function generateBig(dir: string, scale: number, ks: Keystream): Promise<Counts> {
  const size = Math.max(MIB, Math.round(2048 * MIB * scale));
  await writeStreamed(path.join(dir, 'big.bin'), size, ks);
  return { files: 1, symlinks: 0, dirs: 0, bytes: size };
}

async function generateMedium(dir: string, scale: number, ks: Keystream): Promise<Counts> {
  const size = Math.max(256 * 1024, Math.round(32 * MIB * scale));
  for (let i = 0; i < 64; i++) {
    await writeStreamed(path.join(dir, `m${String(i).padStart(2, '0')}.bin`), size, ks);
  }
  return { files: 64, symlinks: 0, dirs: 0, bytes: 64 * size };
}

const FILES_PER_DIR = 100;
const TOP_DIRS = 20;

async function generateSmall(dir: string, scale: number, ks: Keystream): Promise<Counts> {
  const count = Math.max(100, Math.round(20_000 * scale));
  const rand = prng(0x5eed);
  const counts: Counts = { files: 0, symlinks: 0, dirs: 0, bytes: 0 };
  const made = new Set<string>();
  for (let i = 0; i < count; i++) {
    const leaf = Math.floor(i / FILES_PER_DIR);
    // d07/s03 for most leaves, d07/s03/deep/x for every fifth one: depth varies from 2 to 4.
    const parts = [`d${String(leaf % TOP_DIRS).padStart(2, '0')}`, `s${Math.floor(leaf / TOP_DIRS)}`];
    if (leaf % 5 === 4) parts.push('deep', 'x');
    const sub = path.join(dir, ...parts);
    if (!made.has(sub)) {
      await mkdir(sub, { recursive: true });
      // Count every directory level created for the first time.
      for (let k = 1; k <= parts.length; k++) {
        const p = path.join(dir, ...parts.slice(0, k));
        if (!made.has(p)) {
          made.add(p);
          counts.dirs++;
        }
      }
    }
    const size = 1024 + Math.floor(rand() * 15 * 1024);
    const r = rand();
    const mode = r < 0.1 ? 0o755 : r < 0.25 ? 0o600 : 0o644;
    const name = `f${String(i).padStart(5, '0')}.dat`;
    const file = path.join(sub, name);
    await writeFile(file, ks.next(size));
    await chmod(file, mode);
    counts.files++;
    counts.bytes += size;
    if (i % 100 === 50) {
      await symlink(name, path.join(sub, `link-${String(i).padStart(5, '0')}`));
      counts.symlinks++;
    }
  }
  return counts;
}

const TREE_FILES_PER_DIR = 40;
const TREE_TOPS = 30;
const TREE_MAX_DEPTH = 12;

/** The leaf directory of file `i`: `tNN/l0/l1/.../dNNN`, 2 to 13 levels deep. */
function treeDir(i: number): string[] {
  const leaf = Math.floor(i / TREE_FILES_PER_DIR);
  const chain = Array.from({ length: leaf % TREE_MAX_DEPTH }, (_, k) => `l${k}`);
  return [`t${String(leaf % TREE_TOPS).padStart(2, '0')}`, ...chain, `d${leaf}`];
}

async function generateTree(dir: string, scale: number, ks: Keystream): Promise<Counts> {
  const count = Math.max(1000, Math.round(55_000 * scale));
  const rand = prng(0x7233);
  const counts: Counts = { files: 0, symlinks: 0, dirs: 0, bytes: 0 };
  const made = new Set<string>();
  for (let i = 0; i < count; i++) {
    const parts = treeDir(i);
    for (let k = 1; k <= parts.length; k++) {
      const p = path.join(dir, ...parts.slice(0, k));
      if (made.has(p)) continue;
      await mkdir(p);
      made.add(p);
      counts.dirs++;
    }
    const sub = path.join(dir, ...parts);
    // Most system files are small; a fifth are empty.
    const size = rand() < 0.2 ? 0 : Math.floor(rand() * 2048);
    const name = `f${i}`;
    await writeFile(path.join(sub, name), ks.next(size), { mode: rand() < 0.1 ? 0o755 : 0o644 });
    counts.files++;
    counts.bytes += size;
    if (i % 20 === 10) {
      // Alternately a link to the file beside it and one to the directory above.
      await symlink(i % 40 === 10 ? name : '..', path.join(sub, `link${i}`));
      counts.symlinks++;
    }
  }
  return counts;
}

async function generateOne(dir: string, _scale: number, ks: Keystream): Promise<Counts> {
  const size = 16 * 1024;
  await writeFile(path.join(dir, 'one.dat'), ks.next(size));
  return { files: 1, symlinks: 0, dirs: 0, bytes: size };
}

const GENERATORS: Record<DatasetName, (dir: string, scale: number, ks: Keystream) => Promise<Counts>> = {
  big: generateBig,
  medium: generateMedium,
  small: generateSmall,
  one: generateOne,
  tree: generateTree,
};

function describe(name: DatasetName, scale: number): string {
  return `${name}-s${scale}`;
}

/** Returns the data set, generating it first if the cache lacks a complete copy. */
export async function ensureDataset(name: DatasetName, scale: number, cacheDir: string): Promise<Dataset> {
  const id = describe(name, scale);
  const dir = path.join(cacheDir, id);
  // The marker sits beside the tree, not inside it, so tools never copy it.
  const marker = path.join(cacheDir, `${id}.json`);
  if (existsSync(marker) && existsSync(dir)) {
    const meta = JSON.parse(readFileSync(marker, 'utf8')) as Dataset & { generation: number };
    if (meta.generation === GENERATION) return { ...meta, dir };
  }
  await mkdir(cacheDir, { recursive: true });
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const counts = await GENERATORS[name](tmp, scale, new Keystream(`fcp-bench:${id}`));
  await rename(tmp, dir);
  const dataset: Dataset = { name, dir, scale, ...counts };
  await writeFile(marker, `${JSON.stringify({ ...dataset, generation: GENERATION }, null, 2)}\n`);
  return dataset;
}
