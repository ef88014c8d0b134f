/**
 * Runs a scenario's cells: one untimed warm-up run per tool (for a no-change scenario, the run that makes
 * the copy), then RUNS rounds in which every tool runs once in turn (A B C, A B C, ...), so that whatever
 * else the machine does at a given minute falls on every tool alike. Each run is verified and its wall
 * time and CPU seconds per side recorded; the row shows medians.
 */
import { mkdirSync } from 'node:fs';
import { open, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { markServer, serverCpuSince } from './cpu.js';
import type { Dataset, DatasetName } from './datasets.js';
import { type CellResult, describeDataset, median, modelText, type ScenarioResult } from './report.js';
import { log, type Rig } from './rig.js';
import type { Scenario } from './scenarios.js';
import type { Settings } from './settings.js';
import { prefault } from './tmpfs.js';
import { toolsFor, wantsTool } from './tool-set.js';
import type { Endpoints, RunContext, Tool, ToolRun } from './tools.js';
import { checkTreeFull, checkTreeSampled } from './verify-tree.js';

/** Destinations of data sets from this size up are pre-faulted before every run (see prefault()). */
const PREFAULT_MIN_BYTES = 64 * 1024 * 1024;
/** Data sets checked byte for byte after every run; the others are sampled. */
const FULL_CHECK: ReadonlySet<DatasetName> = new Set(['small', 'one', 'tree']);

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

function lastLine(text: string): string {
  const lines = text
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '');
  return (lines[lines.length - 1] ?? '').slice(0, 160);
}

function maxDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

/** One tool's row while the scenario's rounds go on. */
class Lane {
  readonly cell: CellResult;
  readonly warnings = new Set<string>();
  #runSeq = 0;
  /** Set once the lane has failed, timed out or was skipped: it runs no more. */
  done = false;

  constructor(
    readonly tool: Tool,
    readonly parent: string,
    readonly ctx: RunContext,
  ) {
    this.cell = {
      toolId: tool.id,
      label: tool.label,
      direction: tool.direction,
      status: 'ok',
      seconds: [],
      sessionSeconds: [],
      clientCpu: [],
      serverCpu: [],
      conns: [],
      warnings: [],
    };
  }

  /** A new, empty destination for the next run (no run may meet, and skip, what an earlier one left). */
  async fresh(destRoot: string): Promise<void> {
    await rm(path.dirname(this.ctx.dst), { recursive: true, force: true });
    this.ctx.dst = path.join(this.parent, `run-${++this.#runSeq}`, path.basename(this.ctx.src));
    mkdirSync(path.dirname(this.ctx.dst), { recursive: true });
    const d = this.ctx.dataset;
    if (this.tool.writesTree && d.bytes >= PREFAULT_MIN_BYTES) prefault(destRoot, d.bytes);
  }

  stop(status: CellResult['status'], reason: string): void {
    this.cell.status = status;
    this.cell.reason = reason;
    this.done = true;
  }

  record(run: ToolRun, seconds: number, serverCpuS: number | undefined): void {
    const c = this.cell;
    const scale = run.cpuScale ?? 1;
    c.seconds.push(seconds);
    if (run.sessionSeconds !== undefined) c.sessionSeconds.push(run.sessionSeconds);
    if (run.clientCpuS !== undefined) c.clientCpu.push(run.clientCpuS * scale);
    if (serverCpuS !== undefined) c.serverCpu.push(serverCpuS * scale);
    if (run.conns !== undefined) c.conns.push(run.conns);
    c.clientRssKb = maxDefined(c.clientRssKb, run.clientRssKb);
    c.daemonRssKb = maxDefined(c.daemonRssKb, run.daemonRssKb);
  }

  /** Medians and rates once every round is over. */
  finish(dataset: Dataset): CellResult {
    const c = this.cell;
    c.warnings = [...this.warnings];
    if (c.status !== 'ok') return c;
    c.medianS = median(c.seconds);
    c.clientCpuS = median(c.clientCpu);
    c.serverCpuS = median(c.serverCpu);
    if (c.medianS !== undefined) {
      c.mbps = dataset.bytes / c.medianS / 1e6;
      c.filesPerS = dataset.files / c.medianS;
    }
    const session = median(c.sessionSeconds);
    if (session !== undefined) c.sessionMbps = dataset.bytes / session / 1e6;
    return c;
  }
}

export class Harness {
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

