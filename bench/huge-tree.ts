/**
 * `node dist/bench/huge-tree.js [--n 1000000] [--pull] [--data DIR] [-c 8] [--timeout S] [--trace]`: the
 * memory check for huge trees. The file list must stream: a tree of a million entries is walked and sent
 * without either side holding every entry's metadata at once, so fcp's and fcpd's peak RSS stay flat as the
 * entry count grows (target: under 150 MiB each).
 *
 * It generates (once, cached) a tree of N entries — directories of 999 files each, every tenth file one
 * byte long and the rest empty, so the run is all metadata — pushes it into a throwaway fcpd on loopback
 * (or pulls it from one with --pull) into a tmpfs, samples both processes' RSS, checks that the
 * destination holds exactly the N entries and bytes of the source, and prints a markdown table row.
 */
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type FcpDaemon, fcpClientEnv, fcpMissing, fcpPullArgs, fcpPushArgs, startFcpDaemon } from './fcp.js';
import {
  haveGnuTime,
  installSignalCleanup,
  peakRssKb,
  resetPeakRss,
  type RunResult,
  runCleanups,
} from './proc.js';
import { mountTmpfs } from './tmpfs.js';
import { runNodeMeasured } from './tools.js';

/** Entries per directory: the directory itself and its files. */
const DIR_WIDTH = 1000;
const FILES_PER_DIR = DIR_WIDTH - 1;
/** Every this-many-th file holds one byte, so the data path runs too; the rest are empty. */
const ONE_BYTE_EVERY = 10;
/** Bump when the layout changes, so a stale cache is regenerated. */
const GENERATION = 1;
const MAX_ENTRIES = 20_000_000;
const SAMPLE_MS = 500;
const MIB = 1024 * 1024;
/** The whole bench may take this much longer than the fcp run's own --timeout. */
const WATCHDOG_EXTRA_MS = 60 * 60 * 1000;

const USAGE = `usage: node dist/bench/huge-tree.js [--n N] [--pull] [--data DIR] [-c CONNS] [--timeout S] [--trace]
  --n        entries in the tree (directories and files, not counting its top), default 1000000
  --pull     fcp pull from the daemon instead of fcp push into it
  --data     where the tree is generated and cached, default .bench-data/huge-N
  -c         fcp -n (connections), default 8
  --timeout  seconds the fcp run may take before it is killed, default 1800
  --trace    print both processes' RSS every ${SAMPLE_MS} ms while the run goes on
  --node-options  NODE_OPTIONS for fcp and fcpd (e.g. "--max-semi-space-size=2"), to try V8 heap settings`;

interface Settings {
  n: number;
  pull: boolean;
  dataDir: string;
  conns: number;
  timeoutMs: number;
  trace: boolean;
  nodeOptions: string | undefined;
}

interface Layout {
  dirs: number;
  files: number;
  bytes: number;
}

interface TreeCount {
  dirs: number;
  files: number;
  bytes: number;
  other: number;
}

function parseSettings(argv: string[]): Settings | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      n: { type: 'string', default: '1000000' },
      pull: { type: 'boolean', default: false },
      data: { type: 'string' },
      conns: { type: 'string', short: 'c', default: '8' },
      timeout: { type: 'string', default: '1800' },
      trace: { type: 'boolean', default: false },
      'node-options': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const n = Number(values.n);
  const conns = Number(values.conns);
  const timeout = Number(values.timeout);
  if (!Number.isInteger(n) || n < 1 || n > MAX_ENTRIES) throw new Error(`--n must be 1..${MAX_ENTRIES}`);
  if (!Number.isInteger(conns) || conns < 1 || conns > 64) throw new Error('-c must be 1..64');
  if (!(timeout > 0)) throw new Error('--timeout must be a positive number of seconds');
  return {
    n,
    pull: values.pull,
    dataDir: path.resolve(values.data ?? path.join('.bench-data', `huge-${n}`)),
    conns,
    timeoutMs: timeout * 1000,
    trace: values.trace,
    nodeOptions: values['node-options'],
  };
}

function log(msg: string): void {
  process.stderr.write(`huge-tree: ${msg}\n`);
}

/** ceil(n / 1000) directories under the top, the remaining entries spread as files, 999 at most in each. */
function layoutFor(n: number): Layout {
  const dirs = Math.ceil(n / DIR_WIDTH);
  const files = n - dirs;
  return { dirs, files, bytes: Math.ceil(files / ONE_BYTE_EVERY) };
}

function dirName(d: number): string {
  return `d${String(d).padStart(5, '0')}`;
}

