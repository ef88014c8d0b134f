/**
 * The registry of this user's transfers on this machine (README "Transfers you can list, and stop"): one small
 * JSON file per transfer in `$XDG_STATE_HOME/fcp/transfers/` (default ~/.local/state/fcp/transfers, 0700),
 * rewritten atomically (temp file, rename) so a reader never sees half of one. A transfer whose process is
 * gone, or whose pid now belongs to another process (the start time in /proc/PID/stat differs), is dead:
 * listing removes its file, so a crash never leaves a transfer shown as running. writeStatus,
 * writeFirstStatus, removeStatus and requestCancel are given a held directory's `via` (registry-dir.ts),
 * never a path another user may swap; the others take the path and hold the directory themselves.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { FcpError } from '../protocol/index.js';
// Not fs.rmSync(..., { force: true }): that loads node's rimraf for one unlink (~1-2 ms of every run).
import { unlinkQuietSync } from '../transfer/store/posix-io.js';
import { type HeldRegistry, holdRegistryDir } from './registry-dir.js';
import { ENTRY_OPEN_FLAGS, entryProblem, isSignallablePid } from './registry-trust.js';
import { TRANSPORT_KINDS, type TransportKind } from './transfer-route.js';

/** Bumped when a field changes meaning or goes away. */
export const STATUS_VERSION = 1;
/** How long a finished background transfer stays listed with its exit code (README). */
export const FINISHED_KEEP_MS = 60 * 60_000;
const ID_PATTERN = /^[0-9a-f]{12}$/;
/**
 * What `fcp cancel ID` sends, after writing its request (requestCancel). Not SIGUSR1: node keeps that one
 * for its inspector.
 */
export const CANCEL_SIGNAL = 'SIGUSR2';

/** One transfer as `fcp status --json` shows it (field names as --json's progress event, spec/EVENTS.md). */
export interface TransferStatus {
  version: number;
  id: string;
  pid: number;
  /** Field 22 of /proc/PID/stat when the transfer started: tells a reused pid from ours. */
  pid_start: string;
  state: 'running' | 'exited';
  direction: 'push' | 'pull';
  host: string;
  /** The serving fcpd's port: the standing daemon's, or over ssh the one-session fcpd's (see transport). */
  port: number;
  /** How the transfer reaches that fcpd; null until its first session is granted. */
  transport: TransportKind | null;
  sources: string[];
  destination: string;
  current_file: string | null;
  bytes_done: number;
  bytes_total: number;
  files_done: number;
  files_total: number;
  /** Bytes per second over the last interval; null before the first one. */
  rate: number | null;
  eta_sec: number | null;
  connections: number;
  /** --bwlimit in bytes/s, or null. */
  bwlimit: number | null;
  started_at: string;
  updated_at: string;
  /** Set once exited. */
  exit_code: number | null;
  /** A background transfer's log file, or null. */
  log: string | null;
}

/** $XDG_STATE_HOME/fcp/transfers (an absolute XDG_STATE_HOME only, as the XDG spec says), else ~/.local/state. */
export function registryDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_STATE_HOME'];
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(homedir(), '.local', 'state');
  return path.join(base, 'fcp', 'transfers');
}

/** A background run's log: always `<dir>/<id>.log`, never a path read from an entry (which may be forged). */
export function logFile(dir: string, id: string): string {
  return path.join(dir, `${id}.log`);
}

export function newTransferId(): string {
  return randomBytes(6).toString('hex');
}

/** Field 22 (starttime, in clock ticks since boot) of /proc/PID/stat; undefined when there is no such process. */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces or ')': count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}

/**
 * The process that runs `status` is still that one (not gone, not a new process under the same pid).
 * Without /proc (pid_start empty) only "not gone" can be told.
 */
