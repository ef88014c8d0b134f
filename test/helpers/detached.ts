// For tests of fcpd -d: detached daemons are not the test's children, so they are found by their pid files
// and watched through their pids.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import * as assert from 'uvu/assert';

/** The pid a pid file names, or undefined. */
export function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The pid `fcpd -d` said it started ("started in the background (pid N)"), or undefined. */
export function startedPid(stdout: string): number | undefined {
  const n = Number(/\(pid (\d+)\)/.exec(stdout)?.[1]);
  return n > 0 ? n : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Signals `pid` only while its command line still names `name` (fcpd, or fcp for a background transfer):
 * one that exited long ago may have left its pid to another process (pid_max 32768 wraps within half an
 * hour on a busy machine), and as root a plain process.kill would hit that one, whoever's it is.
 */
export function killIfStill(pid: number, name: 'fcp' | 'fcpd', signal: NodeJS.Signals = 'SIGKILL'): void {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return; // gone
  }
  if (!cmdline.includes(name)) return;
  try {
    process.kill(pid, signal);
  } catch {
    // gone meanwhile
  }
}

/** Polls `check` until it holds; fails the test after `ms`. */
export async function eventually(
  ms: number,
  what: string,
  check: () => boolean | Promise<boolean>,
): Promise<void> {
  for (let waited = 0; waited < ms; waited += 50) {
    if (await check()) return;
    await sleep(50);
  }
  assert.unreachable(`timed out after ${ms} ms waiting for ${what}`);
}