/** Writes the tree into `dir` (which must not exist). Returns what it wrote. */
function generate(dir: string, n: number): Layout {
  const layout = layoutFor(n);
  mkdirSync(dir);
  let file = 0;
  const one = Buffer.from('x');
  const none = Buffer.alloc(0);
  for (let d = 0; d < layout.dirs; d++) {
    const sub = path.join(dir, dirName(d));
    mkdirSync(sub);
    const here = Math.min(FILES_PER_DIR, layout.files - file);
    for (let f = 0; f < here; f++, file++) {
      writeFileSync(
        path.join(sub, `f${String(f).padStart(3, '0')}`),
        file % ONE_BYTE_EVERY === 0 ? one : none,
      );
    }
    if (d % 100 === 99) log(`generated ${file + d + 1} of ${n} entries`);
  }
  return layout;
}

/** The cached tree for `n` entries, generated first when missing or stale. */
function ensureTree(s: Settings): { tree: string; layout: Layout } {
  const tree = path.join(s.dataDir, 'tree');
  const marker = path.join(s.dataDir, 'huge-tree.json');
  const want = { generation: GENERATION, n: s.n, ...layoutFor(s.n) };
  if (existsSync(marker) && existsSync(tree)) {
    const have = JSON.parse(readFileSync(marker, 'utf8')) as Record<string, unknown>;
    if (Object.entries(want).every(([k, v]) => have[k] === v)) return { tree, layout: layoutFor(s.n) };
  }
  log(`generating ${s.n} entries in ${tree} (once; the marker ${marker} says it is complete)`);
  rmSync(marker, { force: true });
  rmSync(tree, { recursive: true, force: true });
  const partial = `${tree}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(s.dataDir, { recursive: true });
  const t0 = performance.now();
  const layout = generate(partial, s.n);
  renameSync(partial, tree);
  writeFileSync(marker, `${JSON.stringify(want)}\n`);
  log(`generated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { tree, layout };
}

/** Counts a tree below its top (not following links); gives up past `limit` entries. */
function countTree(top: string, limit: number): TreeCount {
  const c: TreeCount = { dirs: 0, files: 0, bytes: 0, other: 0 };
  const stack = [top];
  for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
    for (const ent of readdirSync(dir, { withFileTypes: true })) {
      if (c.dirs + c.files + c.other >= limit) throw new Error(`more than ${limit} entries under ${top}`);
      const abs = path.join(dir, ent.name);
      if (ent.isDirectory()) {
        c.dirs++;
        stack.push(abs);
      } else if (ent.isFile()) {
        c.files++;
        c.bytes += lstatSync(abs).size;
      } else c.other++;
    }
  }
  return c;
}

