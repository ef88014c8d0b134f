/**
 * The benchmark harness: `npm run bench [-- --only wan-big,small] [-- --quick]`. Generates (or reuses) the
 * data sets, mounts a tmpfs for destinations, starts fcpd, a private sshd, a raw TCP sink and WAN emulators
 * in front of them, times every tool in every selected scenario, verifies each destination tree, and prints
 * markdown that is also written to bench/results/latest.md. See bench/README.md.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { open, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Dataset, type DatasetName, defaultCacheDir, ensureDataset } from './datasets.js';
import { type FcpDaemon, fcpMissing, startFcpDaemon } from './fcp.js';
import { FCP_SSH_TOOL_IDS, fcpSshTools, loopbackSshRoute, sshLoginTool, wanSshRoute } from './fcp-ssh.js';
import { installSignalCleanup, runCleanups, startService } from './proc.js';
import { type CellResult, median, type ScenarioResult, scenarioTable } from './report.js';
import { aptInstall, type PrivateSshd, SSHD, startPrivateSshd } from './sshd.js';
import { mountTmpfs, prefault } from './tmpfs.js';
import {
  cpTool,
  type Endpoints,
  fcpPullTool,
  fcpPushTool,
  type RunContext,
  rawTool,
  type SshRoute,
  sshPeers,
  type Tool,
  which,
} from './tools.js';
import { formatBytes, formatRate, parseBytes, parseRate } from './units.js';
import { checkTreeFull, checkTreeSampled } from './verify-tree.js';
import { RAW_STREAM_JS, verifyWan, type WanModel, wanProxyArgs, wanTable } from './verify-wan.js';

type Kind = 'copy' | 'nochange' | 'conns' | 'wan-check';

interface Scenario {
  id: string;
  kind: Kind;
  wan: boolean;
  dataset?: DatasetName;
  title: string;
}

const SCENARIOS: Scenario[] = [
  { id: 'wan-check', kind: 'wan-check', wan: true, title: 'raw TCP through the WAN emulator vs its model' },
  { id: 'loop-big', kind: 'copy', wan: false, dataset: 'big', title: 'one big file over loopback' },
  { id: 'loop-medium', kind: 'copy', wan: false, dataset: 'medium', title: '64 medium files over loopback' },
  { id: 'loop-small', kind: 'copy', wan: false, dataset: 'small', title: 'many small files over loopback' },
  { id: 'wan-big', kind: 'copy', wan: true, dataset: 'big', title: 'one big file through the WAN emulator' },
  {
    id: 'wan-medium',
    kind: 'copy',
    wan: true,
    dataset: 'medium',
    title: '64 medium files through the WAN emulator',
  },
  {
    id: 'wan-small',
    kind: 'copy',
    wan: true,
    dataset: 'small',
    title: 'many small files through the WAN emulator',
  },
  {
    id: 'wan-one',
    kind: 'copy',
    wan: true,
    dataset: 'one',
    title: 'one 16 KiB file through the WAN emulator: start-up and round trips',
  },
  {
    id: 'loop-nochange-small',
    kind: 'nochange',
    wan: false,
    dataset: 'small',
    title: 're-run of the small set onto an identical copy, loopback',
  },
  {
    id: 'wan-nochange-small',
    kind: 'nochange',
    wan: true,
    dataset: 'small',
    title: 're-run of the small set onto an identical copy, WAN emulator',
  },
  {
    id: 'wan-big-conns',
    kind: 'conns',
    wan: true,
    dataset: 'big',
    title:
      'fcp with 1-16 connections on the big file through the WAN emulator, vs raw TCP with as many streams',
  },
];

const CONN_STEPS = [1, 2, 4, 8, 16];
/** Destinations of data sets from this size up are pre-faulted before every run (see prefault()). */
const PREFAULT_MIN_BYTES = 64 * 1024 * 1024;

interface Settings {
  scale: number;
  runs: number;
  conns: number;
  timeoutMs: number;
  budgetMs: number;
  model: WanModel;
  scenarios: Scenario[];
  /** Tool-id prefixes to run; empty runs every tool. */
  tools: string[];
  cacheDir: string;
  install: boolean;
  outFile: string;
  checkSeconds: number;
}

