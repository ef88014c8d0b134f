/** The bench's markdown: a header with the machine and settings, then one table per scenario. */
import { existsSync } from 'node:fs';
import os from 'node:os';
import type { Dataset } from './datasets.js';
import type { Settings } from './settings.js';
import { SSHD } from './sshd.js';
import { which } from './proc.js';
import type { Direction } from './tools.js';
import { formatBytes, formatRate } from './units.js';
import type { WanModel } from './verify-wan.js';

export interface CellResult {
  toolId: string;
  label: string;
  direction: Direction;
  status: 'ok' | 'skipped' | 'failed' | 'timeout';
  /** Why skipped or failed. */
  reason?: string;
  /** Seconds of each timed run that completed and verified: the process's wall time, start to exit. */
  seconds: number[];
  /** The same runs' data time by the tool's own count, where it says (ToolRun.sessionSeconds). */
  sessionSeconds: number[];
  /** CPU seconds (user + sys) of each timed run: the client's process tree, and the server's share. */
  clientCpu: number[];
  serverCpu: number[];
  /** The data connections fcp used in each run (its --json summary), when it says. */
  conns: number[];
  medianS?: number;
  clientCpuS?: number;
  serverCpuS?: number;
  mbps?: number;
  /** The data set's bytes over the median of sessionSeconds. */
  sessionMbps?: number;
  filesPerS?: number;
  /** This tool's speed over the baseline's (fcp in the same direction), from the same scenario run. */
  ratio?: number;
  ratioTo?: string;
  clientRssKb?: number;
  daemonRssKb?: number;
  warnings: string[];
}

export interface ScenarioResult {
  id: string;
  title: string;
  smallFiles: boolean;
  cells: CellResult[];
  notes: string[];
}

export function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** One decimal; two significant digits below 1 MB/s (the one-file scenario's 0.048). */
function formatMbps(mbps: number): string {
  return mbps < 1 ? mbps.toPrecision(2) : mbps.toFixed(1);
}

function mib(kb: number | undefined): string {
  return kb === undefined ? '' : (kb / 1024).toFixed(0);
}

function statusText(c: CellResult): string {
  if (c.status === 'ok') return c.warnings.length === 0 ? 'ok' : `ok; ${c.warnings.join('; ')}`;
  return `${c.status === 'timeout' ? 'timeout' : c.status}${c.reason ? `: ${c.reason}` : ''}`;
}

function cpu(s: number | undefined): string {
  return s === undefined ? '' : s.toFixed(2);
}

/** fcp's connection count: one figure, or the range when runs differ; `-` when fcp does not say. */
function connsText(c: CellResult): string {
  if (!c.toolId.startsWith('fcp')) return '';
  if (c.conns.length === 0) return c.seconds.length === 0 ? '' : '-';
  const lo = Math.min(...c.conns);
  const hi = Math.max(...c.conns);
  return lo === hi ? String(lo) : `${lo}-${hi}`;
}

const HEAD = [
  'tool',
  'dir',
  'median s',
  'MB/s',
  'session MB/s',
  'files/s',
  'vs fcp',
  'CPU client s',
  'CPU server s',
  'conns',
];
const TAIL = ['runs (s)', 'RSS client / daemon MiB', 'check'];
const ALIGN: Record<string, string> = { tool: '---', dir: '---', 'runs (s)': '---', check: '---' };

export function scenarioTable(s: ScenarioResult): string {
  const names = [...HEAD.filter((h) => s.smallFiles || h !== 'files/s'), ...TAIL];
  const head = `| ${names.join(' | ')} |`;
  const align = `| ${names.map((n) => ALIGN[n] ?? '---:').join(' | ')} |`;
  const lines = [`### ${s.id}: ${s.title}`, '', head, align];
  for (const c of s.cells) {
    const ok = c.medianS !== undefined;
    const cols = [
      c.label,
      c.direction,
      ok ? c.medianS?.toFixed(2) : '',
      ok && c.mbps !== undefined ? formatMbps(c.mbps) : '',
      ok && c.sessionMbps !== undefined ? formatMbps(c.sessionMbps) : '',
      ...(s.smallFiles ? [ok ? c.filesPerS?.toFixed(0) : ''] : []),
      c.ratio === undefined ? '' : `${c.ratio.toFixed(2)}x${c.ratioTo === 'fcp' ? '' : ` (${c.ratioTo})`}`,
      ok ? cpu(c.clientCpuS) : '',
      ok ? cpu(c.serverCpuS) : '',
      connsText(c),
      c.seconds.map((x) => x.toFixed(2)).join(', '),
      c.clientRssKb === undefined && c.daemonRssKb === undefined
        ? ''
        : `${mib(c.clientRssKb)} / ${mib(c.daemonRssKb)}`,
      statusText(c),
    ];
    lines.push(`| ${cols.map((x) => (x ?? '').replace(/\|/g, '\\|')).join(' | ')} |`);
  }
  for (const n of s.notes) lines.push('', n);
  return lines.join('\n');
}

export function modelText(m: WanModel): string {
  return `RTT ${m.rttMs} ms, window ${formatBytes(m.windowBytes)}/connection, link ${formatRate(m.linkRateBps)}`;
}

export function describeDataset(d: Dataset): string {
  const extra = d.symlinks > 0 ? `, ${d.symlinks} symlinks, ${d.dirs} dirs` : '';
  return `${d.name}: ${d.files} file${d.files === 1 ? '' : 's'}, ${formatBytes(d.bytes)}${extra}`;
}

export function machineLines(settings: Settings, destNote: string, datasets: Dataset[]): string[] {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  const installed = (c: string): boolean => (c === 'sshd' ? existsSync(SSHD) : which(c) !== undefined);
  const peers = ['sshd', 'scp', 'rsync', 'rclone', 'lftp', 'iperf3', 'taskset']
    .map((c) => (installed(c) ? c : `${c} (not installed)`))
    .join(', ');
  return [
    `- date: ${new Date().toISOString()}`,
    `- machine: ${os.availableParallelism()} cores (nproc) ${cpu}, ${formatBytes(os.totalmem())} RAM, ` +
      `Linux ${os.release()}, Node ${process.version}`,
    `- ${destNote}; sources in ${settings.cacheDir}, read once before each scenario (page cache)`,
    `- ${settings.pin.note}`,
    `- settings: scale ${settings.scale}, one untimed warm-up run per tool then ${settings.runs} interleaved ` +
      `round(s) (median), fcp ${settings.fcpConns === undefined ? 'with its default -n' : `-n ${settings.fcpConns}`}, ` +
      `peers and raw TCP ${settings.conns} streams, per-run timeout ${settings.timeoutMs / 1000} s`,
    ...(settings.baseline === undefined
      ? []
      : [`- baseline rows: ${settings.baseline.clientJs} and its fcpd`]),
    `- WAN emulator (bench/wan-proxy.ts): ${modelText(settings.model)}; client, daemon and emulator share the cores`,
    `- data sets: ${datasets.map(describeDataset).join('; ')}`,
    `- tools: ${peers}`,
  ];
}