function sameCount(c: TreeCount, want: Layout): boolean {
  return c.dirs === want.dirs && c.files === want.files && c.bytes === want.bytes && c.other === 0;
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** The node client: GNU time's only child when the run goes through it, else the spawned process. */
function clientPid(spawned: number): number | undefined {
  if (!haveGnuTime()) return spawned;
  try {
    const kids = readFileSync(`/proc/${spawned}/task/${spawned}/children`, 'utf8').trim().split(/\s+/);
    return kids[0] === undefined || kids[0] === '' ? undefined : Number(kids[0]);
  } catch {
    return undefined;
  }
}

/** Samples both processes' RSS while a run goes on; keeps the highest seen and, with `trace`, prints each. */
class RssSampler {
  clientMaxKb = 0;
  daemonMaxKb = 0;
  #spawned: number | undefined;
  #client: number | undefined;
  readonly #daemon: number;
  readonly #timer: NodeJS.Timeout;
  readonly #t0 = performance.now();

  constructor(daemonPid: number, trace: boolean) {
    this.#daemon = daemonPid;
    this.#timer = setInterval(() => this.#sample(trace), SAMPLE_MS);
  }

  spawned(pid: number): void {
    this.#spawned = pid;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #sample(trace: boolean): void {
    if (this.#client === undefined && this.#spawned !== undefined) this.#client = clientPid(this.#spawned);
    const client = this.#client === undefined ? undefined : statusKb(this.#client, 'VmRSS');
    const daemon = statusKb(this.#daemon, 'VmRSS');
    this.clientMaxKb = Math.max(this.clientMaxKb, client ?? 0);
    this.daemonMaxKb = Math.max(this.daemonMaxKb, daemon ?? 0);
    if (!trace) return;
    const t = ((performance.now() - this.#t0) / 1000).toFixed(1);
    log(`t=${t}s rss client ${mib(client)} MiB, daemon ${mib(daemon)} MiB`);
  }
}

function mib(kb: number | undefined): string {
  return kb === undefined ? '?' : (kb / 1024).toFixed(1);
}

function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function failure(result: RunResult, daemon: FcpDaemon): string {
  const why = result.timedOut ? 'timed out' : `exited with ${result.code ?? result.signal}`;
  const tail = daemon.service.stderrTail().trim().split('\n').slice(-10).join('\n');
  return `fcp ${why}\n${result.stderr.trim().slice(-2000)}\nfcpd log tail:\n${tail}`;
}

async function main(): Promise<number> {
  const s = parseSettings(process.argv.slice(2));
  if (s === undefined) {
    console.log(USAGE);
    return 0;
  }
  const missing = fcpMissing();
  if (missing !== undefined) throw new Error(missing);
  installSignalCleanup();
  // Generation, two counts and the run: generous, but a hung step cannot keep the machine busy for ever.
  const watchdog = setTimeout(() => {
    log('the whole run took too long; stopping');
    void runCleanups().finally(() => process.exit(124));
  }, s.timeoutMs + WATCHDOG_EXTRA_MS);
  watchdog.unref();

  const { tree, layout } = ensureTree(s);
  // Checks the cache and, reading every inode once, leaves the source in the kernel's caches.
  const source = countTree(tree, s.n + 1);
  if (!sameCount(source, layout)) throw new Error(`the cached tree ${tree} is incomplete: delete it`);

  // 1-byte files take a page each on tmpfs; inodes: every entry plus temporary names in flight.
  const dest = mountTmpfs({
    sizeBytes: layout.bytes * 4096 * 1.5 + 256 * MIB,
    inodes: s.n * 1.2 + 100_000,
  });
  log(dest.note);
  if (!dest.tmpfs) log('warning: this disk is slow for metadata-heavy work; the figures measure the disk');

  // Both children inherit it (startFcpDaemon and fcpClientEnv copy process.env); this process is running.
  if (s.nodeOptions !== undefined) {
    process.env['NODE_OPTIONS'] = s.nodeOptions;
    log(`NODE_OPTIONS=${s.nodeOptions} for fcp and fcpd`);
  }
  const direction = s.pull ? 'pull' : 'push';
  const target = path.join(dest.dir, direction);
  // The push daemon serves the tmpfs; the pull daemon serves the cache and the client writes the tmpfs.
  const daemon = await startFcpDaemon(s.pull ? s.dataDir : dest.dir);
  const args = s.pull
    ? fcpPullArgs(s.conns, daemon.port, `${tree}/`, target)
    : fcpPushArgs(s.conns, `${tree}/`, daemon.port, target);
  const idleKb = statusKb(daemon.service.pid, 'VmRSS');
  resetPeakRss(daemon.service.pid);
  const sampler = new RssSampler(daemon.service.pid, s.trace);
  log(`fcp ${direction} of ${formatCount(s.n)} entries, -n ${s.conns} (daemon idle at ${mib(idleKb)} MiB)`);
  let run: Awaited<ReturnType<typeof runNodeMeasured>>;
  try {
    run = await runNodeMeasured(args, fcpClientEnv(daemon), s.timeoutMs, (pid) => sampler.spawned(pid));
  } finally {
    sampler.stop();
  }
  const daemonPeakKb = peakRssKb(daemon.service.pid) ?? sampler.daemonMaxKb;
  const clientPeakKb = run.rssKb ?? sampler.clientMaxKb;
  if (run.result.code !== 0) throw new Error(failure(run.result, daemon));

  const got = countTree(target, s.n + 1);
  if (!sameCount(got, layout)) {
    throw new Error(`destination holds ${JSON.stringify(got)}, expected ${JSON.stringify(layout)}`);
  }
  const secs = run.result.seconds;
  console.log(
    `huge-tree: ${formatCount(s.n)} entries (${formatCount(layout.dirs)} directories, ` +
      `${formatCount(layout.files)} files, ${formatCount(layout.bytes)} bytes), fcp ${direction} -n ${s.conns} ` +
      `over loopback${s.nodeOptions === undefined ? '' : ` (NODE_OPTIONS=${s.nodeOptions})`}; ${dest.tmpfs ? 'destination on tmpfs (this disk is slow for metadata-heavy work)' : dest.note}; ` +
      `source from the page cache; destination verified: ${formatCount(got.dirs + got.files)} entries`,
  );
  console.log('');
  console.log('| direction | entries | s | entries/s | peak RSS client MiB | peak RSS daemon MiB |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  console.log(
    `| fcp ${direction} | ${formatCount(s.n)} | ${secs.toFixed(1)} | ${formatCount(s.n / secs)} | ` +
      `${mib(clientPeakKb)} | ${mib(daemonPeakKb)} |`,
  );
  return 0;
}

main().then(
  async (code) => {
    await runCleanups();
    process.exit(code);
  },
  async (err: Error) => {
    console.error(`huge-tree: ${err.message}`);
    await runCleanups();
    process.exit(1);
  },
);
