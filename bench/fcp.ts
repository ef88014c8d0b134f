/**
 * How the bench starts fcpd and runs the fcp client. The command lines live here and only here, so a change
 * to fcp's CLI (or the authentication step still to come) is a change to this file.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinned } from './pin.js';
import { freePort, onCleanup, type Service, startService } from './proc.js';

export const FCP_CLIENT_JS = fileURLToPath(new URL('../bin/fcp.js', import.meta.url));
export const FCP_DAEMON_JS = fileURLToPath(new URL('../bin/fcpd.js', import.meta.url));

/** A built fcp: this checkout's, or the baseline's (FCP_BENCH_BASELINE=DIR, a checkout with dist/ built). */
export interface FcpBuild {
  clientJs: string;
  daemonJs: string;
}

export const THIS_BUILD: FcpBuild = { clientJs: FCP_CLIENT_JS, daemonJs: FCP_DAEMON_JS };

/** The build in checkout `dir` (its dist/bin/). */
export function buildAt(dir: string): FcpBuild {
  return {
    clientJs: path.resolve(dir, 'dist/bin/fcp.js'),
    daemonJs: path.resolve(dir, 'dist/bin/fcpd.js'),
  };
}

/** Undefined when both entry points are compiled, else the reason fcp rows are skipped. */
export function fcpMissing(build: FcpBuild = THIS_BUILD): string | undefined {
  if (!existsSync(build.clientJs)) return `fcp not built (${build.clientJs} missing)`;
  if (!existsSync(build.daemonJs)) return `fcp not built (${build.daemonJs} missing)`;
  return undefined;
}

export interface FcpDaemon {
  port: number;
  root: string;
  /** The daemon's state directory (FCPD_STATE_DIR), where its token will live. */
  stateDir: string;
  service: Service;
}

/**
 * Starts `fcpd` in the foreground serving `root` on 127.0.0.1; ready once its port accepts connections.
 * `pin` goes before its command (taskset in the pinned mode); `build` says which fcpd.
 */
export async function startFcpDaemon(
  root: string,
  opts: { build?: FcpBuild; pin?: string[] } = {},
): Promise<FcpDaemon> {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'fcp-bench-state-'));
  onCleanup(() => rmSync(stateDir, { recursive: true, force: true }));
  const port = await freePort();
  const args = [
    (opts.build ?? THIS_BUILD).daemonJs,
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--root',
    root,
    // Also accepts plaintext, for the `fcp --no-encryption` rows; TLS clients still get TLS.
    '--no-encryption',
    '--max-sessions',
    '64',
  ];
  const { service } = await startService(...pinned(opts.pin ?? [], process.execPath, args), {
    env: { ...process.env, FCPD_STATE_DIR: stateDir },
    readyPort: port,
    readyTimeoutMs: 15_000,
  });
  return { port, root, stateDir, service };
}

/** Environment for the client. When fcp gains authentication, this is where the token is handed over. */
export function fcpClientEnv(daemon: FcpDaemon): NodeJS.ProcessEnv {
  return { ...process.env, FCPD_STATE_DIR: daemon.stateDir };
}

/** How an fcp client run is shaped beyond its operands. */
export interface FcpRunOptions {
  plaintext?: boolean;
  build?: FcpBuild;
  /** `--json` (stdout is JSON lines: the summary says how many connections were used) instead of `-q`. */
  json?: boolean;
}

/** `-n N`, or nothing to let fcp choose (its default). */
function connArgs(conns: number | undefined): string[] {
  return conns === undefined ? [] : ['-n', String(conns)];
}

function outputArgs(opts: FcpRunOptions): string[] {
  return opts.json === true ? ['--json'] : ['-q'];
}

/**
 * Arguments (after `node`) to push `src` to `dst` through `port` (the daemon's, or a WAN proxy's).
 * `dst` is an absolute path inside the daemon's root; a trailing slash on `src` copies its contents.
 */
export function fcpPushArgs(
  conns: number | undefined,
  src: string,
  port: number,
  dst: string,
  opts: FcpRunOptions = {},
): string[] {
  const enc = opts.plaintext === true ? ['--no-encryption'] : [];
  const js = (opts.build ?? THIS_BUILD).clientJs;
  return [js, 'push', ...outputArgs(opts), ...enc, ...connArgs(conns), src, `127.0.0.1:${port}:${dst}`];
}

/** Arguments (after `node`) to pull `src` (absolute, inside the daemon's root) into local `dst`. */
export function fcpPullArgs(
  conns: number | undefined,
  port: number,
  src: string,
  dst: string,
  opts: FcpRunOptions = {},
): string[] {
  const js = (opts.build ?? THIS_BUILD).clientJs;
  return [js, 'pull', ...outputArgs(opts), ...connArgs(conns), `127.0.0.1:${port}:${src}`, dst];
}

/**
 * The `connections` field of the summary line of `fcp --json` output (spec/EVENTS.md): the most data
 * connections open at once. Undefined when absent (builds before it was added).
 */
export function summaryConnections(stdout: string): number | undefined {
  const connections = jsonLine(stdout, 'summary')?.['connections'];
  return typeof connections === 'number' ? connections : undefined;
}

/**
 * Seconds from the `start` line of `fcp --json` output (the daemon granted the session) to its `summary`
 * line: the copy without the process start, the connect and the login (the raw TCP and iperf3 rows leave
 * those out too). Undefined when either line is missing: the bench keeps only the last 64 KiB of stdout,
 * which loses `start` behind many `file` lines (the small-file sets).
 */
export function sessionSeconds(stdout: string): number | undefined {
  const start = jsonLine(stdout, 'start')?.['time'];
  const end = jsonLine(stdout, 'summary')?.['time'];
  if (typeof start !== 'string' || typeof end !== 'string') return undefined;
  const ms = Date.parse(end) - Date.parse(start);
  return Number.isFinite(ms) && ms > 0 ? ms / 1000 : undefined;
}

/** The last line of `fcp --json` output whose event is `event`, parsed; undefined when there is none. */
function jsonLine(stdout: string, event: string): Record<string, unknown> | undefined {
  const from = stdout.lastIndexOf(`"event":"${event}"`);
  if (from < 0) return undefined;
  const start = stdout.lastIndexOf('\n', from) + 1;
  const end = stdout.indexOf('\n', from);
  try {
    return JSON.parse(stdout.slice(start, end < 0 ? undefined : end)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
