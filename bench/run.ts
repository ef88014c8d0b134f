/**
 * The benchmark harness: `npm run bench [-- --only wan-big,small] [-- --quick]`. Generates (or reuses) the
 * data sets, mounts a tmpfs for destinations, starts fcpd, a private sshd, a raw TCP sink and WAN emulators
 * in front of them, times every tool in every selected scenario, verifies each destination tree, and prints
 * markdown that is also written to bench/results/latest.md. See bench/README.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { type Dataset, type DatasetName, ensureDataset } from './datasets.js';
import { Harness } from './cells.js';
import { installSignalCleanup, runCleanups } from './proc.js';
import { describeDataset, machineLines, type ScenarioResult, scenarioTable } from './report.js';
import { log, Rig } from './rig.js';
import type { Scenario } from './scenarios.js';
import { parseSettings } from './settings.js';
import { mountTmpfs } from './tmpfs.js';
import { IPERF_SCENARIOS, SSH_TOOL_IDS, wantsTool } from './tool-set.js';

/** At most this many tools keep a no-change copy on the tmpfs at once. */
const NOCHANGE_LANES = 12;
import { verifyWan, wanTable } from './verify-wan.js';

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
  const mount = mountTmpfs({ sizeBytes: tmpfsBytes(settings.scenarios, datasets) });
  log(mount.note);
  const copyScenarios = settings.scenarios.filter((s) => s.kind !== 'wan-check');
  const rig = new Rig(settings, mount.dir);
  await rig.start({
    peers:
      copyScenarios.some((s) => s.kind !== 'conns' && s.kind !== 'shaped') &&
      SSH_TOOL_IDS.some((id) => wantsTool(settings.tools, id)),
    fcp: copyScenarios.length > 0,
    sink: copyScenarios.some((s) => s.kind !== 'nochange'),
    iperf: copyScenarios.some((s) => IPERF_SCENARIOS.has(s.id)) && wantsTool(settings.tools, 'iperf3'),
  });
  log(settings.pin.note);
  const harness = new Harness(settings, rig, mount.dir);
  const sections: string[] = [];
  const results: ScenarioResult[] = [];
  for (const s of settings.scenarios) {
    if (s.kind === 'wan-check') {
      log('[wan-check] measuring raw TCP through the emulator');
      const rows = await verifyWan(settings.model, settings.checkSeconds);
      sections.push(`### wan-check: ${s.title}\n\n${wanTable(settings.model, rows)}`);
    } else {
      const result = await harness.runScenario(s, datasets);
      results.push(result);
      sections.push(scenarioTable(result));
    }
    process.stdout.write(`\n${sections[sections.length - 1]}\n`);
  }
  const header = machineLines(settings, mount.note, [...datasets.values()]);
  const report = [
    '# fcp benchmark results',
    '',
    ...header,
    '',
    'MB/s is 10^6 bytes of file data per second of wall time (process start to exit, ssh handshakes and',
    'node start-up included); "vs fcp" is the tool\'s MB/s over fcp\'s in the same direction from the same run',
    "(above 1 = faster than fcp). CPU client / server s: median user+sys seconds of the client's process",
    "tree and of the server's share (fcpd, or sshd and everything it ran). See bench/README.md.",
    '',
    sections.join('\n\n'),
    '',
  ].join('\n');
  mkdirSync(path.dirname(settings.outFile), { recursive: true });
  writeFileSync(settings.outFile, report);
  const jsonFile = settings.outFile.replace(/(\.md)?$/, '.json');
  const json = { header, pinned: settings.pin.pinned, scenarios: results };
  writeFileSync(jsonFile, `${JSON.stringify(json, null, 1)}\n`);
  log(`\nwritten to ${settings.outFile} and ${jsonFile}`);
  return 0;
}

/**
 * The tmpfs: room for the biggest data set and a half (one copy at a time in copy scenarios), or for every
 * no-change lane's copy at once (each tool keeps its own until the scenario ends), plus 1 GiB.
 */
function tmpfsBytes(scenarios: Scenario[], datasets: Map<DatasetName, Dataset>): number {
  const bytes = (s: Scenario): number =>
    s.dataset === undefined ? 0 : (datasets.get(s.dataset)?.bytes ?? 0);
  const copy = Math.max(0, ...scenarios.filter((s) => s.kind !== 'nochange').map(bytes)) * 1.5;
  const kept = Math.max(0, ...scenarios.filter((s) => s.kind === 'nochange').map(bytes)) * NOCHANGE_LANES;
  return Math.min(Math.max(copy, kept) + 1024 ** 3, os.totalmem() * 0.5);
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
