// `fcpd --serve-once` as a child process, as ssh would run it (stdin a pipe, the bootstrap line on stdout),
// with a private HOME and XDG_RUNTIME_DIR; and the client options that reach it directly or through
// `fcpd --stdio` children. No ssh: test/e2e/ssh-*.test.ts add that.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CommonOptions } from '../../src/client/options.js';
import type { FcpError } from '../../src/protocol/errors.js';
import { type BootstrapInfo, parseBootstrapLine } from '../../src/transport/bootstrap-line.js';
import { type CommandDialer, commandDialer } from '../../src/transport/command-dial.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import { createStats } from '../../src/transfer/stats.js';
import { FCPD_BIN, track } from './cli.js';
import { HOST } from './daemon.js';

const READY_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 15_000;

export interface ServeOnceChild {
  readonly child: ChildProcess;
  readonly info: BootstrapInfo;
  /** The private HOME (its .cache/fcp/run is the relay socket's directory unless XDG_RUNTIME_DIR is set). */
  readonly home: string;
  /** The environment the daemon ran with: `fcpd --stdio` children get the same. */
  readonly env: NodeJS.ProcessEnv;
  stdout(): string;
  stderr(): string;
  /** Resolves with how the process ended (bounded; SIGKILL after EXIT_TIMEOUT_MS). */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Kills it if still running and removes its HOME. */
  cleanup(): Promise<void>;
}

export interface ServeOnceStart {
  /** --root. */
  root?: string;
  /** More fcpd arguments. */
  args?: readonly string[];
  /** More environment (FCPD_SERVE_ONCE_IDLE_MS). */
  env?: Record<string, string>;
  /** Use $XDG_RUNTIME_DIR/fcp (a private dir made here) instead of ~/.cache/fcp/run. */
  xdg?: boolean;
}

export async function startServeOnce(opts: ServeOnceStart = {}): Promise<ServeOnceChild> {
  const home = await mkdtemp(path.join(tmpdir(), 'fcp-serve-once-home-'));
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, ...opts.env };
  delete env['XDG_RUNTIME_DIR'];
  if (opts.xdg === true) {
    env['XDG_RUNTIME_DIR'] = path.join(home, 'run');
    mkdirSync(env['XDG_RUNTIME_DIR'], { mode: 0o700 });
  }
  const args = ['--serve-once', '--bind', HOST, ...(opts.root === undefined ? [] : ['--root', opts.root])];
  const child = spawn(process.execPath, [FCPD_BIN, ...args, ...(opts.args ?? [])], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env,
  });
  track(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const info = await readInfo(
    child,
    () => out,
    () => err,
    exit,
  );
  return {
    child,
    info,
    home,
    env,
    stdout: () => out,
    stderr: () => err,
    exited: () => bounded(child, exit),
    cleanup: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exit;
      await rm(home, { recursive: true, force: true });
    },
  };
}

async function readInfo(
  child: ChildProcess,
  out: () => string,
  err: () => string,
  exit: Promise<unknown>,
): Promise<BootstrapInfo> {
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no bootstrap line: ${err()}`)), READY_TIMEOUT_MS);
    const onData = () => {
      const nl = out().indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve(out().slice(0, nl));
    };
    child.stdout!.on('data', onData);
    void exit.then(() => reject(new Error(`fcpd --serve-once exited: ${err()}`)));
  });
  const info = parseBootstrapLine(line);
  if (info === undefined) throw new Error(`not a bootstrap line: ${line}`);
  return info;
}

function bounded<T>(child: ChildProcess, exit: Promise<T>): Promise<T> {
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
  return exit.finally(() => clearTimeout(timer));
}

/** Client options that reach `d` directly (TCP+TLS to its port) with its one-time secret. */
export async function directOptions(
  d: ServeOnceChild,
  connections: number,
  onWarning: (e: FcpError) => void,
  secret: Buffer = d.info.secret,
): Promise<CommonOptions> {
  return {
    endpoint: { host: HOST, port: d.info.port },
    security: {
      oneTime: { hostFingerprint: d.info.hostKey, secret },
      // Nothing here may read or write a known_hosts: point it where a write would show.
      knownHostsFile: path.join(d.home, 'client-known_hosts'),
      agentSocket: undefined,
      homeDir: d.home,
    },
    connections,
    checksum: false,
    select: {},
    hasher: await loadHasher(),
    stats: createStats(performance.now()),
    onWarning,
  };
}

/** A dialer whose every channel is an `fcpd --stdio SOCKET` child of this process. */
export function relayDialer(d: ServeOnceChild): CommandDialer {
  return commandDialer({
    peerName: 'the serve-once daemon (through fcpd --stdio)',
    argv: () => [process.execPath, FCPD_BIN, '--stdio', d.info.relay],
    env: d.env,
  });
}

/** Client options that reach `d` through `fcpd --stdio` children (carried), with its one-time secret. */
export async function carriedOptions(
  d: ServeOnceChild,
  connections: number,
  onWarning: (e: FcpError) => void,
): Promise<{ opts: CommonOptions; dialer: CommandDialer }> {
  const dialer = relayDialer(d);
  return { opts: { ...(await directOptions(d, connections, onWarning)), dialer }, dialer };
}

/** Pids of processes whose command line mentions `text` (a relay socket path): what a test left running. */
export function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmdline.includes(text)) out.push(Number(name));
    } catch {
      // Gone between readdir and read: not left running.
    }
  }
  return out;
}

/**
 * The processes still mentioning `text` once they have had up to `withinMs` to exit: a relay ends just
 * after the daemon whose socket it joined, and one spawned as the session failed ends once its connect is
 * refused. Polls /proc, bounded: a process still there after `withinMs` is left running.
 */
export async function processesLeftMentioning(text: string, withinMs = 5000): Promise<number[]> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const left = processesMentioning(text);
    if (left.length === 0 || Date.now() >= deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Serve-once daemons a test file started, all killed and removed by cleanupAll() (its test.after.each). */
export function serveOnceRegistry(): {
  start(root: string, more?: ServeOnceStart): Promise<ServeOnceChild>;
  cleanupAll(): Promise<void>;
} {
  const running: ServeOnceChild[] = [];
  return {
    async start(root, more = {}) {
      const d = await startServeOnce({ root, ...more });
      running.push(d);
      return d;
    },
    async cleanupAll() {
      for (const d of running.splice(0)) await d.cleanup();
    },
  };
}
