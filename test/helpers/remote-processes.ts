// The processes on the "remote" side of the private sshd (test/helpers/sshd.ts): what it started, found by
// the process tree and by a marker in their environment (an orphan of a session leaves the tree, keeps its
// environment), and a stop that ends them all.
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const STOP_GRACE_MS = 3_000;

/** A process on the "remote" side: started by this sshd, or carrying its session marker. */
export interface RemoteProcess {
  pid: number;
  command: string;
}

/** Every live process under `root` in the process tree, or whose environment carries the marker. */
export function remoteProcesses(root: number, marker: string): RemoteProcess[] {
  const parents = new Map<number, number>();
  const marked = new Set<number>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    const stat = statOf(pid);
    if (stat === undefined || stat.state === 'Z') continue;
    const ppid = stat.ppid;
    parents.set(pid, ppid);
    if (environOf(pid).includes(marker)) marked.add(pid);
  }
  const found: RemoteProcess[] = [];
  for (const pid of parents.keys()) {
    if (pid !== root && (marked.has(pid) || descends(pid, root, parents))) {
      found.push({ pid, command: commandOf(pid) });
    }
  }
  return found;
}

function descends(pid: number, root: number, parents: Map<number, number>): boolean {
  // Bounded: a process tree is never deeper than the number of processes.
  let p = parents.get(pid);
  for (let hops = 0; p !== undefined && hops < parents.size; hops++) {
    if (p === root) return true;
    p = parents.get(p);
  }
  return false;
}

/** State and parent from /proc/PID/stat (the name, in parentheses, may hold spaces: parse after the last ')'). */
function statOf(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state = '', ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state, ppid: Number(ppid) };
  } catch {
    return undefined; // gone meanwhile
  }
}

/**
 * True while `pid` exists and is not a zombie. In a container whose init does not reap, a killed orphan
 * stays a zombie, which `kill(pid, 0)` still finds.
 */
export function isRunning(pid: number): boolean {
  const state = statOf(pid)?.state;
  return state !== undefined && state !== 'Z';
}

function environOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** SIGTERM to sshd and everything it started, SIGKILL to what is left after a grace period; waits for all. */
export async function stopAll(sshd: ChildProcess, marker: string): Promise<void> {
  const root = sshd.pid ?? -1;
  const signalAll = (signal: NodeJS.Signals) => {
    for (const p of remoteProcesses(root, marker)) kill(p.pid, signal);
    // Never kill(-1): as root that signals every process on the machine.
    if (root > 0) kill(root, signal);
  };
  const gone = () =>
    (sshd.exitCode !== null || sshd.signalCode !== null) && remoteProcesses(root, marker).length === 0;
  signalAll('SIGTERM');
  for (let waited = 0; !gone(); waited += 50) {
    if (waited === STOP_GRACE_MS) signalAll('SIGKILL');
    if (waited > STOP_GRACE_MS + 5_000)
      throw new Error(`sshd or its sessions did not stop: ${describeLeft(root, marker)}`);
    await sleep(50);
  }
}

function describeLeft(root: number, marker: string): string {
  return remoteProcesses(root, marker)
    .map((p) => `${p.pid} ${p.command}`)
    .join('; ');
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
