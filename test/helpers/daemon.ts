// A real fcpd for end-to-end tests on an ephemeral loopback port: in-process (FcpServer) or as the built
// binary in a child process. Both stop reliably, with a bounded wait.
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { FcpServer } from '../../src/daemon/server.js';
import { FCPD_BIN, type Identity, spawnNode } from './cli.js';

export const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 10_000;
/** fcpd gives running sessions 10 s on SIGTERM; allow that, then SIGKILL. */
const STOP_TIMEOUT_MS = 15_000;
const KILL_TIMEOUT_MS = 5_000;
const READY_LINE = /^fcpd listening on 127\.0\.0\.1:(\d+)$/m;

export interface InProcessOptions {
  root: string;
  maxSessions?: number;
  maxConnections?: number;
  verbose?: boolean;
}

/** A daemon running inside the test process. */
export interface InProcessDaemon {
  port: number;
  server: FcpServer;
  /** Every line the daemon logged. */
  logs: string[];
  /** `host:port:` to prefix a remote path with. */
  remote(p: string): string;
  stop(): Promise<void>;
}

export async function startInProcessDaemon(opts: InProcessOptions): Promise<InProcessDaemon> {
  const logs: string[] = [];
  const server = new FcpServer({
    port: 0,
    bind: HOST,
    root: opts.root,
    maxSessions: opts.maxSessions ?? 16,
    maxConnections: opts.maxConnections ?? 64,
    log: (line) => logs.push(line),
    verbose: opts.verbose ?? true,
  });
  const port = await server.listen();
  let stopped: Promise<void> | undefined;
  return {
    port,
    server,
    logs,
    remote: (p) => `${HOST}:${port}:${p}`,
    stop() {
      stopped ??= server.close(0);
      return stopped;
    },
  };
}

export interface ChildDaemonOptions extends Identity {
  root: string;
  /** More fcpd options (not --port, --bind or --root). */
  args?: readonly string[];
  env?: Record<string, string>;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** fcpd running as a child process, serving `root` on an ephemeral port. */
export interface ChildDaemon {
  port: number;
  child: ChildProcess;
  /** Everything it printed so far. */
  stdout(): string;
  stderr(): string;
  remote(p: string): string;
  /** Resolves when the process has exited (with how). */
  exited: Promise<ChildExit>;
  /** SIGTERM (or `signal`), wait, then SIGKILL; resolves with how it exited. Safe to call twice. */
  stop(signal?: NodeJS.Signals): Promise<ChildExit>;
}

/** Starts `node dist/src/daemon/main.js --port 0 --root DIR` and waits for its readiness line. */
export async function spawnDaemon(opts: ChildDaemonOptions): Promise<ChildDaemon> {
  const args = ['--port', '0', '--bind', HOST, '--root', opts.root, ...(opts.args ?? [])];
  const child = spawnNode(FCPD_BIN, args, opts);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const stop = makeStopper(child, exited);
  let port: number;
  try {
    port = await waitForReady(
      child,
      () => out,
      () => err,
      exited,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    port,
    child,
    stdout: () => out,
    stderr: () => err,
    remote: (p) => `${HOST}:${port}:${p}`,
    exited,
    stop,
  };
}

function waitForReady(
  child: ChildProcess,
  out: () => string,
  err: () => string,
  exited: Promise<ChildExit>,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`fcpd not ready within ${READY_TIMEOUT_MS} ms; stderr:\n${err()}`));
    }, READY_TIMEOUT_MS);
    const onData = () => {
      const m = READY_LINE.exec(out());
      if (m === null) return;
      cleanup();
      resolve(Number(m[1]));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
    };
    child.stdout?.on('data', onData);
    exited.then((how) => {
      cleanup();
      reject(new Error(`fcpd exited before it was ready (${JSON.stringify(how)}); stderr:\n${err()}`));
    });
  });
}

function makeStopper(child: ChildProcess, exited: Promise<ChildExit>) {
  let stopping: Promise<ChildExit> | undefined;
  return (signal: NodeJS.Signals = 'SIGTERM'): Promise<ChildExit> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const first = await within(exited, STOP_TIMEOUT_MS);
      if (first !== undefined) return first;
      child.kill('SIGKILL');
      const second = await within(exited, KILL_TIMEOUT_MS);
      if (second === undefined) throw new Error(`fcpd (pid ${child.pid}) did not exit after SIGKILL`);
      return second;
    })();
    return stopping;
  };
}

/** The promise's value, or undefined if it has not settled within `ms`. */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A loopback port that was free a moment ago (bound, then released). Another process could take it in
 * between; on a test machine that is rare enough, and a failure would be loud, not silent.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}
