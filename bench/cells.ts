/** Runs the cells of a scenario: each tool's timed runs, each destination verified, medians and ratios. */
import { mkdirSync } from 'node:fs';
import { open, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Dataset, DatasetName } from './datasets.js';
import { type CellResult, describeDataset, median, modelText, type ScenarioResult } from './report.js';
import { log, type Rig } from './rig.js';
import type { Scenario } from './scenarios.js';
import type { Settings } from './settings.js';
import { prefault } from './tmpfs.js';
import { toolsFor, wantsTool } from './tool-set.js';
import type { Endpoints, RunContext, Tool } from './tools.js';
import { checkTreeFull, checkTreeSampled } from './verify-tree.js';

/** Destinations of data sets from this size up are pre-faulted before every run (see prefault()). */
const PREFAULT_MIN_BYTES = 64 * 1024 * 1024;

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
