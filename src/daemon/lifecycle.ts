/**
 * fcpd's process lifecycle: where its state lives, the pid file, running in the background (-d), stopping a
 * running daemon, and a log file that can be reopened after rotation.
 *
 * The pid file doubles as the readiness signal: the daemon writes it only once it is listening, and `detach`
 * waits for it to name the child.
 */

import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { FcpError, toFcpError } from '../protocol/errors.js';

const STATE_DIR_MODE = 0o700;
const PID_FILE_MODE = 0o644;
const LOG_FILE_MODE = 0o640;
const POLL_MS = 50;
/** How long a SIGKILLed process may take to disappear before stopDaemon gives up. */
const KILL_GRACE_MS = 2000;
const DEFAULT_READY_TIMEOUT_MS = 10_000;
const LOG_TAIL_LINES = 10;
const LOG_TAIL_BYTES = 8192;

/**
 * The directory for pid and log files: $FCPD_STATE_DIR, else $XDG_STATE_HOME/fcpd, else ~/.local/state/fcpd.
 * root gets no special case (no /var/lib/fcpd): `fcpd stop` run by the same user always finds the daemon it
 * started, and a system service sets FCPD_STATE_DIR in its unit file. Relative XDG_STATE_HOME values are
 * ignored, as the XDG Base Directory spec requires.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  const explicit = env['FCPD_STATE_DIR'];
  if (explicit !== undefined && explicit !== '') return explicit;
  const xdg = env['XDG_STATE_HOME'];
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'fcpd');
  return join(home, '.local', 'state', 'fcpd');
}

/** `<stateDir>/fcpd-<port>.pid`: one per port, so daemons on different ports can run side by side. */
export function defaultPidFile(stateDir: string, port: number): string {
  return join(stateDir, `fcpd-${port}.pid`);
}

/** `<stateDir>/fcpd.log`, where a detached daemon's output goes. */
export function defaultLogFile(stateDir: string): string {
  return join(stateDir, 'fcpd.log');
}

/** True if `pid` names a live process. EPERM means it exists but belongs to someone else. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM';
  }
}

/**
 * Writes this process's pid, atomically (temp file + rename) so a reader never sees a half-written number.
 * Refuses when the file already names a live process; a stale file is replaced.
 */
export async function writePidFile(file: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: STATE_DIR_MODE });
  const existing = await readPidFile(file);
  if (existing !== undefined && isAlive(existing)) {
    throw new FcpError('FCP_ERR_USAGE', `fcpd already running (pid ${existing})`, { path: file });
  }
  const temp = `${file}.${process.pid}.tmp`;
  try {
    const handle = await open(temp, 'w', PID_FILE_MODE);
    try {
      await handle.writeFile(`${process.pid}\n`);
      // The umask may have narrowed the mode given to open(); readers such as `fcpd stop` may be other users.
      await handle.chmod(PID_FILE_MODE);
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw toFcpError(err, file);
  }
}

/** The pid a pid file names; undefined if there is no file or it does not hold a pid. */
export async function readPidFile(file: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw toFcpError(err, file);
  }
  const trimmed = text.trim();
  if (!/^[0-9]{1,10}$/.test(trimmed)) return undefined;
  const pid = Number(trimmed);
  return pid > 0 ? pid : undefined;
}

/** Removes the pid file if it still names this process (a newer daemon may have replaced it). */
export async function removePidFile(file: string): Promise<void> {
  await removePidFileOf(file, process.pid);
}

async function removePidFileOf(file: string, pid: number | undefined): Promise<void> {
  if ((await readPidFile(file)) !== pid) return;
  await unlink(file).catch((err: unknown) => {
    if (errnoOf(err) !== 'ENOENT') throw toFcpError(err, file);
  });
}

/**
 * Stops the daemon a pid file names: SIGTERM, wait up to `timeoutMs` for it to exit, then SIGKILL.
 * A pid file that names no live process (or no pid at all) is stale: it is removed and 'not-running' returned.
 */
export async function stopDaemon(file: string, timeoutMs: number): Promise<'stopped' | 'not-running'> {
  const pid = await readPidFile(file);
  if (pid === undefined || !isAlive(pid) || !signal(pid, 'SIGTERM', file)) {
    await removePidFileOf(file, pid);
    return 'not-running';
  }
  if (!(await waitForExit(pid, timeoutMs))) {
    signal(pid, 'SIGKILL', file);
    if (!(await waitForExit(pid, KILL_GRACE_MS))) {
      throw new FcpError('FCP_ERR_INTERNAL', `fcpd (pid ${pid}) did not exit after SIGKILL`, { path: file });
    }
  }
  // A daemon that exits cleanly removes its own pid file; one that was killed cannot.
  await removePidFileOf(file, pid);
  return 'stopped';
}

/** Sends a signal; false if the process is already gone. */
function signal(pid: number, name: NodeJS.Signals, file: string): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch (err) {
    if (errnoOf(err) === 'ESRCH') return false;
    throw new FcpError(errnoOf(err) ?? 'FCP_ERR_INTERNAL', `cannot send ${name} to fcpd (pid ${pid})`, {
      path: file,
      cause: err,
    });
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(POLL_MS);
  }
  return true;
}

/** The detached child exited before it was ready; `exitCode` is its own (fcpd's documented codes). */
export class ChildStartupError extends FcpError {
  readonly exitCode: number;
  /** The one line worth showing a user (the child's own error line); `message` has the whole log tail. */
  readonly reason: string;

