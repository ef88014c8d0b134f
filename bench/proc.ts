/**
 * Child processes for the bench: timed runs with a hard time limit, long-lived services, and one cleanup
 * list that runs on normal exit and on SIGINT/SIGTERM. Every child is started in its own process group and
 * is ended through that group's id, so a `sh -c 'tar | ssh | tar'` pipeline goes away whole.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

const live = new Set<ChildProcess>();
// Set once cleanup has begun: no new child may start while mounts and services are being torn down.
let stopping = false;
const cleanups: Array<() => void | Promise<void>> = [];

export const GNU_TIME = '/usr/bin/time';

/** Registers a cleanup step; they run in reverse order, once. */
export function onCleanup(fn: () => void | Promise<void>): void {
  cleanups.push(fn);
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

export async function runCleanups(): Promise<void> {
  stopping = true;
  while (cleanups.length > 0) {
    const fn = cleanups.pop();
    try {
      await fn?.();
    } catch (err) {
      console.error(`cleanup: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  for (const child of live) killGroup(child, 'SIGKILL');
  live.clear();
}

/** On SIGINT/SIGTERM: stop every child and run the cleanups, then exit 130. */
export function installSignalCleanup(): void {
  let busy = false;
  const handler = (): void => {
    if (busy) return;
    busy = true;
    console.error('\nbench: interrupted, cleaning up');
    void runCleanups().finally(() => process.exit(130));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

export interface RunOptions {
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Told the child's pid once it is spawned (to sample its /proc entries while it runs). */
  onSpawn?: (pid: number) => void;
  /** Keep the last OUTPUT_CAP characters of stdout rather than the first (for a summary at the end). */
  stdoutTail?: boolean;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  seconds: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const OUTPUT_CAP = 64 * 1024;

function capAppend(acc: string, chunk: Buffer): string {
  if (acc.length >= OUTPUT_CAP) return acc;
  return acc + chunk.toString('utf8', 0, Math.min(chunk.length, OUTPUT_CAP - acc.length));
}

function tailAppend(acc: string, chunk: Buffer): string {
  return (acc + chunk.toString('utf8')).slice(-OUTPUT_CAP);
}

/** Runs a command to completion (or the time limit) and times it with a monotonic clock. */
export function runTimed(cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    if (stopping) {
      resolve({
        code: null,
        signal: 'SIGINT',
        seconds: 0,
        stdout: '',
        stderr: 'bench is stopping',
        timedOut: false,
      });
      return;
    }
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.on('data', (c: Buffer) => {
      stdout = opts.stdoutTail === true ? tailAppend(stdout, c) : capAppend(stdout, c);
    });
    child.stderr?.on('data', (c: Buffer) => {
      stderr = capAppend(stderr, c);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGKILL');
    }, opts.timeoutMs);
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      live.delete(child);
      // Leftovers of a pipeline whose first member exited are ended with the group.
      killGroup(child, 'SIGKILL');
      resolve({ code, signal, seconds: (performance.now() - t0) / 1000, stdout, stderr, timedOut });
    };
    child.on('error', (err) => {
      stderr += String(err);
      finish(127, null);
    });
    child.on('close', finish);
  });
}

/** Runs a shell command line (for pipelines). */
export function runShell(line: string, opts: RunOptions): Promise<RunResult> {
  return runTimed('/bin/sh', ['-c', line], opts);
}

export interface Service {
  pid: number;
  child: ChildProcess;
  /** First stdout lines, for services that announce themselves. */
  output(): string;
  /** The last 64 KiB of stderr, for diagnosing a failed run. */
  stderrTail(): string;
  stop(): Promise<void>;
}

export interface ServiceOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolve once a stdout line parses as JSON with this `event`; its object is returned. */
  readyEvent?: string;
  /** Or resolve once 127.0.0.1:port accepts a connection. */
  readyPort?: number;
  /** Or resolve once stdout holds this text (for servers that a probe connection would disturb). */
  readyText?: string;
  readyTimeoutMs?: number;
}

export interface StartedService {
  service: Service;
  ready: Record<string, unknown>;
}

/** Starts a long-lived child and waits until it is ready; it is stopped by the cleanups if not before. */
export async function startService(
  cmd: string,
  args: string[],
  opts: ServiceOptions,
): Promise<StartedService> {
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => {
    out = capAppend(out, c);
  });
  child.stderr?.on('data', (c: Buffer) => {
    err = tailAppend(err, c);
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const service: Service = {
    pid: child.pid ?? -1,
    child,
    output: () => out,
    stderrTail: () => err,
    stop: async () => {
      killGroup(child, 'SIGTERM');
      const t = setTimeout(() => killGroup(child, 'SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
      live.delete(child);
    },
  };
  onCleanup(() => service.stop());
  const deadline = performance.now() + (opts.readyTimeoutMs ?? 10_000);
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${cmd} exited before it was ready: ${err.trim().slice(-400)}`);
    }
    if (opts.readyEvent !== undefined) {
      for (const line of out.split('\n')) {
        const obj = parseJsonLine(line);
        if (obj?.['event'] === opts.readyEvent) return { service, ready: obj };
      }
    } else if (opts.readyText !== undefined && out.includes(opts.readyText)) {
      return { service, ready: {} };
    } else if (opts.readyPort !== undefined && (await portAccepts(opts.readyPort))) {
      return { service, ready: {} };
    }
    await sleep(25);
  }
  await service.stop();
  throw new Error(`${cmd} was not ready in time: ${err.trim().slice(-400)}`);
}

function parseJsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A port that was free a moment ago (for programs that need a fixed --port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Peak resident set (VmHWM) of a live process in KiB, or undefined. */
export function peakRssKb(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** Resets a process's VmHWM to its current RSS (Linux clear_refs 5), so the next read is one run's peak. */
export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // Not permitted or process gone: the figure then covers the process's whole life.
  }
}

export function haveGnuTime(): boolean {
  return existsSync(GNU_TIME);
}

/** A command on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const p = path.join(dir, cmd);
    if (dir !== '' && existsSync(p)) return p;
  }
  return undefined;
}
