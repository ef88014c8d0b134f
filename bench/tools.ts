/**
 * The tools the bench times: fcp (push and pull, this build and the baseline's) and the references (cp -a,
 * raw TCP); the ssh-based peers are in ssh-peers.ts, iperf3 in iperf.ts. Each tool turns a run context into
 * a command; the harness times, verifies and tabulates. Commands that copy a tree all produce `ctx.dst`
 * holding the contents of `ctx.src`, so one verifier fits all.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GNU_TIME_FORMAT, parseTimeFile } from './cpu.js';
import type { Dataset } from './datasets.js';
import {
  type FcpBuild,
  type FcpDaemon,
  fcpClientEnv,
  fcpPullArgs,
  fcpPushArgs,
  sessionSeconds,
  summaryConnections,
} from './fcp.js';
import { type Pinning, pinned, UNPINNED } from './pin.js';
import {
  GNU_TIME,
  haveGnuTime,
  peakRssKb,
  type RunOptions,
  type RunResult,
  resetPeakRss,
  runTimed,
  which,
} from './proc.js';
import { RAW_STREAM_JS } from './verify-wan.js';

/** Which way the data goes: peers whose parallel modes only download (rclone, lftp) are timed as pulls. */
export type Direction = 'push' | 'pull' | 'local' | 'wire';

/** How fcp over ssh (bench/fcp-ssh.ts) reaches the sshd and its one-session fcpd on one network path. */
export interface SshRoute {
  /** ssh config in which fcp's host alias points at sshd, or at the emulator in front of it. */
  configFile: string;
  /** The port the remote fcpd is told to bind on 127.0.0.1 (fixed: an emulator must know it). */
  fcpdPort: number;
}

/** Endpoints on one network path: loopback direct, or through the WAN emulator. */
export interface Endpoints {
  sshPort?: number;
  fcpSsh?: SshRoute;
  fcpPushPort?: number;
  fcpPullPort?: number;
  baselinePushPort?: number;
  baselinePullPort?: number;
  sinkPort?: number;
  iperfPort?: number;
}

export interface RunContext {
  dataset: Dataset;
  /** The data set's directory. */
  src: string;
  /** Destination directory (its parent exists; it may exist already for a no-change run). */
  dst: string;
  /** Streams for the peers that take a count (rclone, lftp). */
  conns: number;
  /** fcp's -n, or undefined to let fcp choose. */
  fcpConns: number | undefined;
  net: Endpoints;
  timeoutMs: number;
  pin: Pinning;
}

export interface ToolRun {
  result: RunResult;
  /** The run's time when the process's wall time would say nothing (iperf3 runs for a fixed time). */
  seconds?: number;
  /**
   * The data's time by the tool's own count, process start and login left out: fcp from its `start` line
   * to its `summary` line, raw TCP from its first connect to its last close, iperf3 its receiver's. Beside
   * the wall time, not instead of it (bench/README.md "Columns").
   */
  sessionSeconds?: number;
  /** user + sys of the client's process tree. */
  clientCpuS?: number;
  clientRssKb?: number;
  daemonRssKb?: number;
  /** The data connections fcp used (its --json summary), when it says. */
  conns?: number;
  /** Both sides' CPU seconds are multiplied by this: a run that moved other than the data set's bytes (iperf3 -t). */
  cpuScale?: number;
}

export interface Tool {
  id: string;
  label: string;
  direction: Direction;
  /** False for the raw TCP reference, which moves bytes but writes no tree. */
  writesTree: boolean;
  /** What the check column says of a tool that writes no tree; default "bytes only, no tree written". */
  note?: string;
  /** Undefined when the tool can run here, else why not ("not installed", "fcp not built"). */
  missing(net: Endpoints): string | undefined;
  /** The standing server process whose CPU the run costs (fcpd, sshd, a sink), if any. */
  server?(): number | undefined;
  run(ctx: RunContext): Promise<ToolRun>;
}