export function isLive(status: Pick<TransferStatus, 'pid' | 'pid_start'>): boolean {
  if (!isSignallablePid(status.pid)) return false;
  if (status.pid_start !== '') return processStartTime(status.pid) === status.pid_start;
  try {
    process.kill(status.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function statusFile(dir: string, id: string): string {
  return path.join(dir, `${id}.json`);
}

/** Writes `status` under its id atomically: a reader sees the old file or the new one. */
export function writeStatus(dir: string, status: TransferStatus): void {
  const file = statusFile(dir, status.id);
  const temp = path.join(dir, `.${status.id}.${process.pid}.tmp`);
  writeFileSync(temp, `${JSON.stringify(status)}\n`, { mode: 0o600 });
  renameSync(temp, file);
}

/** Writes `status` unless its id has an entry already. */
export function writeFirstStatus(dir: string, status: TransferStatus): void {
  try {
    writeFileSync(statusFile(dir, status.id), `${JSON.stringify(status)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

export function removeStatus(dir: string, id: string): void {
  unlinkQuietSync(statusFile(dir, id));
  unlinkQuietSync(cancelFile(dir, id));
}

export type CancelHow = 'keep' | 'discard';

function cancelFile(dir: string, id: string): string {
  return path.join(dir, `${id}.cancel`);
}

/** What `fcp cancel` asks of transfer `id`, written before it signals the process. */
export function requestCancel(dir: string, id: string, how: CancelHow): void {
  writeFileSync(cancelFile(dir, id), how, { mode: 0o600 });
}

/**
 * `fcp cancel`: asks the running transfer `id` to stop. FCP_ERR_USAGE naming it when there is no such
 * transfer running (dead ones are cleaned on the way, see listTransfers).
 */
export function cancelTransfer(dir: string, id: string, how: CancelHow): TransferStatus {
  const registry = holdRegistryDir(dir);
  if (registry === undefined) throw noTransfer(id);
  try {
    return cancelHeld(registry, id, how);
  } finally {
    registry.close();
  }
}

function cancelHeld(registry: HeldRegistry, id: string, how: CancelHow): TransferStatus {
  const status = found(listHeld(registry, Date.now()), id);
  if (status.state !== 'running')
    throw new FcpError('FCP_ERR_USAGE', `transfer ${id} has already ended (exit code ${status.exit_code})`);
  if (!isSignallablePid(status.pid))
    throw new FcpError(
      'FCP_ERR_USAGE',
      `transfer ${id} has no valid pid (${String(status.pid)}): not signalled`,
    );
  requestCancel(registry.via, id, how);
  try {
    process.kill(status.pid, CANCEL_SIGNAL);
  } catch (err) {
    // It ended between the check and the signal.
    throw new FcpError('FCP_ERR_USAGE', `transfer ${id} has already ended`, { cause: err });
  }
  return status;
}

/** The request `fcp cancel` left for `id` (and removes it); 'keep' when there is none. */
export function takeCancelRequest(dir: string, id: string): CancelHow {
  const registry = holdRegistryDir(dir);
  if (registry === undefined) return 'keep';
  const file = cancelFile(registry.via, id);
  try {
    const how = readFileSync(file, 'utf8').trim();
    unlinkQuietSync(file);
    return how === 'discard' ? 'discard' : 'keep';
  } catch {
    return 'keep';
  } finally {
    registry.close();
  }
}

/** The entry's text, or undefined when it is not one to trust (a link, another user's, group-writable). */
function readEntry(file: string): string | undefined {
  const fd = openSync(file, ENTRY_OPEN_FLAGS);
  try {
    return entryProblem(fd) === undefined ? readFileSync(fd, 'utf8') : undefined;
  } finally {
    closeSync(fd);
  }
}

function readStatus(registry: HeldRegistry, id: string): TransferStatus | undefined {
  try {
    const text = readEntry(statusFile(registry.via, id));
    if (text === undefined) return undefined;
    const parsed = JSON.parse(text) as Partial<TransferStatus>;
    if (parsed.version !== STATUS_VERSION || parsed.id !== id || !isSignallablePid(parsed.pid))
      return undefined;
    // Written by an fcp from before `transport` (still running, or finished within FINISHED_KEEP_MS after
    // an upgrade), or by a later one with a kind this one does not know: not known.
    const transport = TRANSPORT_KINDS.includes(parsed.transport as TransportKind) ? parsed.transport : null;
    // Whatever path the file names, the log of a background run is where fcp put it.
    const log = parsed.log === null || parsed.log === undefined ? null : logFile(registry.path, id);
    return { ...parsed, transport, log } as TransferStatus;
  } catch {
    // Removed between readdir and read (its transfer just ended), or not ours: not a transfer.
    return undefined;
  }
}

/**
 * Every transfer of the registry, oldest first. Dead ones (see isLive) and finished ones older than
 * FINISHED_KEEP_MS are removed on the way and not returned.
 */
export function listTransfers(dir: string, nowMs = Date.now()): TransferStatus[] {
  const registry = holdRegistryDir(dir);
  if (registry === undefined) return [];
  try {
    return listHeld(registry, nowMs);
  } finally {
    registry.close();
  }
}

function listHeld(registry: HeldRegistry, nowMs: number): TransferStatus[] {
  let names: string[];
  try {
    names = readdirSync(registry.via);
  } catch {
    return [];
  }
  const out: TransferStatus[] = [];
  for (const name of names) {
    const id = name.slice(0, -5);
    if (!name.endsWith('.json') || !ID_PATTERN.test(id)) continue;
    const file = statusFile(registry.via, id);
    const status = readStatus(registry, id);
    if (status === undefined) continue;
    if (!isStale(status, file, nowMs)) {
      out.push(status);
      continue;
    }
    unlinkQuietSync(file);
    // A finished background run's log goes with its entry; a dead one's stays, to say what happened.
    if (status.state === 'exited' && status.log !== null) unlinkQuietSync(logFile(registry.via, id));
  }
  return out.sort((a, b) => a.started_at.localeCompare(b.started_at));
}

function isStale(status: TransferStatus, file: string, nowMs: number): boolean {
  if (status.state === 'running') return !isLive(status);
  try {
    return nowMs - statSync(file).mtimeMs > FINISHED_KEEP_MS;
  } catch {
    return true;
  }
}

/** The transfer with this id; FCP_ERR_USAGE naming it when there is none (or it is dead). */
export function findTransfer(dir: string, id: string): TransferStatus {
  return found(listTransfers(dir), id);
}

function found(transfers: TransferStatus[], id: string): TransferStatus {
  const status = transfers.find((t) => t.id === id);
  if (status === undefined) throw noTransfer(id);
  return status;
}

function noTransfer(id: string): FcpError {
  return new FcpError('FCP_ERR_USAGE', `no transfer ${id} (fcp status lists the running ones)`);
}
