/**
 * CPU seconds per side. The client's come from GNU time (the rusage of the command and every descendant it
 * waited for, which is all of a pipeline's members and the ssh that rsync or fcp --ssh start). A server's
 * come from /proc/PID/stat around the run: utime + stime of the standing process and cutime + cstime of
 * the children it reaped, which for sshd is every per-connection process and what those ran (the remote
 * tar, rsync, the one-session fcpd), once they have exited and been reaped.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

const IDLE_POLL_MS = 20;
const IDLE_TIMEOUT_MS = 15_000;

interface ProcStat {
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: the fields that follow start after its last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (i: number): number => Number(f[i] ?? 0);
  // f[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14-17.
  return { ppid: n(1), ticks: n(11) + n(12) + n(13) + n(14) };
}

/** A process's own CPU seconds plus those of the children it has reaped, or undefined when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  const s = readStat(pid);
  return s === undefined ? undefined : s.ticks / CLK_TCK;
}

/** Whether any process (zombies included: not yet reaped) has `pid` as its parent. */
function hasChildren(pid: number): boolean {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (readStat(Number(name))?.ppid === pid) return true;
  }
  return false;
}

/** Open sockets of a process. */
function socketCount(pid: number): number {
  let n = 0;
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
      } catch {
        // Closed while we looked.
      }
    }
  } catch {
    return 0;
  }
  return n;
}

/** A server's state before a run, to tell when it is back to idle and what the run cost it. */
export interface ServerMark {
  pid: number;
  ticksSeconds: number;
  sockets: number;
}

export function markServer(pid: number): ServerMark | undefined {
  const s = cpuSeconds(pid);
  return s === undefined ? undefined : { pid, ticksSeconds: s, sockets: socketCount(pid) };
}

/**
 * The run's CPU seconds on the server side: waits (bounded) until the server has reaped every child and
 * holds no more sockets than before the run (its sessions are over), then takes the difference. Undefined
 * when the server died or did not settle in time.
 */
export async function serverCpuSince(mark: ServerMark): Promise<number | undefined> {
  const deadline = Date.now() + IDLE_TIMEOUT_MS;
  while (hasChildren(mark.pid) || socketCount(mark.pid) > mark.sockets) {
    if (Date.now() > deadline) return undefined;
    await sleep(IDLE_POLL_MS);
  }
  const now = cpuSeconds(mark.pid);
  return now === undefined ? undefined : now - mark.ticksSeconds;
}

/** GNU time's `-f` format the bench uses: user s, system s, max RSS KiB. */
export const GNU_TIME_FORMAT = 'cpu %U %S %M';

/** CPU seconds and peak RSS from a GNU time -o file written with GNU_TIME_FORMAT. */
export function parseTimeFile(text: string): { cpuS?: number; rssKb?: number } {
  // GNU time puts "Command exited with non-zero status N" before the line when the command failed.
  const m = /^cpu ([\d.]+) ([\d.]+) (\d+)$/m.exec(text);
  if (m === null) return {};
  return { cpuS: Number(m[1]) + Number(m[2]), rssKb: Number(m[3]) };
}