  constructor(message: string, reason: string, exitCode: number) {
    super('FCP_ERR_INTERNAL', message);
    this.reason = reason;
    this.exitCode = exitCode;
  }
}

export interface DetachOptions {
  /** Arguments after the node binary: the script and its options, with -d already removed by the caller. */
  argv: string[];
  logFile: string;
  pidFile: string;
  env?: NodeJS.ProcessEnv;
  /** How long the child may take to write its pid file; it is sent SIGTERM after that. */
  readyTimeoutMs?: number;
}

/**
 * Starts the daemon in the background: a detached child with stdin closed and stdout/stderr appended to the
 * log file. Resolves with the child's pid once the pid file names it (it is listening); if the child exits
 * first, rejects with the log lines it wrote.
 */
export async function detach(opts: DetachOptions): Promise<number> {
  await mkdir(dirname(opts.logFile), { recursive: true, mode: STATE_DIR_MODE });
  const logStart = await fileSize(opts.logFile);
  const fd = openSync(opts.logFile, 'a', LOG_FILE_MODE);
  let child: ReturnType<typeof spawn>;
  try {
    // execArgv: the node options this process was started with carry over to the daemon.
    child = spawn(process.execPath, [...process.execArgv, ...opts.argv], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
    });
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
  child.unref();

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const childOnExit = (code: number | null, sig: NodeJS.Signals | null): void => {
    exited = { code, signal: sig };
  };
  const childOnError = (err: Error): void => {
    spawnError = err;
  };
  child.on('exit', childOnExit);
  child.on('error', childOnError);
  try {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
    for (;;) {
      if (spawnError !== undefined) throw toFcpError(spawnError);
      const pid = child.pid;
      if (pid !== undefined && (await readPidFile(opts.pidFile)) === pid) return pid;
      if (exited !== undefined) {
        const how = exited.signal === null ? `exit code ${exited.code}` : `signal ${exited.signal}`;
        const tail = await readLogTail(opts.logFile, logStart);
        // The child said why in its last line ("fcpd: listen EADDRINUSE ..."): pass that on, one line.
        const message = `fcpd exited during startup (${how})${tail === '' ? '' : `:\n${tail}`}`;
        // fcpd's own last "fcpd: ..." line says why in one line (a crash adds a stack and node's version).
        const lines = tail.trim().split('\n');
        const own = lines.filter((line) => line.startsWith('fcpd: ')).pop() ?? lines.pop() ?? '';
        const reason = own === '' ? `fcpd exited during startup (${how}); see ${opts.logFile}` : own.slice(6);
        throw new ChildStartupError(message, reason, exited.code ?? 70);
      }
      if (Date.now() >= deadline) {
        // Do not leave a half-started daemon behind that the user cannot see.
        if (pid !== undefined) signal(pid, 'SIGTERM', opts.pidFile);
        const ms = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
        const message = `fcpd (pid ${pid}) was not ready within ${ms} ms and was stopped; see ${opts.logFile}`;
        throw new FcpError('FCP_ERR_INTERNAL', message, { path: opts.logFile });
      }
      await sleep(POLL_MS);
    }
  } finally {
    child.off('exit', childOnExit);
    child.off('error', childOnError);
  }
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** The last lines written to the log since `from`, so an old run's output is not blamed on this one. */
async function readLogTail(file: string, from: number): Promise<string> {
  try {
    const handle = await open(file, 'r');
    try {
      const size = (await handle.stat()).size;
      const start = Math.max(from, size - LOG_TAIL_BYTES);
      const buf = Buffer.alloc(Math.max(0, size - start));
      await handle.read(buf, 0, buf.length, start);
      const lines = buf.toString('utf8').split('\n');
      // Starting mid-file, the first line is a fragment.
      if (start > from) lines.shift();
      return lines
        .filter((line) => line.trim() !== '')
        .slice(-LOG_TAIL_LINES)
        .join('\n');
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}

/**
 * An append-only log file that can be reopened, so logrotate can move it away and send SIGHUP:
 * `process.on('SIGHUP', () => log.reopen())`. Writes are synchronous appends; a daemon's log is small and this
 * keeps every line whole and in order across a reopen. Output the daemon writes to stdout/stderr itself still
 * goes to the descriptor it inherited.
 */
export class LogFile extends Writable {
  readonly path: string;
  #fd: number;

  constructor(file: string) {
    super({ decodeStrings: true });
    this.path = file;
    this.#fd = openLogFd(file);
  }

  /** Opens the path again (after rotation) and closes the old descriptor. */
  reopen(): void {
    const next = openLogFd(this.path);
    const previous = this.#fd;
    this.#fd = next;
    closeSync(previous);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    try {
      let offset = 0;
      while (offset < chunk.length) offset += writeSync(this.#fd, chunk, offset);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    try {
      closeSync(this.#fd);
    } catch {
      // Already closed; nothing to release.
    }
    callback(error);
  }
}

function openLogFd(file: string): number {
  mkdirSync(dirname(file), { recursive: true, mode: STATE_DIR_MODE });
  return openSync(file, 'a', LOG_FILE_MODE);
}

/** Opens (creating 0640) the daemon's log for appending; call `.reopen()` on SIGHUP. */
export function openLog(file: string): LogFile {
  return new LogFile(file);
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
