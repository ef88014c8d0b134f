/**
 * The iperf3 reference row: `iperf3 -c 127.0.0.1 -p PORT -P 8 -t T -i 0 --json` against a standing
 * `iperf3 -s` (through the emulator in WAN scenarios). The row's time is the data set's bytes at iperf3's
 * receiver rate. It runs for a time (-t) rather than a byte count (-n): with -n the sender stops counting
 * once its last bytes are in its socket buffers, the receiver stops when told the test is over, and with
 * the emulator holding up to 8 windows in flight the figures of a short run are wrong by a third or more.
 * apt's iperf3; without it the row says `skipped (not installed: iperf3)`.
 */
import { pinned } from './pin.js';
import { freePort, startService, which } from './proc.js';
import { notInstalled, runClient, type Tool } from './tools.js';

export const IPERF_STREAMS = 8;
/** -t: about as long as the data set takes at the default link's rate (250 MB/s), 3-20 s. */
const RATE_FOR_DURATION = 250e6;
const MIN_SECONDS = 3;
const MAX_SECONDS = 20;

function duration(bytes: number): number {
  return Math.min(MAX_SECONDS, Math.max(MIN_SECONDS, Math.ceil(bytes / RATE_FOR_DURATION)));
}

/**
 * Starts `iperf3 -s -p P` behind `pin`, or returns undefined when iperf3 is absent. Ready on its banner: a
 * probe connection would count as a failed test in its log.
 */
export async function startIperfServer(pin: string[]): Promise<{ port: number; pid: number } | undefined> {
  if (which('iperf3') === undefined) return undefined;
  const port = await freePort();
  const args = ['-s', '-p', String(port), '--bind', '127.0.0.1', '--forceflush'];
  const { service } = await startService(...pinned(pin, 'iperf3', args), { readyText: 'Server listening' });
  return { port, pid: service.pid };
}

/** The receiver's bytes and seconds in iperf3's --json report, or undefined. */
export function iperfReceived(stdout: string): { bytes: number; seconds: number } | undefined {
  try {
    const r = JSON.parse(stdout) as { end?: { sum_received?: { bytes?: number; seconds?: number } } };
    const sum = r.end?.sum_received;
    if (sum?.bytes === undefined || sum.seconds === undefined || sum.bytes <= 0) return undefined;
    return { bytes: sum.bytes, seconds: sum.seconds };
  } catch {
    return undefined;
  }
}

/** `iperf3 -P streams` for the data set's byte count; `server` is the standing iperf3 -s's pid. */
export function iperfTool(streams: number, server: () => number | undefined): Tool {
  return {
    id: 'iperf3',
    label: `iperf3 -P ${streams}`,
    direction: 'wire',
    writesTree: false,
    note: "bytes only; iperf3's receiver rate",
    missing: (net) =>
      notInstalled('iperf3') ?? (net.iperfPort === undefined ? 'no iperf3 server' : undefined),
    server,
    run: async (ctx) => {
      const args = ['-c', '127.0.0.1', '-p', String(ctx.net.iperfPort), '-P', String(streams)];
      // -i 0: no per-second reports, so the JSON stays small.
      args.push('-t', String(duration(ctx.dataset.bytes)), '-i', '0', '--json');
      const run = await runClient(ctx.pin, 'iperf3', args, { timeoutMs: ctx.timeoutMs, stdoutTail: true });
      const got = iperfReceived(run.result.stdout);
      // A wall time of a fixed-duration run would say nothing: no receiver figures fail the row.
      if (got === undefined) {
        const stderr = `${run.result.stderr}\nno receiver figures in iperf3's --json`;
        return { result: { ...run.result, code: run.result.code || 1, stderr } };
      }
      // The run moved got.bytes: its time and CPU are scaled to the data set's bytes.
      const scale = ctx.dataset.bytes / got.bytes;
      const seconds = got.seconds * scale;
      return { result: run.result, seconds, sessionSeconds: seconds, cpuScale: scale, clientCpuS: run.cpuS };
    },
  };
}
