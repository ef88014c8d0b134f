// A real fcpd for end-to-end tests on an ephemeral loopback port: in-process (FcpServer) or as the built
// binary in a child process. Both stop reliably, with a bounded wait.
import type { ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FcpServer, type ServerOptions } from '../../src/daemon/server.js';
import type { FcpError } from '../../src/protocol/errors.js';
import { type Hasher, loadHasher } from '../../src/transfer/checksum.js';
import { FCPD_BIN, type Identity, spawnNode } from './cli.js';

export const HOST = '127.0.0.1';

/** What in-process push() and pull() share, for a daemon (or a proxy) on HOST:port. */
export interface ClientCommon {
  endpoint: { host: string; port: number };
  connections: number;
  checksum: false;
  select: Record<string, never>;
  hasher: Hasher;
  onWarning: (e: FcpError) => void;
}

export async function clientOptions(
  port: number,
  connections: number,
  onWarning: (e: FcpError) => void,
): Promise<ClientCommon> {
  const hasher = await loadHasher();
  return { endpoint: { host: HOST, port }, connections, checksum: false, select: {}, hasher, onWarning };
}
const READY_TIMEOUT_MS = 10_000;
/** fcpd gives running sessions 10 s on SIGTERM; allow that, then SIGKILL. */
const STOP_TIMEOUT_MS = 15_000;
const KILL_TIMEOUT_MS = 5_000;
const READY_LINE = /^fcpd listening on 127\.0\.0\.1:(\d+)$/m;

export interface InProcessOptions {
  /** --root; omitted, the daemon serves what this process may open, relative paths from `more.home`. */
  root?: string;
  maxSessions?: number;
  maxConnections?: number;
  verbose?: boolean;
  /** More server options (security ones: authorizedKeysFile, allowPlaintext, localToken, ...). */
  more?: Partial<ServerOptions>;
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
  // A private state dir: a host key of its own, and its token next to it (the in-process client finds it
  // through the handshake, as a same-host client does).
  const stateDir = mkdtempSync(path.join(tmpdir(), 'fcp-inproc-state-'));
  const server = new FcpServer({
    port: 0,
    bind: HOST,
    root: opts.root,
    maxSessions: opts.maxSessions ?? 16,
    maxConnections: opts.maxConnections ?? 64,
    log: (line) => logs.push(line),
    verbose: opts.verbose ?? true,
    stateDir,
    ...opts.more,
  });
  let port: number;
  try {
    port = await server.listen();
  } catch (err) {
    rmSync(stateDir, { recursive: true, force: true });
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    port,
    server,
    logs,
    remote: (p) => `${HOST}:${port}:${p}`,
    stop() {
      stopped ??= server.close(0).finally(() => rmSync(stateDir, { recursive: true, force: true }));
      return stopped;
    },
  };
}

export interface ChildDaemonOptions extends Identity {
  /** --root; omitted, the daemon serves what its account may open, relative paths from its HOME. */
  root?: string;
  /** A fixed port (to restart a daemon where clients know it); default 0, any free one. */
  port?: number;
  /** More fcpd options (not --port, --bind or --root). */
  args?: readonly string[];
  env?: Record<string, string>;
  /** A command to run node under (helpers/strace.ts): `child` is then that command's process. */
  wrap?: readonly string[];
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

/**
 * Starts `node dist/bin/fcpd.js --port 0 [--root DIR]` and waits for its readiness line. A daemon run as
 * another user gets a state directory of its own (its host key and token must be that user's files).
 */
export async function spawnDaemon(opts: ChildDaemonOptions): Promise<ChildDaemon> {
  const root = opts.root === undefined ? [] : ['--root', opts.root];
  const args = ['--port', String(opts.port ?? 0), '--bind', HOST, ...root, ...(opts.args ?? [])];
  let privateState: string | undefined;
  if (opts.uid !== undefined && opts.env?.['FCPD_STATE_DIR'] === undefined) {
    privateState = mkdtempSync(path.join(tmpdir(), 'fcp-e2e-state-'));
    chownSync(privateState, opts.uid, opts.gid ?? opts.uid);
    opts = { ...opts, env: { ...opts.env, FCPD_STATE_DIR: privateState } };
  }
  const child = spawnNode(FCPD_BIN, args, opts);
  if (privateState !== undefined) {
    const dir = privateState;
    child.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
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
    // exited only ever resolves (it waits for 'exit'), so this chain cannot reject.
    void exited.then((how) => {
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
