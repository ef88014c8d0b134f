// Shared by the fcp-over-ssh tests (test/e2e/ssh-*.test.ts): private sshds that are stopped after each test
// once nothing of theirs runs any more, temp dirs, and the local ssh processes a run of fcp left behind.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eventually } from './detached.js';
import { type PrivateSshd, type SshdOptions, startSshd } from './sshd.js';

const started: PrivateSshd[] = [];
const dirs: string[] = [];

/** A private sshd, stopped by cleanUp(). */
export async function sshd(opts: SshdOptions = {}): Promise<PrivateSshd> {
  const s = await startSshd(opts);
  started.push(s);
  return s;
}

/** A temp dir, removed by cleanUp(). */
export function tempDir(prefix = 'fcp-ssh-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** Local processes whose command line names `needle` (ssh children of fcp run with the sshd's config). */
export function localProcessesNaming(needle: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmd: string;
    let state: string;
    try {
      cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '';
    } catch {
      continue; // gone meanwhile
    }
    if (state !== 'Z' && cmd.startsWith('ssh ') && cmd.includes(needle)) found.push(`${entry} ${cmd}`);
  }
  return found;
}

/**
 * After each test: nothing left on the remote side of any sshd (the test fails if something is), and no
 * local ssh of ours; then the sshds stop and the temp dirs go.
 */
export async function cleanUp(): Promise<void> {
  try {
    for (const s of started) {
      await eventually(
        10_000,
        `no process left under the sshd: ${JSON.stringify(s.listRemoteProcesses())}`,
        () => s.listRemoteProcesses().length === 0,
      );
      await eventually(10_000, 'no local ssh left', () => localProcessesNaming(s.dir).length === 0);
    }
  } finally {
    for (const s of started.splice(0)) await s.stop();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}
