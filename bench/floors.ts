/**
 * Per-file floors: the CPU seconds the least a node program must do for a tree of small files costs, beside
 * what the C tools fcp is measured against spend on the same work, every process pinned to one core.
 * Nothing here sends a byte, so each figure is a lower bound for its side of a copy (issue 19's per-file and
 * no-change targets; spec/ARCHITECTURE.md §6.6 quotes them).
 *
 *   node dist/bench/floors.js [--runs N]       (FCP_BENCH_DATA as for run.js; needs taskset and GNU time)
 *
 * - start: `node -e 0`, what any node process pays before its first line, and `fcp --version`, what fcp
 *   pays to load (its launcher and its bundle, compiled from the code cache);
 * - walk: readdirSync + lstatSync of every entry of the no-change row's tree (what a re-run's sender and
 *   receiver each do at least) against `find -printf` of the same fields;
 * - read: openSync, fstatSync, readSync, closeSync and an xxh64 of each of the 5,000 small files (a
 *   sender's least) against `tar cf - | cat`;
 * - write: for each file a new temporary name opened O_CREAT|O_EXCL, written, its mtime set, closed and
 *   renamed to its name on a tmpfs (a safe receiver's least: the file is never truncated under its final
 *   name) against `tar xf` (which writes in place).
 * A node floor's phase is timed inside its process (process.cpuUsage around the work, the data already
 * in memory for `write`); its "whole" adds the median start. A C tool's is its whole process tree (GNU time).
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  constants,
  fstatSync,
  futimesSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadHasher } from '../src/transfer/checksum.js';
import { defaultCacheDir, ensureDataset } from './datasets.js';
import { runCleanups } from './proc.js';
import { mountTmpfs } from './tmpfs.js';

const SELF = fileURLToPath(import.meta.url);
const FCP_BIN = fileURLToPath(new URL('../bin/fcp.js', import.meta.url));
const CORE = '0';

function cpuOf(fn: () => void): number {
  const before = process.cpuUsage();
  fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}

interface Entry {
  path: string;
  dir: boolean;
  file: boolean;
}

/** Every entry below `dir`, lstat'ed: directories before what they hold. */
function walk(dir: string, out: Entry[] = []): Entry[] {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = lstatSync(p);
    out.push({ path: p, dir: st.isDirectory(), file: st.isFile() });
    if (st.isDirectory()) walk(p, out);
  }
  return out;
}

async function phase(name: string, src: string, dest: string | undefined): Promise<number> {
  if (name === 'walk') return cpuOf(() => walk(src));
  if (name === 'read') {
    const hasher = await loadHasher();
    const buf = Buffer.allocUnsafe(1 << 20);
    return cpuOf(() => {
      for (const { path: p, file } of walk(src)) {
        if (!file) continue;
        const fd = openSync(p, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
        if (fstatSync(fd).isFile()) hasher.pieceHash(buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)));
        closeSync(fd);
      }
    });
  }
  // write: the tree's files read into memory first (untimed), then written under dest.
  const entries = walk(src).map((e) => ({
    rel: path.relative(src, e.path),
    dir: e.dir,
    data: e.file ? readFileSync(e.path) : undefined,
  }));
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const mtime = new Date('2026-01-01T00:00:00Z');
  return cpuOf(() => {
    for (const e of entries) {
      const final = path.join(dest!, e.rel);
      if (e.dir) {
        mkdirSync(final);
        continue;
      }
      if (e.data === undefined) continue;
      const temp = path.join(path.dirname(final), `.${path.basename(final)}.part`);
      const fd = openSync(temp, flags, 0o644);
      writeSync(fd, e.data);
      futimesSync(fd, mtime, mtime);
      closeSync(fd);
      renameSync(temp, final);
    }
  });
}

/** NODE_EXTRA_CA_CERTS makes node parse a CA bundle at start (~35 ms of CPU) that a stock system does not. */
function withoutExtraCerts(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['NODE_EXTRA_CA_CERTS'];
  return env;
}

/** CPU seconds of a whole command (GNU time: the process and every child it waited for), pinned. */
function timed(cmd: string, args: string[]): number {
  const r = spawnSync('/usr/bin/time', ['-f', 'cpu %U %S', 'taskset', '-c', CORE, cmd, ...args], {
    encoding: 'utf8',
    env: withoutExtraCerts(),
  });
  const m = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr ?? '');
  if (r.status !== 0 || m === null) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return Number(m[1]) + Number(m[2]);
}

/** A node floor's phase CPU seconds, run pinned in a process of its own. */
function nodePhase(name: string, src: string, dest?: string): number {
  const args = [SELF, '--phase', name, src, ...(dest === undefined ? [] : [dest])];
  const r = spawnSync('taskset', ['-c', CORE, process.execPath, ...args], {
    encoding: 'utf8',
    env: withoutExtraCerts(),
  });
  if (r.status !== 0) throw new Error(`floor ${name} failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function fresh(dir: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  return dir;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--phase') {
    process.stdout.write(`${(await phase(argv[1]!, argv[2]!, argv[3])).toFixed(4)}\n`);
    return;
  }
  const runs = Number(argv[argv.indexOf('--runs') + 1] ?? 5) || 5;
  const cache = defaultCacheDir();
  const small = await ensureDataset('small', 0.25, cache);
  const tree = await ensureDataset('tree', 0.25, cache);
  const dest = mountTmpfs({ sizeBytes: 4 * small.bytes + 256 * 1024 ** 2 });
  const target = path.join(dest.dir, 'to');
  const tarFile = path.join(dest.dir, 'small.tar');
  spawnSync('tar', ['cf', tarFile, '-C', small.dir, '.']);
  const rows: Array<[string, number[]]> = [
    ['start: node -e 0', []],
    ['start: fcp --version (node, the launcher, the bundle from its code cache)', []],
    [`walk ${tree.files + tree.dirs + tree.symlinks} entries: node readdirSync + lstatSync`, []],
    ['walk: find -printf "%s %T@ %m"', []],
    [`read + xxh64 ${small.files} files: node open/fstat/read/close`, []],
    ['read: tar cf - | cat', []],
    [`write ${small.files} files: node open(O_EXCL)/write/futimes/close/rename`, []],
    ['write: tar xf', []],
  ];
  for (let i = 0; i < runs + 1; i++) {
    // The first round warms the caches and is not counted.
    const figures = [
      timed(process.execPath, ['-e', '0']),
      timed(process.execPath, [FCP_BIN, '--version']),
      nodePhase('walk', tree.dir),
      timed('find', [tree.dir, '-printf', '%s %T@ %m\\n']),
      nodePhase('read', small.dir),
      timed('sh', ['-c', `tar cf - -C '${small.dir}' . | cat >/dev/null`]),
      nodePhase('write', small.dir, fresh(target)),
      timed('tar', ['xf', tarFile, '-C', fresh(target)]),
    ];
    if (i > 0) figures.forEach((f, k) => rows[k]![1].push(f));
  }
  const start = median(rows[0]![1]);
  console.log(`# per-file floors, CPU seconds, pinned to core ${CORE}, median of ${runs} (${dest.note})\n`);
  console.log('| work | CPU s | with a node start |');
  console.log('| --- | ---: | ---: |');
  for (const [label, xs] of rows) {
    const m = median(xs);
    const node = label.includes(': node ') && !label.startsWith('start');
    console.log(`| ${label} | ${m.toFixed(3)} | ${node ? (m + start).toFixed(3) : ''} |`);
  }
}

main()
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  })
  .finally(() => runCleanups());
