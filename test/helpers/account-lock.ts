// An exclusive hold on a shared test account across checkouts. Accounts are machine-wide (test/helpers/
// accounts.ts keeps them), so two checkouts running the same test file at once would share the account's
// home and its default state directory: one run's daemon would find the other's pid files. The hold is a
// file created with O_EXCL in the system's temp directory, naming the holder's pid; a holder that died
// without letting go (its pid no longer runs) is taken over.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_MS = 200;

function holderAlive(file: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(file, 'utf8'));
  } catch {
    return false; // Let go meanwhile: try again.
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryTake(file: string): boolean {
  try {
    const fd = openSync(file, 'wx', 0o644);
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // A dead holder's file is removed; the next round takes it with O_EXCL like anyone else.
    if (!holderAlive(file)) unlinkSync(file);
    return false;
  }
}

/**
 * Waits (at most `limitMs`) until this process alone holds `account`, and returns the function that lets go.
 * Lives in /tmp, not TMPDIR: checkouts may run with different TMPDIRs.
 */
export async function holdAccount(account: string, limitMs = 120_000): Promise<() => void> {
  const file = join('/tmp', `fcp-test-account-${account}.lock`);
  const deadline = Date.now() + limitMs;
  while (!tryTake(file)) {
    if (Date.now() > deadline) throw new Error(`test account ${account} still held by another run (${file})`);
    await sleep(POLL_MS);
  }
  return () => {
    try {
      unlinkSync(file);
    } catch {
      // Already gone: nothing to let go.
    }
  };
}
