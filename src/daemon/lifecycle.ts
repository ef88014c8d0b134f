/**
 * fcpd's process lifecycle: where its state lives, running in the background (-d), and a log file that can be
 * reopened after rotation. The pid file is pid-file.ts.
 *
 * The pid file doubles as the readiness signal: the daemon writes it only once it serves, and `detach`
 * waits for it to name the child.
 */

import { spawn } from 'node:child_process';
import { closeSync, fstatSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { FcpError, toFcpError } from '../protocol/errors.js';
import { readPidFile, signal } from './pid-file.js';

const STATE_DIR_MODE = 0o700;
const LOG_FILE_MODE = 0o640;
const POLL_MS = 50;
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

/**
 * The state directory of a daemon started with `--user NAME`: $FCPD_STATE_DIR when set, else
 * `<NAME's home>/.local/state/fcpd` — where NAME's own `fcpd stop` and clients look. The XDG variable of the
 * starting environment is root's, not NAME's, so it is not used. Everything the daemon keeps goes here, and
 * it is created and written only as NAME (spec/SECURITY.md §8).
 */
export function accountStateDir(home: string, env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env['FCPD_STATE_DIR'];
  if (explicit !== undefined && explicit !== '') return explicit;
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
  /** Arguments after the node binary: the script and its options (fcpd's own, -d included). */
  argv: string[];
  logFile: string;
  pidFile: string;
  /**
   * The log, opened for appending and reading by the caller (fcpd opens it as the served account); detach
   * closes it. Default: openLogFd(logFile).
   */
  logFd?: number;
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
  const fd = opts.logFd ?? openLogFd(opts.logFile);
  try {
    return await startChild(opts, fd);
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
}

async function startChild(opts: DetachOptions, logFd: number): Promise<number> {
  const logStart = fstatSync(logFd).size;
  // execArgv: the node options this process was started with carry over to the daemon.
  const child = spawn(process.execPath, [...process.execArgv, ...opts.argv], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: opts.env ?? process.env,
  });
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
        throw startupError(how, readLogTail(logFd, logStart), opts.logFile, exited.code ?? 70);
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

/** The child said why in its last line ("fcpd: listen EADDRINUSE ..."): pass that on, one line. */
function startupError(how: string, tail: string, logFile: string, exitCode: number): ChildStartupError {
  const message = `fcpd exited during startup (${how})${tail === '' ? '' : `:\n${tail}`}`;
  // fcpd's own last "fcpd: ..." line says why in one line (a crash adds a stack and node's version).
  const lines = tail.trim().split('\n');
  const own = lines.filter((line) => line.startsWith('fcpd: ')).pop() ?? lines.pop() ?? '';
  const reason = own === '' ? `fcpd exited during startup (${how}); see ${logFile}` : own.slice(6);
  return new ChildStartupError(message, reason, exitCode);
}

/**
 * The last lines written to the log since `from`, so an old run's output is not blamed on this one. Read
 * through the descriptor the child was given, not by path: the path may have changed hands since.
 */
function readLogTail(fd: number, from: number): string {
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(from, size - LOG_TAIL_BYTES);
    const buf = Buffer.alloc(Math.max(0, size - start));
    readSync(fd, buf, 0, buf.length, start);
    const lines = buf.toString('utf8').split('\n');
    // Starting mid-file, the first line is a fragment.
    if (start > from) lines.shift();
    return lines
      .filter((line) => line.trim() !== '')
      .slice(-LOG_TAIL_LINES)
      .join('\n');
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

/** Opens (creating it 0640, and its directory 0700) a log file for appending and reading. */
export function openLogFd(file: string): number {
  mkdirSync(dirname(file), { recursive: true, mode: STATE_DIR_MODE });
  return openSync(file, 'a+', LOG_FILE_MODE);
}

/** Opens (creating 0640) the daemon's log for appending; call `.reopen()` on SIGHUP. */
export function openLog(file: string): LogFile {
  return new LogFile(file);
}

/** SIGHUP (logrotate): reopen the log by its path. A failure keeps the old file and is said in it. */
export function reopenLog(log: LogFile | undefined): string {
  if (log === undefined) return 'SIGHUP: logging to stderr, no log file to reopen';
  try {
    log.reopen();
    return 'SIGHUP: log reopened';
  } catch (err) {
    const reason = toFcpError(err, log.path).message;
    return `SIGHUP: cannot reopen ${log.path} (${reason}); still writing to the file it was`;
  }
}
