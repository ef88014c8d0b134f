/**
 * `fcpd --serve-once` and `fcpd --stdio SOCKET`, the two commands fcp runs over ssh (spec/PROTOCOL.md §8).
 * Serve-once prints the bootstrap line on stdout and nothing else there, ever; it logs nowhere unless
 * --log-file is given, and a fatal start-up error is one line on stderr. The relay prints nothing at all
 * on stdout but the daemon's frames.
 */
import { homedir } from 'node:os';
import { FcpError } from '../protocol/index.js';
import { relayStdio } from '../transport/stdio-relay.js';
import { openLog } from '../daemon/lifecycle.js';
import { formatAddress } from '../daemon/listen-address.js';
import { type ServeOnceEnd, startServeOnce } from '../daemon/serve-once.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { checkPort } from './fcpd-options.js';
import { type EarlyServeOnce, openAndAnnounce, StopWiring } from './fcpd-serve-once-open.js';
import { printable } from './printable.js';

/** Hidden, for tests: the idle time before a serve-once daemon with no login exits, in ms. */
export const IDLE_ENV = 'FCPD_SERVE_ONCE_IDLE_MS';
/**
 * Hidden, for tests: how long after the bootstrap line the daemon waits before loading what serving needs,
 * so that a test's connections arrive first and must wait for it.
 */
export const DEFER_ENV = 'FCPD_SERVE_ONCE_DEFER_MS';

/** The fcpd options these commands read (the rest are the standing daemon's, refused by name). */
export interface OverSshArgs {
  readonly 'serve-once': boolean | undefined;
  readonly stdio: string | undefined;
  /** Undefined: 0, an ephemeral port. */
  readonly port: number | undefined;
  readonly bind: string | undefined;
  readonly root: string | undefined;
  readonly 'max-connections': number;
  readonly 'log-file': string | undefined;
  readonly verbose: boolean | undefined;
  readonly encryption: boolean | undefined;
}

/** Options of the standing daemon that `--serve-once` and `--stdio` refuse. */
const STANDING_ONLY = [
  'detach',
  'user',
  'pid-file',
  'fingerprint',
  'authorized-keys',
  'local-token',
  'bwlimit',
  // Its one session is the client's, which asks with fcp --fsync.
  'fsync',
];

/** The exit code of `--stdio` or `--serve-once` once done; undefined when neither was asked for. */
export function commandOverSsh(args: OverSshArgs, early?: EarlyServeOnce): Promise<number> | undefined {
  const given = args as unknown as Readonly<Record<string, unknown>>;
  const standing = STANDING_ONLY.filter((k) => given[k] !== undefined);
  if (args.encryption === false) standing.push('no-encryption');
  if (args.stdio !== undefined) {
    const conflicting = args['serve-once'] === true ? [...standing, 'serve-once'] : standing;
    return stdioRelay(args.stdio, conflicting);
  }
  if (args['serve-once'] !== true) return undefined;
  return serveOnce(
    {
      port: args.port ?? 0,
      bind: args.bind,
      root: args.root,
      maxConnections: args['max-connections'],
      logFile: args['log-file'],
      verbose: args.verbose === true,
      conflicting: standing,
    },
    early,
  );
}

interface ServeOnceArgs {
  readonly port: number;
  readonly bind: string | undefined;
  readonly root: string | undefined;
  readonly maxConnections: number;
  readonly logFile: string | undefined;
  readonly verbose: boolean;
  /** Options of the standing daemon given with --serve-once, by name, to refuse. */
  readonly conflicting: readonly string[];
}

/** Serves one session (the launcher may have bound and announced it already); resolves with the exit code. */
async function serveOnce(args: ServeOnceArgs, early: EarlyServeOnce | undefined): Promise<number> {
  const [conflict] = args.conflicting;
  if (conflict !== undefined) {
    throw new FcpError('FCP_ERR_USAGE', `--serve-once cannot be combined with --${conflict}`);
  }
  checkPort(args.port);
  const log = args.logFile === undefined ? undefined : openLog(args.logFile);
  const write = (line: string) =>
    log?.write(`${new Date().toISOString()} fcpd[${process.pid}] ${printable(line)}\n`);
  const stopping = early?.stopping ?? new StopWiring();
  const opened = early?.opened ?? (await openAndAnnounce(args, stopping));
  const running = await startServeOnce(opened, {
    ...(args.root === undefined ? {} : { root: args.root }),
    home: homedir(),
    maxConnections: args.maxConnections,
    log: write,
    verbose: args.verbose,
    stdin: process.stdin,
    stop: stopping.signal,
    ...idleOverride(),
    ...deferOverride(),
  });
  // Only after the line, which the client waits for, and only into a log: formatAddress's first IPv6 check
  // builds node's large address pattern, 5-20 ms of the remote start (profiled, pinned).
  if (log !== undefined) {
    write(
      `serve-once: listening on ${formatAddress(running.address, running.info.port)} and ` +
        `${running.info.relay}, host key ${running.info.hostKey}`,
    );
  }
  const how = await running.ended;
  write(`serve-once: ${describeEnd(how)}; exiting`);
  return exitCodeOf(how);
}

/** Relays stdin/stdout to the serve-once daemon's socket until either side ends. */
async function stdioRelay(socketPath: string, conflicting: readonly string[]): Promise<number> {
  const [conflict] = conflicting;
  if (conflict !== undefined) {
    throw new FcpError('FCP_ERR_USAGE', `--stdio cannot be combined with --${conflict}`);
  }
  await relayStdio(socketPath, process.stdin, process.stdout);
  return EXIT.OK;
}

function idleOverride(): { idleMs?: number } {
  const value = envMs(IDLE_ENV);
  return value === undefined ? {} : { idleMs: value };
}

function deferOverride(): { deferMs?: number } {
  const value = envMs(DEFER_ENV);
  return value === undefined ? {} : { deferMs: value };
}

/** A positive integer of ms from the environment, else undefined. */
function envMs(name: string): number | undefined {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : undefined;
}

function describeEnd(how: ServeOnceEnd): string {
  switch (how.reason) {
    case 'session':
      return how.error === undefined ? 'the session ended' : `the session failed: ${how.error.message}`;
    case 'start':
      return `could not start serving: ${how.error.message}`;
    case 'idle':
      return 'no client logged in in time';
    case 'stdin':
      return 'stdin closed (ssh went away)';
    case 'stopped':
      return 'stopped by a signal';
  }
}

/** A session that failed says how; no login in time is a client that could not connect (4). */
function exitCodeOf(how: ServeOnceEnd): number {
  if (how.reason === 'session') return how.error === undefined ? EXIT.OK : exitCodeFor(how.error);
  if (how.reason === 'start') {
    // Before the line, fcpd.ts's fail() says it; after it, this is the one line on stderr.
    process.stderr.write(`fcpd: --serve-once: ${printable(how.error.message)}\n`);
    return exitCodeFor(how.error);
  }
  if (how.reason === 'idle') {
    process.stderr.write('fcpd: --serve-once: no client logged in in time; exiting\n');
    return EXIT.CONNECT;
  }
  return EXIT.OK;
}
