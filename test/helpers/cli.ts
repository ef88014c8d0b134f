// Runs the built fcp and fcpd binaries as child processes with a timeout, and keeps track of every child so
// a failing test cannot leave one behind. Also: the unprivileged user some tests run as, and the summary
// line parser.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from './sync.js';

/** fcp and fcpd as installed: the single-file bundles `npm run build` writes (this file is dist/test/helpers/cli.js). */
export const FCP_BIN = fileURLToPath(new URL('../../bin/fcp.js', import.meta.url));
export const FCPD_BIN = fileURLToPath(new URL('../../bin/fcpd.js', import.meta.url));

export const DEFAULT_RUN_TIMEOUT_MS = 30_000;

/** A uid/gid to run a child as; empty to run as ourselves. */
export interface Identity {
  uid?: number;
  gid?: number;
}

export interface RunOptions extends Identity {
  /** Killed with SIGKILL after this long; the result then has timedOut set. */
  timeoutMs?: number;
  /** Added to the environment (which always gets a private, empty HOME; see hermeticEnv). */
  env?: Record<string, string>;
  cwd?: string;
  /** A command to run node under, e.g. strace and its options (helpers/strace.ts). */
  wrap?: readonly string[];
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Registers a child so it is killed if the test process exits while it still runs. */
export function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) {
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

let emptyHome: string | undefined;

/**
 * The environment of every child: ours, with HOME pointing at an empty directory anyone may read, so a
 * developer's ~/.ssh/config cannot change a host and a child running as another user can read its HOME.
 */
export function hermeticEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  if (emptyHome === undefined) {
    const home = mkdtempSync(path.join(tmpdir(), 'fcp-e2e-home-'));
    chmodSync(home, 0o755);
    process.once('exit', () => rmSync(home, { recursive: true, force: true }));
    emptyHome = home;
  }
  return { ...process.env, HOME: emptyHome, FCPD_STATE_DIR: path.join(emptyHome, 'state'), ...extra };
}

/** Starts `node <script> ...args`, tracked, stdin ignored. */
export function spawnNode(script: string, args: readonly string[], opts: RunOptions = {}): ChildProcess {
  const argv = [...(opts.wrap ?? []), process.execPath, script, ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: hermeticEnv(opts.env),
    cwd: opts.cwd ?? process.cwd(),
    ...(opts.uid === undefined ? {} : { uid: opts.uid }),
    ...(opts.gid === undefined ? {} : { gid: opts.gid }),
  });
  track(child);
  return child;
}

/** Runs `node <script> ...args` to completion (or the timeout) and captures everything. */
export function runNode(script: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const child = spawnNode(script, args, opts);
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS);
  return new Promise((resolve, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'close' rather than 'exit': it comes after stdout and stderr have been read to their end.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, durationMs: performance.now() - started });
    });
  });
}

/** Runs the fcp client. */
export function runFcp(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return runNode(FCP_BIN, args, opts);
}

/** Runs fcpd to completion (help, stop, -d, errors); see daemon.ts for a serving one. */
export function runFcpd(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return runNode(FCPD_BIN, args, opts);
}

/** A short description of a run for assertion messages. */
export function describeRun(r: RunResult): string {
  const how = r.timedOut ? 'timed out' : r.signal !== null ? `signal ${r.signal}` : `exit ${r.code}`;
  return `${how} after ${Math.round(r.durationMs)} ms\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** The counts of fcp's summary line "fcp: N files sent, N skipped, N failed, X in S s (R)". */
export interface Summary {
  sent: number;
  skipped: number;
  failed: number;
  /** As printed: '0 B', '65.0 MiB'. */
  bytes: string;
}

const SUMMARY =
  /^fcp: ([\d,]+) files? sent, ([\d,]+) skipped, ([\d,]+) failed, (.+?) in [\d.:]+(?: s)?(?: \(.*\))?$/m;

/** Parses the summary line out of fcp's stdout; undefined when there is none. */
export function parseSummary(stdout: string): Summary | undefined {
  const m = SUMMARY.exec(stdout);
  if (m === null) return undefined;
  const num = (s: string | undefined) => Number((s ?? '').replaceAll(',', ''));
  return { sent: num(m[1]), skipped: num(m[2]), failed: num(m[3]), bytes: m[4] ?? '' };
}

export const TEST_USER = 'fcptest';

let identity: Identity | undefined;

/**
 * The identity of an unprivileged user to run children as. As root (CI), the user `fcptest` (created if
 * missing, no home, no login shell); as anyone else, ourselves, who are unprivileged already.
 */
export function unprivileged(): Identity {
  if (identity !== undefined) return identity;
  if (process.getuid?.() !== 0) {
    identity = {};
    return identity;
  }
  const lookup = () => {
    try {
      const uid = Number(execFileSync('id', ['-u', TEST_USER], { stdio: 'pipe' }).toString().trim());
      const gid = Number(execFileSync('id', ['-g', TEST_USER], { stdio: 'pipe' }).toString().trim());
      return { uid, gid };
    } catch {
      return undefined;
    }
  };
  let found = lookup();
  if (found === undefined) {
    try {
      execFileSync('useradd', ['-M', '-s', '/usr/sbin/nologin', TEST_USER], { stdio: 'pipe' });
    } catch (err) {
      // Another test file may have created it a moment ago; only a lookup that still fails is an error.
      if (lookup() === undefined) throw err;
    }
    found = lookup();
  }
  if (found === undefined) throw new Error(`cannot find or create user ${TEST_USER}`);
  checkCanRun(found);
  identity = found;
  return identity;
}

/**
 * Fails early, and plainly, when the user cannot even load the built client (an unreadable checkout). A
 * checkout inside a private directory (`mktemp -d` makes them 0700) is first made traversable: o+x, search
 * only, on each directory above it that lacks it, so the user can reach the files but list nothing new.
 */
function checkCanRun(user: Identity): void {
  const run = () =>
    execFileSync(process.execPath, [FCP_BIN, '--version'], { ...user, stdio: 'pipe', env: hermeticEnv() });
  try {
    run();
    return;
  } catch {
    grantSearchAbove(FCP_BIN);
  }
  try {
    run();
  } catch (err) {
    const detail = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err);
    throw new Error(
      `user ${TEST_USER} cannot run ${FCP_BIN}; the checkout and its parent directories must be ` +
        `readable by other users (o+rx):\n${detail}`,
      { cause: err },
    );
  }
}

/** Adds o+x to every directory from `file`'s up to the file system root that lacks it. */
export function grantSearchAbove(file: string): void {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const mode = statSync(dir).mode & 0o7777;
    if ((mode & 0o001) === 0) chmodSync(dir, mode | 0o001);
    if (path.dirname(dir) === dir) return;
  }
}

/** True when children can be run as a user other than ours (we are root). */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}