  #lane(tool: Tool, dataset: Dataset, net: Endpoints): Lane {
    const parent = path.join(this.destRoot, `dst-${++this.#cellSeq}`);
    const s = this.settings;
    return new Lane(tool, parent, {
      dataset,
      src: dataset.dir,
      dst: path.join(parent, 'run-0', path.basename(dataset.dir)),
      conns: s.conns,
      fcpConns: s.fcpConns,
      net,
      timeoutMs: s.timeoutMs,
      pin: s.pin,
    });
  }

  /**
   * One run of a lane: `round` 0 is the warm-up (or a no-change scenario's populate run) and is not
   * recorded. A copy scenario's destination is made fresh before and removed after, so the tmpfs holds one
   * copy at a time.
   */
  async #attempt(s: Scenario, lane: Lane, round: number): Promise<void> {
    const { tool, ctx } = lane;
    const nochange = s.kind === 'nochange';
    const what = round === 0 ? (nochange ? 'populate' : 'warm-up') : `run ${round}/${this.settings.runs}`;
    if (!nochange || round === 0) await lane.fresh(this.destRoot);
    const serverPid = tool.server?.();
    const mark = serverPid === undefined ? undefined : markServer(serverPid);
    const run = await tool.run(ctx);
    // After the client exits: the server's share, once its sessions are over and its children reaped.
    const serverCpuS = mark === undefined ? undefined : await serverCpuSince(mark);
    const r = run.result;
    if (r.timedOut) {
      log(`[${s.id}] ${tool.label} ${what}: timed out after ${this.settings.timeoutMs / 1000} s`);
      return lane.stop('timeout', `> ${this.settings.timeoutMs / 1000} s`);
    }
    if (r.code !== 0) {
      log(`[${s.id}] ${tool.label} ${what}: exit ${r.code ?? r.signal}: ${r.stderr.trim().slice(-400)}`);
      return lane.stop('failed', `exit ${r.code ?? r.signal}: ${lastLine(r.stderr)}`);
    }
    if (!(await this.#verified(s, lane, what))) return;
    if (!nochange) await rm(path.dirname(ctx.dst), { recursive: true, force: true });
    const seconds = run.seconds ?? r.seconds;
    const cpu = `cpu ${run.clientCpuS?.toFixed(2) ?? '-'} / ${serverCpuS?.toFixed(2) ?? '-'} s`;
    log(`[${s.id}] ${tool.label} ${what}: ${seconds.toFixed(2)} s, ${cpu}`);
    if (round > 0) lane.record(run, seconds, serverCpuS);
  }

  /** Checks the destination a run left; false (and the lane stopped) when it is wrong. */
  async #verified(s: Scenario, lane: Lane, what: string): Promise<boolean> {
    const { tool, ctx } = lane;
    if (!tool.writesTree) {
      lane.warnings.add(tool.note ?? 'bytes only, no tree written');
      return true;
    }
    const check = FULL_CHECK.has(ctx.dataset.name)
      ? await checkTreeFull(ctx.src, ctx.dst)
      : await checkTreeSampled(ctx.src, ctx.dst);
    if (check.errors.length > 0) {
      log(`[${s.id}] ${tool.label} ${what}: verify failed: ${check.errors.join('; ')}`);
      lane.stop('failed', `verify: ${check.errors[0]}`);
      return false;
    }
    for (const w of check.warnings) lane.warnings.add(w);
    return true;
  }

  /** The warm-up, then the interleaved rounds; stops starting runs once the time budget is spent. */
  async #rounds(s: Scenario, lanes: Lane[]): Promise<void> {
    for (let round = 0; round <= this.settings.runs; round++) {
      for (const lane of lanes) {
        if (lane.done) continue;
        if (this.#overBudget()) {
          if (lane.cell.seconds.length === 0) lane.stop('skipped', 'time budget spent');
          else lane.warnings.add('time budget spent: fewer runs');
          lane.done = true;
          continue;
        }
        await this.#attempt(s, lane, round);
      }
    }
  }

  async runScenario(s: Scenario, datasets: Map<DatasetName, Dataset>): Promise<ScenarioResult> {
    const dataset = s.dataset === undefined ? undefined : datasets.get(s.dataset);
    if (dataset === undefined) throw new Error(`scenario ${s.id} has no data set`);
    const net = await this.rig.endpoints(s);
    log(`[${s.id}] warming the page cache with ${dataset.dir}`);
    await warm(dataset.dir);
    const tools = toolsFor(s, this.rig).filter((t) => wantsTool(this.settings.tools, t.id));
    const lanes = tools.map((t) => this.#lane(t, dataset, net));
    for (const lane of lanes) {
      const missing = lane.tool.missing(net);
      if (missing !== undefined) lane.stop('skipped', missing);
    }
    try {
      await this.#rounds(s, lanes);
    } finally {
      for (const lane of lanes) await rm(lane.parent, { recursive: true, force: true });
    }
    const cells = lanes.map((l) => l.finish(dataset));
    addRatios(s, cells);
    const model = this.rig.modelFor(s);
    const where = s.wan ? `through the WAN emulator (${modelText(model)})` : 'over loopback';
    const n = this.settings.fcpConns === undefined ? 'fcp default -n' : `-n ${this.settings.fcpConns}`;
    return {
      id: s.id,
      title: `${describeDataset(dataset)}, ${where}, ${s.kind === 'conns' ? 'varying -n' : n}`,
      smallFiles: dataset.name === 'small' || dataset.name === 'tree',
      cells,
      notes: [],
    };
  }
}

/** Each peer against fcp in its own direction (pull peers against fcp pull when that ran). */
function addRatios(s: Scenario, cells: CellResult[]): void {
  const byId = new Map(cells.map((c) => [c.toolId, c]));
  for (const c of cells) {
    if (c.mbps === undefined) continue;
    let base: CellResult | undefined;
    if (s.kind === 'conns') {
      const raw = c.toolId.replace(/^fcp-n(\d+)(-baseline)?$/, 'raw-x$1');
      base = c.toolId.startsWith('fcp-n') ? byId.get(raw) : undefined;
    } else if (c.toolId === 'fcp' || c.toolId === 'fcp-pull') base = undefined;
    else if (c.direction === 'pull' && byId.get('fcp-pull')?.mbps !== undefined) base = byId.get('fcp-pull');
    else base = byId.get('fcp');
    if (base?.mbps === undefined) continue;
    c.ratio = c.mbps / base.mbps;
    c.ratioTo = base.toolId === 'fcp' ? 'fcp' : base.label;
  }
}