const USAGE = `usage: npm run bench -- [--only ID[,ID...]] [--tools T[,T...]] [--quick] [--runs N] [--scale X] [--conns N] [--list]
  --only     scenario ids, or a word that selects every id containing it (e.g. "small", "wan")
  --tools    only these rows: tool ids or prefixes (fcp, fcp-pull, fcp-ssh, scp, rsync, tar-ssh, rclone,
             lftp, cp, raw)
  --quick    scale 0.02, 1 run, short timeouts (FCP_BENCH_SCALE still wins)
  env: FCP_BENCH_DATA (cache dir, default .bench-data), FCP_BENCH_SCALE (1), FCP_BENCH_RUNS (3),
       FCP_BENCH_CONNS (8), FCP_BENCH_TIMEOUT (s per run, 300), FCP_BENCH_BUDGET (minutes, 240),
       FCP_BENCH_RTT (ms, 40), FCP_BENCH_WINDOW (4MiB), FCP_BENCH_LINK (2Gbit), FCP_BENCH_INSTALL=1
       (apt-get install openssh-server rsync when sshd is missing and running as root)`;

function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number(v);
}

function selectScenarios(only: string | undefined): Scenario[] {
  if (only === undefined || only === '') return SCENARIOS;
  const picked = new Set<Scenario>();
  for (const token of only.split(',').map((t) => t.trim())) {
    const exact = SCENARIOS.find((s) => s.id === token);
    const matches = exact ? [exact] : SCENARIOS.filter((s) => `-${s.id}-`.includes(`-${token}-`));
    if (matches.length === 0) throw new Error(`no scenario matches ${JSON.stringify(token)} (see --list)`);
    for (const m of matches) picked.add(m);
  }
  return SCENARIOS.filter((s) => picked.has(s));
}

function parseSettings(argv: string[]): Settings | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      tools: { type: 'string' },
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      scale: { type: 'string' },
      conns: { type: 'string' },
      out: { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return undefined;
  }
  if (values.list) {
    for (const s of SCENARIOS) console.log(`${s.id.padEnd(22)} ${s.title}`);
    return undefined;
  }
  const quick = values.quick;
  return {
    scale: Number(values.scale ?? process.env['FCP_BENCH_SCALE'] ?? (quick ? 0.02 : 1)),
    runs: Math.max(1, Math.min(20, Number(values.runs ?? envNumber('FCP_BENCH_RUNS', quick ? 1 : 3)))),
    conns: Number(values.conns ?? envNumber('FCP_BENCH_CONNS', 8)),
    timeoutMs: envNumber('FCP_BENCH_TIMEOUT', quick ? 120 : 300) * 1000,
    budgetMs: envNumber('FCP_BENCH_BUDGET', 240) * 60_000,
    model: {
      rttMs: envNumber('FCP_BENCH_RTT', 40),
      windowBytes: parseBytes(process.env['FCP_BENCH_WINDOW'] ?? '4MiB'),
      linkRateBps: parseRate(process.env['FCP_BENCH_LINK'] ?? '2Gbit'),
    },
    scenarios: selectScenarios(values.only),
    tools: (values.tools ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== ''),
    cacheDir: defaultCacheDir(),
    install: process.env['FCP_BENCH_INSTALL'] === '1',
    outFile: values.out ?? fileURLToPath(new URL('../../bench/results/latest.md', import.meta.url)),
    checkSeconds: quick ? 1 : 3,
  };
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** Reads every file once so sources come from the page cache, not the disk, in every run. */
async function warm(dir: string): Promise<void> {
  const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await warm(p);
    else if (entry.isFile()) {
      const fh = await open(p, 'r');
      try {
        let n = 1;
        while (n > 0) n = (await fh.read(buf, 0, buf.length)).bytesRead;
      } finally {
        await fh.close();
      }
    }
  }
}

/** Everything the scenarios share: daemons, sshd, sink, and WAN proxies in front of each. */
class Rig {
  sshd: PrivateSshd | string = 'not started';
  push: FcpDaemon | string = 'not started';
  pull: FcpDaemon | string = 'not started';
  sinkPort: number | undefined;
  readonly #proxies = new Map<number, number>();
  readonly #sshRoutes = new Map<boolean, SshRoute>();

