/**
 * `node dist/bench/session-churn.js [--sessions 1000] [-n 4]`: runs many small push sessions back to back
 * against one fcpd child and reports its open descriptors and RSS before, during and after — the check
 * that a long-running daemon gives back what each session took (no leaked sockets, files or buffers).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { push } from '../src/client/transfer-client.js';
import { startLocalDaemon } from './local-daemon.js';
import { loadHasher } from '../src/transfer/checksum.js';
import { createStats } from '../src/transfer/stats.js';

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { sessions: { type: 'string', default: '1000' }, n: { type: 'string', default: '4' } },
  });
  const sessions = Math.min(100_000, Math.max(1, Number(values.sessions)));
  const connections = Number(values.n);
  const work = mkdtempSync(path.join(tmpdir(), 'fcp-churn-'));
  const src = path.join(work, 'src');
  const root = path.join(work, 'root');
  mkdirSync(src);
  mkdirSync(root);
  for (let i = 0; i < 5; i++) writeFileSync(path.join(src, `f${i}`), Buffer.alloc(3000 + i * 70_000, i));
  process.env['FCP_CONFIG_DIR'] = path.join(work, 'client-config');
  const { child, port } = await startLocalDaemon(root, {
    ...process.env,
    FCPD_STATE_DIR: path.join(work, 'state'),
  });
  const pid = child.pid!;
  const hasher = await loadHasher();
  try {
    // One session first, so lazily created state (host key, TLS context, wasm) is not counted as growth.
    const once = async (i: number) =>
      push({
        endpoint: { host: '127.0.0.1', port },
        connections,
        checksum: false,
        select: {},
        hasher,
        stats: createStats(performance.now()),
        onWarning: (err) => console.error(`warning: ${err.message}`),
        sources: [`${src}/`],
        dest: `d${i % 10}`,
      });
    await once(0);
    await new Promise((r) => setTimeout(r, 200));
    const before = { fds: fdCount(pid), rss: rssMiB(pid) };
    const started = performance.now();
    let peakRss = before.rss;
    for (let i = 1; i <= sessions; i++) {
      if (i % 10 === 0) rmSync(path.join(root, `d${i % 10}`), { recursive: true, force: true });
      await once(i);
      if (i % 100 === 0) {
        peakRss = Math.max(peakRss, rssMiB(pid));
        console.log(`${i} sessions: fds ${fdCount(pid)}, rss ${rssMiB(pid).toFixed(1)} MiB`);
      }
    }
    const secs = (performance.now() - started) / 1000;
    await new Promise((r) => setTimeout(r, 6000)); // lets the daemon's 5 s socket reaper and GC run
    const after = { fds: fdCount(pid), rss: rssMiB(pid) };
    console.log(
      `session-churn: ${sessions} sessions (-n ${connections}) in ${secs.toFixed(1)} s; daemon fds ${before.fds} -> ${after.fds}; ` +
        `RSS ${before.rss.toFixed(1)} -> ${after.rss.toFixed(1)} MiB (peak sampled ${peakRss.toFixed(1)} MiB)`,
    );
  } finally {
    child.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`session-churn: ${err.message}`);
    process.exit(1);
  },
);
