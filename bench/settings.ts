/** The bench's settings: command-line options and FCP_BENCH_* environment variables. */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultCacheDir } from './datasets.js';
import { buildAt, type FcpBuild, fcpMissing } from './fcp.js';
import { choosePinning, type Pinning } from './pin.js';
import { SCENARIOS, type Scenario, selectScenarios } from './scenarios.js';
import { parseBytes, parseRate } from './units.js';
import type { WanModel } from './verify-wan.js';

export interface Settings {
  scale: number;
  runs: number;
  /** Streams for rclone, lftp and raw TCP. */
  conns: number;
  /** fcp's -n: undefined (fcp chooses) unless --conns or FCP_BENCH_CONNS says. */
  fcpConns: number | undefined;
  pin: Pinning;
  /** FCP_BENCH_BASELINE's build: `fcp (baseline)` rows beside fcp's. */
  baseline: FcpBuild | undefined;
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

const USAGE = `usage: npm run bench -- [--only ID[,ID...]] [--tools T[,T...]] [--quick] [--pin] [--runs N] [--scale X] [--conns N] [--list]
  --only     scenario ids, or a word that selects every id containing it (e.g. "small", "wan")
  --tools    only these rows: tool ids or prefixes (fcp, fcp-pull, fcp-ssh, scp, rsync, tar-ssh, rclone,
             lftp, cp, raw, iperf3); "fcp" covers the baseline's rows too
  --quick    scale 0.02, 1 run, short timeouts (FCP_BENCH_SCALE still wins); output to $TMPDIR/fcp-bench-quick.md
  --pin      clients on core 0, servers on core 1 (taskset); also FCP_BENCH_PIN=1
  env: FCP_BENCH_DATA (cache dir, default .bench-data), FCP_BENCH_SCALE (1), FCP_BENCH_RUNS (3),
       FCP_BENCH_CONNS (fcp: its own default; peers: 8), FCP_BENCH_BASELINE (a checkout with dist/ built:
       adds "fcp (baseline)" rows), FCP_BENCH_TIMEOUT (s per run, 300), FCP_BENCH_BUDGET (minutes, 240),
       FCP_BENCH_RTT (ms, 40), FCP_BENCH_WINDOW (4MiB), FCP_BENCH_LINK (2Gbit), FCP_BENCH_INSTALL=1
       (apt-get install openssh-server rsync when sshd is missing and running as root),
       FCP_BENCH_REMOTE_RC=keep (ssh logins read the runner's shell rc files; default: an empty one)`;

const LATEST = fileURLToPath(new URL('../../bench/results/latest.md', import.meta.url));

function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number(v);
}

export function parseSettings(argv: string[]): Settings | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      tools: { type: 'string' },
      quick: { type: 'boolean', default: false },
      pin: { type: 'boolean', default: false },
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
  const conns = values.conns ?? process.env['FCP_BENCH_CONNS'];
  const fcpConns = conns === undefined || conns === '' ? undefined : Number(conns);
  return {
    scale: Number(values.scale ?? process.env['FCP_BENCH_SCALE'] ?? (quick ? 0.02 : 1)),
    runs: Math.max(1, Math.min(20, Number(values.runs ?? envNumber('FCP_BENCH_RUNS', quick ? 1 : 3)))),
    conns: fcpConns ?? 8,
    fcpConns,
    pin: choosePinning(values.pin || process.env['FCP_BENCH_PIN'] === '1'),
    baseline: baselineBuild(process.env['FCP_BENCH_BASELINE']),
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
    // latest.md is the last full run, which the README quotes: a quick check does not replace it.
    outFile: values.out ?? (quick ? path.join(tmpdir(), 'fcp-bench-quick.md') : LATEST),
    checkSeconds: quick ? 1 : 3,
  };
}

/** The baseline's build, or undefined when FCP_BENCH_BASELINE is unset; an unbuilt one is an error. */
function baselineBuild(dir: string | undefined): FcpBuild | undefined {
  if (dir === undefined || dir === '') return undefined;
  if (!existsSync(dir)) throw new Error(`FCP_BENCH_BASELINE: ${dir} does not exist`);
  const build = buildAt(path.resolve(dir));
  const missing = fcpMissing(build);
  if (missing !== undefined) throw new Error(`FCP_BENCH_BASELINE: ${missing} (run npm run build there)`);
  return build;
}