  constructor(
    readonly settings: Settings,
    readonly destRoot: string,
  ) {}

  async start(need: { peers: boolean; fcp: boolean; sink: boolean }): Promise<void> {
    if (need.peers) {
      if (!existsSync(SSHD) && this.settings.install) aptInstall(['openssh-server', 'rsync']);
      const r = await startPrivateSshd();
      this.sshd = r.ok ? r.sshd : r.reason;
      log(r.ok ? `sshd: 127.0.0.1:${r.sshd.port}` : `sshd: ${r.reason}; ssh peers skipped`);
    }
    if (need.fcp) {
      const missing = fcpMissing();
      this.push = missing ?? (await this.#daemon(this.destRoot));
      this.pull = missing ?? (await this.#daemon(this.settings.cacheDir));
      if (missing !== undefined) log(missing);
    }
    if (need.sink) {
      const { ready } = await startService(process.execPath, [RAW_STREAM_JS, 'sink'], {
        readyEvent: 'listening',
      });
      this.sinkPort = Number(ready['port']);
    }
  }

  async #daemon(root: string): Promise<FcpDaemon | string> {
    try {
      return await startFcpDaemon(root);
    } catch (err) {
      return `fcpd did not start: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  /** Stand-in reason for a daemon that has died since it started. */
  daemon(which: 'push' | 'pull'): FcpDaemon | string {
    const d = this[which];
    if (typeof d === 'string') return d;
    return d.service.child.exitCode === null && d.service.child.signalCode === null ? d : 'fcpd exited';
  }

  async #proxy(target: number | undefined): Promise<number | undefined> {
    if (target === undefined) return undefined;
    const known = this.#proxies.get(target);
    if (known !== undefined) return known;
    const { ready } = await startService(process.execPath, wanProxyArgs(this.settings.model, target), {
      readyEvent: 'listening',
    });
    const port = Number(ready['port']);
    this.#proxies.set(target, port);
    return port;
  }

  /** fcp --ssh's route on this path, made (emulators started) on first use. */
  async #sshRoute(wan: boolean): Promise<SshRoute | undefined> {
    if (typeof this.sshd === 'string') return undefined;
    const known = this.#sshRoutes.get(wan);
    if (known !== undefined) return known;
    const route = wan ? await wanSshRoute(this.sshd, this.settings.model) : await loopbackSshRoute(this.sshd);
    this.#sshRoutes.set(wan, route);
    return route;
  }

  async endpoints(wan: boolean): Promise<Endpoints> {
    const direct: Endpoints = {
      sshPort: typeof this.sshd === 'string' ? undefined : this.sshd.port,
      fcpSsh: await this.#sshRoute(false),
      fcpPushPort: typeof this.push === 'string' ? undefined : this.push.port,
      fcpPullPort: typeof this.pull === 'string' ? undefined : this.pull.port,
      sinkPort: this.sinkPort,
    };
    if (!wan) return direct;
    return {
      sshPort: await this.#proxy(direct.sshPort),
      fcpSsh: await this.#sshRoute(true),
      fcpPushPort: await this.#proxy(direct.fcpPushPort),
      fcpPullPort: await this.#proxy(direct.fcpPullPort),
      sinkPort: await this.#proxy(direct.sinkPort),
    };
  }
}

const SSH_TOOL_IDS = ['scp', 'rsync', 'tar-ssh', 'rclone', 'lftp', 'ssh-login', ...FCP_SSH_TOOL_IDS];
/** Where fcp over ssh gets rows: the issue's three figures (bytes, files, one-file latency) through the WAN. */
const FCP_SSH_SCENARIOS = new Set(['wan-big', 'wan-small', 'wan-one']);

/** A tool is wanted when --tools is empty or names it, or a prefix of it ("fcp" covers every fcp-*). */
function wantsTool(wanted: string[], id: string): boolean {
  return wanted.length === 0 || wanted.some((w) => id === w || id.startsWith(`${w}-`));
}

function toolsFor(s: Scenario, rig: Rig, conns: number): Tool[] {
  const push = fcpPushTool(() => rig.daemon('push'));
  const pull = fcpPullTool(() => rig.daemon('pull'));
  const peers = sshPeers(rig.sshd);
  const overSsh = FCP_SSH_SCENARIOS.has(s.id)
    ? [
        ...fcpSshTools({ push: rig.destRoot, pull: rig.settings.cacheDir }),
        ...(s.dataset === 'one' ? [sshLoginTool] : []),
      ]
    : [];
  if (s.kind === 'conns') {
    return CONN_STEPS.flatMap((n) => [fcpPushTool(() => rig.daemon('push'), n), rawTool(n)]);
  }
  const local = s.wan ? [] : [cpTool];
  // One small file: latency, where encryption and raw streams say nothing.
  if (s.kind === 'nochange' || s.dataset === 'one') return [push, pull, ...overSsh, ...peers, ...local];
  // Encryption on and off, side by side, where bytes dominate.
  const plain =
    s.dataset === 'small' ? [] : [fcpPushTool(() => rig.daemon('push'), undefined, { plaintext: true })];
  const raw = conns === 1 ? [rawTool(1)] : [rawTool(1), rawTool(conns)];
  return [push, ...plain, pull, ...overSsh, ...peers, ...local, ...raw];
}

function lastLine(text: string): string {
  const lines = text
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '');
  return (lines[lines.length - 1] ?? '').slice(0, 160);
}

class Harness {
  readonly #t0 = performance.now();
  #cellSeq = 0;

  constructor(
    readonly settings: Settings,
    readonly rig: Rig,
    readonly destRoot: string,
  ) {}

  #overBudget(): boolean {
    return performance.now() - this.#t0 > this.settings.budgetMs;
  }

  async runCell(
    s: Scenario,
    tool: Tool,
    dataset: Dataset,
    net: Endpoints,
    conns: number,
  ): Promise<CellResult> {
    const cell: CellResult = {
      toolId: tool.id,
      label: tool.label,
      direction: tool.direction,
      status: 'ok',
      seconds: [],
      warnings: [],
    };
    const missing = tool.missing(net);
    if (missing !== undefined) return { ...cell, status: 'skipped', reason: missing };
    // A new destination path for every run, so that no run can meet (and skip) what an earlier one left.
    // (fcpd once failed with ENOENT on a path it wrote earlier that was deleted since; it no longer does.)
    const parent = path.join(this.destRoot, `dst-${++this.#cellSeq}`);
    const ctx: RunContext = {
      dataset,
      src: dataset.dir,
      dst: path.join(parent, path.basename(dataset.dir)),
      conns,
      net,
      timeoutMs: this.settings.timeoutMs,
    };
    let runSeq = 0;
    const fresh = async (): Promise<void> => {
      await rm(path.dirname(ctx.dst), { recursive: true, force: true });
      ctx.dst = path.join(parent, `run-${++runSeq}`, path.basename(dataset.dir));
      mkdirSync(path.dirname(ctx.dst), { recursive: true });
      if (tool.writesTree && dataset.bytes >= PREFAULT_MIN_BYTES) prefault(this.destRoot, dataset.bytes);
    };
    const warnings = new Set<string>();
    await fresh();
    // A no-change run first makes the copy (untimed), then times copies onto it.
    const attempts = s.kind === 'nochange' ? this.settings.runs + 1 : this.settings.runs;
    try {
      for (let i = 0; i < attempts; i++) {
        if (this.#overBudget()) return { ...cell, status: 'skipped', reason: 'time budget spent' };
        const timed = s.kind !== 'nochange' || i > 0;
        if (s.kind !== 'nochange') await fresh();
        const run = await tool.run(ctx);
        const r = run.result;
        const what = timed ? `run ${cell.seconds.length + 1}/${this.settings.runs}` : 'populate';
        if (r.timedOut) {
          log(`[${s.id}] ${tool.label} ${what}: timed out after ${this.settings.timeoutMs / 1000} s`);
          return { ...cell, status: 'timeout', reason: `> ${this.settings.timeoutMs / 1000} s` };
        }
        if (r.code !== 0) {
          log(`[${s.id}] ${tool.label} ${what}: exit ${r.code ?? r.signal}: ${r.stderr.trim().slice(-400)}`);
          return { ...cell, status: 'failed', reason: `exit ${r.code ?? r.signal}: ${lastLine(r.stderr)}` };
        }
        if (tool.writesTree) {
          const check =
            dataset.name === 'small' || dataset.name === 'one'
              ? await checkTreeFull(ctx.src, ctx.dst)
              : await checkTreeSampled(ctx.src, ctx.dst);
          if (check.errors.length > 0) {
            log(`[${s.id}] ${tool.label} ${what}: verify failed: ${check.errors.join('; ')}`);
            return { ...cell, status: 'failed', reason: `verify: ${check.errors[0]}` };
          }
          for (const w of check.warnings) warnings.add(w);
        }
        if (!tool.writesTree) warnings.add(tool.note ?? 'bytes only, no tree written');
        const seconds = tool.writesTree ? r.seconds : rawSeconds(r.stdout, r.seconds);
        log(`[${s.id}] ${tool.label} ${what}: ${seconds.toFixed(2)} s`);
        if (!timed) continue;
        cell.seconds.push(seconds);
        cell.clientRssKb = maxDefined(cell.clientRssKb, run.clientRssKb);
        cell.daemonRssKb = maxDefined(cell.daemonRssKb, run.daemonRssKb);
      }
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
    cell.warnings = [...warnings];
    cell.medianS = median(cell.seconds);
    if (cell.medianS !== undefined) {
      cell.mbps = dataset.bytes / cell.medianS / 1e6;
      cell.filesPerS = dataset.files / cell.medianS;
    }
    return cell;
  }

  async runScenario(s: Scenario, datasets: Map<DatasetName, Dataset>): Promise<ScenarioResult> {
    const dataset = s.dataset === undefined ? undefined : datasets.get(s.dataset);
    if (dataset === undefined) throw new Error(`scenario ${s.id} has no data set`);
    const net = await this.rig.endpoints(s.wan);
    log(`[${s.id}] warming the page cache with ${dataset.dir}`);
    await warm(dataset.dir);
    const conns = this.settings.conns;
    const cells: CellResult[] = [];
    const wanted = this.settings.tools;
    const tools = toolsFor(s, this.rig, conns).filter((t) => wantsTool(wanted, t.id));
    for (const tool of tools) cells.push(await this.runCell(s, tool, dataset, net, conns));
    addRatios(s, cells);
    const where = s.wan ? `through the WAN emulator (${modelText(this.settings.model)})` : 'over loopback';
    return {
      id: s.id,
      title: `${describeDataset(dataset)}, ${where}, ${s.kind === 'conns' ? 'varying -n' : `-n ${conns}`}`,
      smallFiles: dataset.name === 'small',
      cells,
      notes: [],
    };
  }
}

function rawSeconds(stdout: string, fallback: number): number {
  try {
    const out = JSON.parse(lastLine(stdout)) as { seconds?: number };
    return out.seconds ?? fallback;
  } catch {
    return fallback;
  }
}

function maxDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

/** Each peer against fcp in its own direction (pull peers against fcp pull when that ran). */
function addRatios(s: Scenario, cells: CellResult[]): void {
  const byId = new Map(cells.map((c) => [c.toolId, c]));
  for (const c of cells) {
    if (c.mbps === undefined) continue;
    let base: CellResult | undefined;
    if (s.kind === 'conns')
      base = c.toolId.startsWith('fcp-n') ? byId.get(c.toolId.replace('fcp-n', 'raw-x')) : undefined;
    else if (c.toolId === 'fcp' || c.toolId === 'fcp-pull') base = undefined;
    else if (c.direction === 'pull' && byId.get('fcp-pull')?.mbps !== undefined) base = byId.get('fcp-pull');
    else base = byId.get('fcp');
    if (base?.mbps === undefined) continue;
    c.ratio = c.mbps / base.mbps;
    c.ratioTo = base.toolId === 'fcp' ? 'fcp' : base.label;
  }
}

function modelText(m: WanModel): string {
  return `RTT ${m.rttMs} ms, window ${formatBytes(m.windowBytes)}/connection, link ${formatRate(m.linkRateBps)}`;
}

function describeDataset(d: Dataset): string {
  const extra = d.symlinks > 0 ? `, ${d.symlinks} symlinks, ${d.dirs} dirs` : '';
  return `${d.name}: ${d.files} file${d.files === 1 ? '' : 's'}, ${formatBytes(d.bytes)}${extra}`;
}

function machineLines(settings: Settings, destNote: string, datasets: Dataset[]): string[] {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  const installed = (c: string): boolean => (c === 'sshd' ? existsSync(SSHD) : which(c) !== undefined);
  const peers = ['sshd', 'scp', 'rsync', 'rclone', 'lftp']
    .map((c) => (installed(c) ? c : `${c} (not installed)`))
    .join(', ');
  return [
    `- date: ${new Date().toISOString()}`,
    `- machine: ${os.availableParallelism()} cores (nproc) ${cpu}, ${formatBytes(os.totalmem())} RAM, ` +
      `Linux ${os.release()}, Node ${process.version}`,
    `- ${destNote}; sources in ${settings.cacheDir}, read once before each scenario (page cache)`,
    `- settings: scale ${settings.scale}, ${settings.runs} run(s) per cell (median), -n ${settings.conns}, ` +
      `per-run timeout ${settings.timeoutMs / 1000} s`,
    `- WAN emulator (bench/wan-proxy.ts): ${modelText(settings.model)}; client, daemon and emulator share the cores`,
    `- data sets: ${datasets.map(describeDataset).join('; ')}`,
    `- tools: ${peers}`,
  ];
}

async function main(): Promise<number> {
  const settings = parseSettings(process.argv.slice(2));
  if (settings === undefined) return 0;
  installSignalCleanup();
  const needed = new Set(settings.scenarios.flatMap((s) => (s.dataset === undefined ? [] : [s.dataset])));
  const datasets = new Map<DatasetName, Dataset>();
  for (const name of needed) {
    const t = performance.now();
    log(`data set ${name} (scale ${settings.scale}) in ${settings.cacheDir} ...`);
    const d = await ensureDataset(name, settings.scale, settings.cacheDir);
    datasets.set(name, d);
    log(`  ${describeDataset(d)} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  }
  const biggest = Math.max(0, ...[...datasets.values()].map((d) => d.bytes));
  const mount = mountTmpfs({ sizeBytes: Math.min(biggest * 1.5 + 1024 ** 3, os.totalmem() * 0.5) });
  log(mount.note);
  const copyScenarios = settings.scenarios.filter((s) => s.kind !== 'wan-check');
  const rig = new Rig(settings, mount.dir);
  await rig.start({
    peers:
      copyScenarios.some((s) => s.kind !== 'conns') &&
      SSH_TOOL_IDS.some((id) => wantsTool(settings.tools, id)),
    fcp: copyScenarios.length > 0,
    sink: copyScenarios.some((s) => s.kind !== 'nochange'),
  });
  const harness = new Harness(settings, rig, mount.dir);
  const sections: string[] = [];
  for (const s of settings.scenarios) {
    if (s.kind === 'wan-check') {
      log('[wan-check] measuring raw TCP through the emulator');
      const rows = await verifyWan(settings.model, settings.checkSeconds);
      sections.push(`### wan-check: ${s.title}\n\n${wanTable(settings.model, rows)}`);
    } else {
      sections.push(scenarioTable(await harness.runScenario(s, datasets)));
    }
    process.stdout.write(`\n${sections[sections.length - 1]}\n`);
  }
  const report = [
    '# fcp benchmark results',
    '',
    ...machineLines(settings, mount.note, [...datasets.values()]),
    '',
    'MB/s is 10^6 bytes of file data per second of wall time (process start to exit, ssh handshakes and',
    'node start-up included); "vs fcp" is the tool\'s MB/s over fcp\'s in the same direction from the same run',
    '(above 1 = faster than fcp). See bench/README.md.',
    '',
    sections.join('\n\n'),
    '',
  ].join('\n');
  mkdirSync(path.dirname(settings.outFile), { recursive: true });
  writeFileSync(settings.outFile, report);
  log(`\nwritten to ${settings.outFile}`);
  return 0;
}

// Nothing here can reject: the .catch turns a failed main into exit 1, and runCleanups reports each failing
// cleanup itself and never rejects.
void main()
  .catch((err: unknown) => {
    console.error(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  })
  .then(async (code) => {
    await runCleanups();
    process.exit(code);
  });
