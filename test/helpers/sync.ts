/**
 * node's execFileSync and spawnSync with a time limit by default. A synchronous child blocks uvu's thread, so
 * neither the per-test timeout (test/helpers/test.ts) nor anything else in the test process can fire until
 * it returns: a `useradd` waiting on a lock, an `ssh-add` asking for a passphrase or a child node script that
 * never exits would hang the whole run until test/run.js's watchdog. With a limit the call throws
 * (ETIMEDOUT) and the test fails naming the command. Test files import these instead of node's (eslint
 * forbids node's own in test/); a call that needs longer passes its own `timeout`.
 */
import * as childProcess from 'node:child_process';

/** Ample for every command the tests run synchronously (account setup, key generation, a short node child). */
export const SYNC_TIMEOUT_MS = 60_000;

function limited<T extends { timeout?: number; killSignal?: NodeJS.Signals | number }>(
  opts: T | undefined,
): T {
  return { timeout: SYNC_TIMEOUT_MS, killSignal: 'SIGKILL', ...opts } as T;
}

export const execFileSync = ((
  file: string,
  args: readonly string[] = [],
  opts?: childProcess.ExecFileSyncOptions,
) => childProcess.execFileSync(file, args, limited(opts))) as typeof childProcess.execFileSync;

export const spawnSync = ((
  file: string,
  args: readonly string[] = [],
  opts?: childProcess.SpawnSyncOptions,
) => childProcess.spawnSync(file, args, limited(opts))) as typeof childProcess.spawnSync;
