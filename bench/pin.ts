/**
 * The pinned layout (`--pin`, FCP_BENCH_PIN=1): every client on core 0 and every server on core 1, so that
 * each side's core is its own and a row's wall time says which side's CPU is the limit. Clients are the fcp
 * client, scp, rsync, tar, the ssh client, rclone, lftp, cp, the iperf3 client and the raw sender; servers
 * are the standing fcpds, the private sshd (and so everything it starts: sshd's per-connection processes,
 * the remote tar, rsync and the one-session fcpd of `fcp --ssh`), the raw sink and the iperf3 server. The
 * WAN emulators stay unpinned: see bench/README.md "Pinned mode".
 */
import os from 'node:os';
import { which } from './proc.js';

export const CLIENT_CORE = 0;
export const SERVER_CORE = 1;

export interface Pinning {
  pinned: boolean;
  /** One line for the report header: pinned or not, and why not. */
  note: string;
  /** Words put before a client's command (empty when unpinned). */
  client: string[];
  /** Words put before a server's command (empty when unpinned). */
  server: string[];
}

export const UNPINNED: Pinning = { pinned: false, note: 'unpinned', client: [], server: [] };

/** The layout for this machine: pinned when asked and possible, else unpinned with the reason. */
export function choosePinning(wanted: boolean): Pinning {
  if (!wanted) return { ...UNPINNED, note: 'unpinned (no --pin)' };
  const taskset = which('taskset');
  if (taskset === undefined)
    return { ...UNPINNED, note: 'unpinned: --pin asked, but taskset is not installed' };
  const cores = os.availableParallelism();
  if (cores < 2) return { ...UNPINNED, note: `unpinned: --pin asked, but only ${cores} core is available` };
  return {
    pinned: true,
    note:
      `pinned: clients taskset -c ${CLIENT_CORE}, servers (fcpd, sshd and its children, sinks) ` +
      `taskset -c ${SERVER_CORE}, WAN emulators unpinned`,
    client: [taskset, '-c', String(CLIENT_CORE)],
    server: [taskset, '-c', String(SERVER_CORE)],
  };
}

/** `cmd args` behind a pinning prefix, as a command and its arguments. */
export function pinned(prefix: string[], cmd: string, args: string[]): [string, string[]] {
  const [first, ...rest] = prefix;
  return first === undefined ? [cmd, args] : [first, [...rest, cmd, ...args]];
}
