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
import { describeDataset, machineLines, scenarioTable } from './report.js';
import { log, Rig } from './rig.js';
import { parseSettings } from './settings.js';
import { mountTmpfs } from './tmpfs.js';
import { SSH_TOOL_IDS, wantsTool } from './tool-set.js';
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