export function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function notInstalled(...cmds: string[]): string | undefined {
  const absent = cmds.filter((c) => which(c) === undefined);
  return absent.length === 0 ? undefined : `skipped (not installed: ${absent.join(', ')})`;
}

export interface MeasuredRun {
  result: RunResult;
  cpuS?: number;
  rssKb?: number;
}

/**
 * Runs a client command, pinned as `pin` says, under GNU time (when present) for the CPU seconds (user +
 * sys) and peak RSS of it and every descendant it waited for. `onSpawn` gets the pid of the process
 * started, which is GNU time's when it is present.
 */
export async function runClient(
  pin: Pinning,
  cmd: string,
  args: string[],
  opts: RunOptions,
): Promise<MeasuredRun> {
  const [command, argv] = pinned(pin.client, cmd, args);
  if (!haveGnuTime()) return { result: await runTimed(command, argv, opts) };
  const dir = mkdtempSync(path.join(tmpdir(), 'fcp-bench-time-'));
  try {
    const out = path.join(dir, 'time.txt');
    const result = await runTimed(GNU_TIME, ['-f', GNU_TIME_FORMAT, '-o', out, command, ...argv], opts);
    return { result, ...(existsSync(out) ? parseTimeFile(readFileSync(out, 'utf8')) : {}) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A node entry point run unpinned under GNU time: its peak RSS (huge-tree.ts). */
export async function runNodeMeasured(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  onSpawn?: (pid: number) => void,
): Promise<{ result: RunResult; rssKb?: number }> {
  const { result, rssKb } = await runClient(UNPINNED, process.execPath, args, { timeoutMs, env, onSpawn });
  return { result, rssKb };
}

/** On failure, appends what the daemon logged during the run (approximate once its log tail has wrapped). */
function withDaemonLog(result: RunResult, d: FcpDaemon, logLengthBefore: number): RunResult {
  if (result.code === 0) return result;
  const log = d.service.stderrTail().slice(logLengthBefore).trim();
  return log === '' ? result : { ...result, stderr: `${result.stderr}\nfcpd log:\n${log}` };
}

function livePid(d: FcpDaemon | string): number | undefined {
  return typeof d === 'string' ? undefined : d.service.pid;
}

/**
 * An fcp row: the client run with --json against `daemon`, with CPU and peak RSS on both sides, the
 * connections it used, and on failure the daemon's log.
 */
function fcpTool(
  meta: Pick<Tool, 'id' | 'label' | 'direction'>,
  daemon: () => FcpDaemon | string,
  port: (net: Endpoints) => number | undefined,
  args: (ctx: RunContext, port: number) => string[],
): Tool {
  return {
    ...meta,
    writesTree: true,
    missing: (net) => {
      const d = daemon();
      if (typeof d === 'string') return d;
      return port(net) === undefined ? 'no route to fcpd' : undefined;
    },
    server: () => livePid(daemon()),
    run: async (ctx) => {
      const d = daemon() as FcpDaemon;
      resetPeakRss(d.service.pid);
      const logLength = d.service.stderrTail().length;
      const run = await runClient(ctx.pin, process.execPath, args(ctx, port(ctx.net) ?? 0), {
        timeoutMs: ctx.timeoutMs,
        env: fcpClientEnv(d),
        stdoutTail: true,
      });
      return {
        result: withDaemonLog(run.result, d, logLength),
        clientCpuS: run.cpuS,
        clientRssKb: run.rssKb,
        daemonRssKb: peakRssKb(d.service.pid),
        conns: summaryConnections(run.result.stdout),
        sessionSeconds: sessionSeconds(run.result.stdout),
      };
    },
  };
}

/** Which fcp an fcp row runs: this build against the bench's daemons, or the baseline against its own. */
export interface FcpSide {
  daemon: () => FcpDaemon | string;
  /** The baseline's build; undefined for this one. */
  baseline?: FcpBuild;
}

function sideId(side: FcpSide, id: string): string {
  return side.baseline === undefined ? id : `${id}-baseline`;
}

function sideLabel(side: FcpSide, label: string): string {
  return side.baseline === undefined ? label : `${label} (baseline)`;
}

/**
 * fcp push into the push daemon, whose root holds ctx.dst: `-n conns` when given, else the bench's fcp
 * setting (fcp's own default unless FCP_BENCH_CONNS says); `plaintext` adds --no-encryption.
 */
export function fcpPushTool(side: FcpSide, opts: { conns?: number; plaintext?: boolean } = {}): Tool {
  const plaintext = opts.plaintext === true;
  const id = opts.conns === undefined ? (plaintext ? 'fcp-plain' : 'fcp') : `fcp-n${opts.conns}`;
  const label =
    opts.conns === undefined ? (plaintext ? 'fcp --no-encryption' : 'fcp') : `fcp -n ${opts.conns}`;
  return fcpTool(
    { id: sideId(side, id), label: sideLabel(side, label), direction: 'push' },
    side.daemon,
    (net) => (side.baseline === undefined ? net.fcpPushPort : net.baselinePushPort),
    (ctx, port) =>
      fcpPushArgs(opts.conns ?? ctx.fcpConns, `${ctx.src}/`, port, ctx.dst, {
        plaintext,
        build: side.baseline,
        json: true,
      }),
  );
}

/** fcp pull from the pull daemon, whose root is the data cache. */
export function fcpPullTool(side: FcpSide): Tool {
  return fcpTool(
    { id: sideId(side, 'fcp-pull'), label: sideLabel(side, 'fcp pull'), direction: 'pull' },
    side.daemon,
    (net) => (side.baseline === undefined ? net.fcpPullPort : net.baselinePullPort),
    (ctx, port) =>
      fcpPullArgs(ctx.fcpConns, port, `${ctx.src}/`, ctx.dst, { build: side.baseline, json: true }),
  );
}

/** cp -a from the data cache to the destination file system: the local-copy ceiling. */
export const cpTool: Tool = {
  id: 'cp',
  label: 'cp -a (local)',
  direction: 'local',
  writesTree: true,
  missing: () => notInstalled('cp'),
  run: async (ctx) => {
    const run = await runClient(ctx.pin, 'cp', ['-a', ctx.src, `${path.dirname(ctx.dst)}/`], {
      timeoutMs: ctx.timeoutMs,
    });
    return { result: run.result, clientCpuS: run.cpuS };
  },
};

/** The sender's own timing from its JSON line (from the first connect to the last close). */
function rawSeconds(stdout: string): number | undefined {
  try {
    const lines = stdout.trim().split('\n');
    const out = JSON.parse(lines[lines.length - 1] ?? '') as { seconds?: number };
    return out.seconds;
  } catch {
    return undefined;
  }
}

/** Raw TCP: the data set's byte count over `streams` connections into a discarding sink (`sink` its pid). */
export function rawTool(streams: number, sink: () => number | undefined): Tool {
  return {
    id: `raw-x${streams}`,
    label: `raw TCP x${streams}`,
    direction: 'wire',
    writesTree: false,
    missing: (net) => (net.sinkPort === undefined ? 'no sink' : undefined),
    server: sink,
    run: async (ctx) => {
      const args = [
        RAW_STREAM_JS,
        'send',
        '--to',
        `127.0.0.1:${ctx.net.sinkPort}`,
        '--bytes',
        String(ctx.dataset.bytes),
        '--streams',
        String(streams),
      ];
      const run = await runClient(ctx.pin, process.execPath, args, { timeoutMs: ctx.timeoutMs });
      return {
        result: run.result,
        sessionSeconds: rawSeconds(run.result.stdout),
        clientCpuS: run.cpuS,
      };
    },
  };
}
