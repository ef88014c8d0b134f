/**
 * Checks the WAN emulator against its model: raw TCP streams through it should reach about
 * streams x window / RTT until the link cap. Sink, proxy and sender run as separate processes, as the
 * client, proxy and daemon do in the bench. CLI: `node dist/bench/verify-wan.js [--rtt 40] [--link 2Gbit]`.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { installSignalCleanup, runCleanups, runTimed, startService } from './proc.js';
import { formatBytes, formatRate, parseBytes, parseRate } from './units.js';

export interface WanModel {
  rttMs: number;
  windowBytes: number;
  linkRateBps: number;
  perConnRateBps?: number;
}

export interface WanCheckRow {
  windowBytes: number;
  streams: number;
  expectedMBps: number;
  measuredMBps: number;
  seconds: number;
}

export const RAW_STREAM_JS = fileURLToPath(new URL('./raw-stream.js', import.meta.url));
export const WAN_PROXY_JS = fileURLToPath(new URL('./wan-proxy.js', import.meta.url));

/**
 * Command-line arguments for the wan-proxy CLI in front of 127.0.0.1:`targetPort`, listening on a free port
 * of 127.0.0.1 unless `listen` says where.
 */
export function wanProxyArgs(
  model: WanModel,
  targetPort: number,
  listen: { host: string; port: number } = { host: '127.0.0.1', port: 0 },
): string[] {
  const args = [
    WAN_PROXY_JS,
    '--listen',
    String(listen.port),
    '--listen-host',
    listen.host,
    '--target',
    `127.0.0.1:${targetPort}`,
    '--rtt',
    String(model.rttMs),
    '--window',
    String(model.windowBytes),
    '--link',
    `${model.linkRateBps}B`,
  ];
  if (model.perConnRateBps !== undefined) args.push('--per-conn-rate', `${model.perConnRateBps}B`);
  return args;
}

/** The model's ceiling in MB/s for `streams` connections. */
export function expectedMBps(model: WanModel, streams: number): number {
  let perStream = model.windowBytes / (model.rttMs / 1000);
  if (model.perConnRateBps !== undefined) perStream = Math.min(perStream, model.perConnRateBps);
  return Math.min(streams * perStream, model.linkRateBps) / 1e6;
}

/** Measures raw TCP through a fresh proxy for each stream count; each transfer lasts about `seconds`. */
export async function measureWan(
  model: WanModel,
  streamCounts: number[],
  seconds: number,
): Promise<WanCheckRow[]> {
  const { service: sink, ready } = await startService(process.execPath, [RAW_STREAM_JS, 'sink'], {
    readyEvent: 'listening',
  });
  const rows: WanCheckRow[] = [];
  try {
    for (const streams of streamCounts) {
      const { service: proxy, ready: p } = await startService(
        process.execPath,
        wanProxyArgs(model, Number(ready['port'])),
        { readyEvent: 'listening' },
      );
      try {
        const expected = expectedMBps(model, streams);
        const bytes = Math.max(16 * 1024 * 1024, Math.round(expected * 1e6 * seconds));
        const r = await runTimed(
          process.execPath,
          [
            RAW_STREAM_JS,
            'send',
            '--to',
            `127.0.0.1:${p['port']}`,
            '--bytes',
            String(bytes),
            '--streams',
            String(streams),
          ],
          { timeoutMs: Math.max(60_000, seconds * 20_000) },
        );
        const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
          mbps?: number;
          seconds?: number;
        };
        rows.push({
          windowBytes: model.windowBytes,
          streams,
          expectedMBps: expected,
          measuredMBps: out.mbps ?? 0,
          seconds: out.seconds ?? r.seconds,
        });
      } finally {
        await proxy.stop();
      }
    }
  } finally {
    await sink.stop();
  }
  return rows;
}

/** The verification plan: the bench's model with 1-8 streams, and a smaller window to show linear scaling. */
export async function verifyWan(model: WanModel, seconds: number): Promise<WanCheckRow[]> {
  const small = { ...model, windowBytes: Math.round(model.windowBytes / 4) };
  return [
    ...(await measureWan(model, [1, 2, 4, 8], seconds)),
    ...(await measureWan(small, [1, 4, 8, 16], seconds)),
  ];
}

export function wanTable(model: WanModel, rows: WanCheckRow[]): string {
  const lines = [
    `WAN emulator check: RTT ${model.rttMs} ms, link ${formatRate(model.linkRateBps)}` +
      (model.perConnRateBps === undefined ? '' : `, per-connection cap ${formatRate(model.perConnRateBps)}`),
    '',
    '| window | streams | model MB/s | measured MB/s | measured / model |',
    '| ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    lines.push(
      `| ${formatBytes(r.windowBytes)} | ${r.streams} | ${r.expectedMBps.toFixed(1)}` +
        `${r.expectedMBps * 1e6 >= model.linkRateBps ? ' (link)' : ''} | ${r.measuredMBps.toFixed(1)} | ` +
        `${(r.measuredMBps / r.expectedMBps).toFixed(2)} |`,
    );
  }
  return lines.join('\n');
}

async function cliMain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      rtt: { type: 'string', default: '40' },
      window: { type: 'string', default: '4MiB' },
      link: { type: 'string', default: '2Gbit' },
      seconds: { type: 'string', default: '3' },
    },
  });
  installSignalCleanup();
  const model: WanModel = {
    rttMs: Number(values.rtt),
    windowBytes: parseBytes(values.window),
    linkRateBps: parseRate(values.link),
  };
  try {
    const rows = await verifyWan(model, Number(values.seconds));
    console.log(wanTable(model, rows));
  } finally {
    await runCleanups();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  cliMain(process.argv.slice(2)).catch((err: unknown) => {
    console.error(`verify-wan: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
