/**
 * What makes a push or pull visible and stoppable from another shell (README "Transfers you can list, and
 * stop"): its registry entry, the signals `fcp cancel` sends, and `--background`, which re-runs the same
 * argv in a detached child (as `fcpd -d` does) and prints the transfer's id.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { FcpError, toFcpError } from '../protocol/index.js';
import type { TransferEngine } from '../transfer/engine.js';
import type { TransferListener } from '../transfer/events.js';
import { createRegistryDir, type HeldRegistry } from '../client/registry-dir.js';
import {
  CANCEL_SIGNAL,
  logFile,
  newTransferId,
  registryDir,
  takeCancelRequest,
  writeFirstStatus,
} from '../client/transfer-registry.js';
import {
  initialStatus,
  type StatusSources,
  type TransferDescription,
  TransferStatusWriter,
} from '../client/transfer-status.js';

/** Set in the environment of the child `--background` starts: its transfer id. */
export const BACKGROUND_ENV = 'FCP_BACKGROUND_ID';

/** The id of this process's transfer: the one the parent chose for a background child, else a new one. */
export function transferId(): string {
  return process.env[BACKGROUND_ENV] ?? newTransferId();
}

export function isBackgroundChild(): boolean {
  return process.env[BACKGROUND_ENV] !== undefined;
}

/**
 * Registers this transfer and keeps its entry current; at exit a foreground entry is removed and a
 * background one records the exit code (process.on('exit') runs on every process.exit). Returns the
 * subscriber to the engine's events. A registry that cannot be written (a HOME the user may not write)
 * costs only `fcp status`: `unavailable` is told, and the transfer goes on.
 */
export function registerTransfer(
  description: Omit<TransferDescription, 'log'>,
  from: StatusSources,
  unavailable: (err: FcpError) => void,
): TransferListener {
  const dir = registryDir();
  const background = isBackgroundChild();
  const log = background ? logFile(dir, description.id) : null;
  let writer: TransferStatusWriter;
  try {
    writer = new TransferStatusWriter(dir, { ...description, log }, from);
  } catch (err) {
    const e = toFcpError(err, dir);
    unavailable(new FcpError(e.code, `${dir}: ${e.message}`, { path: dir, cause: err }));
    return () => {};
  }
  process.once('exit', (code) => {
    try {
      if (background) writer.exited(code);
      else writer.remove();
    } catch {
      // The registry directory went away: there is nothing to update.
    }
  });
  return writer.listener;
}

/**
 * `fcp cancel` for this process: the running engine fails with CANCELLED or DISCARDED, which it sends in
 * ABORT (the daemon logs the session as cancelled, and a receiving daemon keeps or discards its partials);
 * the run then ends with that error, exit 130. With no engine running (connecting, or waiting to retry)
 * `stop` ends the process at once.
 */
export function onCancel(
  id: string,
  engine: () => TransferEngine | undefined,
  stop: (err: FcpError) => never,
): void {
  process.on(CANCEL_SIGNAL, () => {
    const discard = takeCancelRequest(registryDir(), id) === 'discard';
    const err = new FcpError(discard ? 'FCP_ERR_SESSION_DISCARDED' : 'FCP_ERR_SESSION_CANCELLED');
    const running = engine();
    if (running === undefined || running.finished) stop(err);
    running.fail(err);
  });
}

/**
 * `--background`: starts this same command in a detached child that logs to `<id>.log` in the registry,
 * writes its first entry (so `fcp status` lists it from now on), and returns its id.
 */
export function startInBackground(description: Omit<TransferDescription, 'id' | 'log'>): string {
  const registry = createRegistryDir(registryDir());
  try {
    return startHeld(registry, description);
  } finally {
    registry.close();
  }
}

function startHeld(registry: HeldRegistry, description: Omit<TransferDescription, 'id' | 'log'>): string {
  const id = newTransferId();
  const fd = openSync(logFile(registry.via, id), 'a', 0o600);
  let pid: number | undefined;
  try {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, [BACKGROUND_ENV]: id },
    });
    child.unref();
    pid = child.pid;
  } finally {
    // The child holds its own copy.
    closeSync(fd);
  }
  if (pid === undefined) throw new FcpError('FCP_ERR_INTERNAL', 'cannot start the background transfer');
  // Unless the child was quicker: its own entry is newer.
  writeFirstStatus(registry.via, initialStatus({ ...description, id, log: logFile(registry.path, id) }, pid));
  return id;
}
