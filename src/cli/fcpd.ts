/**
 * fcpd: the daemon's command line, run by runFcpd() from the launcher (fcpd-launch.ts, bin/fcpd.js). `fcpd` serves in the foreground (logs on stderr), `fcpd -d` detaches
 * (logs to the state directory's fcpd.log), `fcpd stop` stops the daemon named by the pid file,
 * `fcpd --fingerprint` prints the host key fingerprint. Started as root, `--user NAME` drops to that account
 * right after binding, serves its home and keeps all its state in NAME's state directory (spec/SECURITY.md §8).
 */
import { homedir } from 'node:os';
import path from 'node:path';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DEFAULT_PORT, FCP_VERSION, FcpError, toFcpError } from '../protocol/index.js';
import { loadOrCreateHostKey } from '../security/host-key.js';
import { RateLimit } from '../transport/rate-limit.js';
import {
  type Account,
  dropPrivileges,
  isRoot,
  lookupAccount,
  withAccountIds,
} from '../security/privileges.js';
import { EXIT, exitCodeFor, exitCodesHelp } from './exit-codes.js';
import { commandOverSsh } from './fcpd-serve-once.js';
import type { EarlyServeOnce } from './fcpd-serve-once-open.js';
import { quickOverSshArgs } from './fcpd-quick-args.js';
import { printable } from './printable.js';
import { pinYoungGeneration } from './young-generation.js';
import { parseRate } from './rate-option.js';
import { type Effective, optionTable, type Source } from './config-apply.js';
import { daemonSettings, formatDaemonConfig } from './config-daemon.js';
import { daemonPaths, type DaemonPaths, servedAccount } from '../daemon/daemon-paths.js';
import {
  ChildStartupError,
  defaultPidFile,
  detach,
  type LogFile,
  openLog,
  openLogFd,
  reopenLog,
} from '../daemon/lifecycle.js';
import { ANY_ADDRESSES, formatAddress, listenOnFirst } from '../daemon/listen-address.js';
import { PartialRegistry } from '../daemon/partials.js';
import { isAlive, readPidFile, removePidFileAtExit, stopDaemon, writePidFile } from '../daemon/pid-file.js';
import { FcpServer, type ServerOptions } from '../daemon/server.js';
import { daemonStatusCommand } from './daemon-status-command.js';
import { checkPort, isCount, serveOptions, stopOptions } from './fcpd-options.js';

/** Set in the environment of the child that `fcpd -d` starts. */
const DETACHED_ENV = 'FCPD_DETACHED';
const STOP_TIMEOUT_MS = 15_000;
/** On SIGTERM, running sessions get this long to finish before their sockets are closed. */
const SHUTDOWN_GRACE_MS = 10_000;

interface ServeArgs {
  /** Undefined: 7523, or 0 (ephemeral) with --serve-once. */
  port: number | undefined;
  /** Undefined: every address, IPv6 and IPv4 (listen-address.ts). */
  bind: string | undefined;
  /** Undefined: serve what the account may open, relative paths from its home (spec/SECURITY.md §11). */
  root: string | undefined;
  'max-sessions': number;
  'max-connections': number;
  detach: boolean | undefined;
  'pid-file': string | undefined;
  'log-file': string | undefined;
  'partial-max-age': number;
  verbose: boolean | undefined;
  user: string | undefined;
  'authorized-keys': string | undefined;
  bwlimit: string | undefined;
  fsync: boolean | undefined;
  /** Undefined (not given) means on, as for local-token: yargs would print `[default: true]` otherwise. */
  encryption: boolean | undefined;
  'local-token': boolean | undefined;
  fingerprint: boolean | undefined;
  'serve-once': boolean | undefined;
  stdio: string | undefined;
  /** Not an option: why plaintext is refused when `encryption` was set, by flag or file (tlsOnlyCause). */
  tlsOnlyCause?: string | undefined;
}

/**
 * What a plaintext client is told this fcpd's cause is, when its setting says TLS only; undefined for the
 * default, which the server words itself.
 */
function tlsOnlyCause(encryption: boolean | undefined, source: Source | undefined): string | undefined {
  if (encryption !== true || source === undefined || source === 'default') return undefined;
  // The file's path stays out: the client is not authenticated yet.
  return source === 'flag'
    ? 'this fcpd accepts TLS only, as started with --encryption'
    : 'this fcpd accepts TLS only, as its config file sets encryption = true';
}

function fail(err: unknown): never {
  if (err instanceof ChildStartupError) {
    // The detached child already said why in its log; repeat its one line, with its own exit code.
    process.stderr.write(`fcpd: ${printable(err.reason)}\n`);
    process.exit(err.exitCode);
  }
  // A bare node error (mkdir of the state directory, say) carries its path only in its own field.
  const nodePath = (err as { path?: unknown } | null)?.path;
  const e = toFcpError(err, typeof nodePath === 'string' ? nodePath : undefined);
  const where = e.path !== undefined && !e.message.includes(e.path) ? `${e.path}: ` : '';
  process.stderr.write(`fcpd: ${printable(`${where}${e.message}`)}\n`);
  process.exit(exitCodeFor(e));
}

/** `fcpd`, or one of the commands fcp runs over ssh (`--serve-once`, `--stdio SOCKET`). */
async function serveCommand(args: ServeArgs): Promise<void> {
  const overSsh = commandOverSsh(args);
  if (overSsh !== undefined) process.exit(await overSsh);
  return serve({ ...args, port: args.port ?? DEFAULT_PORT });
}

async function serve(args: ServeArgs & { port: number }): Promise<void> {
  checkPort(args.port);
  for (const key of ['max-sessions', 'max-connections'] as const) {
    if (!isCount(args[key])) throw new FcpError('FCP_ERR_USAGE', `--${key} must be a positive integer`);
  }
  // Parsed before anything is bound or started: a bad rate is a usage error, exit 1.
  const rateLimit = args.bwlimit === undefined ? undefined : new RateLimit(parseRate(args.bwlimit));
  const account = servedAccount(args.user);
  const paths = daemonPaths(account, args.port, args['pid-file'], args['log-file']);
  if (args.fingerprint === true) await printFingerprint(paths.stateDir, account);
  // The detached child runs this same command line, -d included; the variable tells it that it is the child.
  if (args.detach !== true) return runDaemon(args, paths, account, undefined, rateLimit);
  if (process.env[DETACHED_ENV] !== '1') await startDetached(args.port, paths, account);
  // The detached child: its stderr is the log, which it opens itself too, so that SIGHUP can reopen it.
  await runDaemon(args, paths, account, paths.logFile, rateLimit);
}

/** --fingerprint; with --user, as that account, whose state directory holds the key. */
async function printFingerprint(stateDir: string, account: Account | undefined): Promise<never> {
  if (account !== undefined) dropPrivileges(account);
  const hostKey = await loadOrCreateHostKey(stateDir);
  process.stdout.write(`${hostKey.fingerprint}\n`);
  process.exit(EXIT.OK);
}

/**
 * fcpd -d: starts this command line again as a detached child and returns once it serves. The child's log is
 * opened here, as the served account when there is one, so root never creates a file in a user's directory
 * by a path that user controls.
 */
async function startDetached(port: number, paths: DaemonPaths, account: Account | undefined): Promise<never> {
  const { pidFile, logFile } = paths;
  if (pidFile === undefined) {
    throw new FcpError('FCP_ERR_USAGE', 'fcpd -d needs a fixed --port or a --pid-file');
  }
  const running = await readPidFile(pidFile);
  if (running !== undefined && isAlive(running)) {
    throw new FcpError('FCP_ERR_USAGE', `fcpd is already running on port ${port} (pid ${running})`);
  }
  let logFd: number;
  try {
    logFd = account === undefined ? openLogFd(logFile) : withAccountIds(account, () => openLogFd(logFile));
  } catch (err) {
    throw toFcpError(err, logFile);
  }
  const pid = await detach({
    argv: process.argv.slice(1),
    logFile,
    pidFile,
    logFd,
    env: { ...process.env, [DETACHED_ENV]: '1' },
  });
  process.stdout.write(`fcpd: started in the background (pid ${pid}); log ${logFile}\n`);
  process.exit(EXIT.OK);
}

/** Serves until a signal stops it; logs to `logFile` when given (the detached child), else to stderr. */
async function runDaemon(
  args: ServeArgs & { port: number },
  paths: DaemonPaths,
  account: Account | undefined,
  logFile: string | undefined,
  rateLimit: RateLimit | undefined,
): Promise<void> {
  let log: LogFile | undefined;
  // Until the detached child has its own log open (after the drop), its stderr is that same file.
  let out: NodeJS.WritableStream = process.stderr;
  // Lines carry names from the wire: escape control characters so a peer cannot forge log lines.
  const write = (line: string) =>
    out.write(`${new Date().toISOString()} fcpd[${process.pid}] ${printable(line)}\n`);

  const maxAgeMs = args['partial-max-age'] * 3600_000;
  const partials = new PartialRegistry(paths.stateDir, maxAgeMs, write, args.root ?? '/');
  const options: Omit<ServerOptions, 'bind'> = {
    partials,
    port: args.port,
    ...servedTree(args.root, account?.home ?? homedir()),
    maxSessions: args['max-sessions'],
    maxConnections: args['max-connections'],
    log: write,
    verbose: args.verbose === true,
    stateDir: paths.stateDir,
    localToken: args['local-token'] !== false,
    allowPlaintext: args.encryption === false,
    tlsOnlyCause: args.tlsOnlyCause,
    ...(rateLimit === undefined ? {} : { rateLimit }),
    fsync: args.fsync === true,
    ...(account === undefined ? {} : { account }),
    ...(args['authorized-keys'] === undefined
      ? {}
      : { authorizedKeysFile: path.resolve(args['authorized-keys']) }),
    afterBind: () => {
      if (account !== undefined) dropPrivileges(account);
    },
  };
  const binds = args.bind === undefined ? ANY_ADDRESSES : [args.bind];
  const { result, address } = await listenOnFirst(binds, args.port, async (bind) => {
    const server = new FcpServer({ ...options, bind });
    return { server, port: await server.listen() };
  });
  const { server, port } = result;
  // Everything from here on is done as the served account, in its own state directory.
  if (logFile !== undefined) out = log = openLog(logFile);
  partials.start();
  const where = formatAddress(address, port);
  write(`listening on ${where}, serving ${server.rootPath}, host key ${server.fingerprint}`);
  if (account !== undefined)
    write(`serving as ${account.name} (uid ${account.uid}), state in ${paths.stateDir}`);
  else if (isRoot()) {
    write('serving as root without --user: only root on this host (local token) can log in; no SSH keys');
  }
  if (args.encryption === false)
    write('--no-encryption: plaintext clients accepted (they still authenticate)');
  if (rateLimit !== undefined)
    write(
      `--bwlimit: file data capped at ${rateLimit.rateBps} B/s, all sessions and both directions together`,
    );
  if (args.fsync === true) write('--fsync: every push is synced to disk before it reports success');
  // Before the pid file: whoever reads it may signal the daemon at once (logrotate's SIGHUP, fcpd stop).
  handleSignals(server, write, log);
  if (paths.pidFile !== undefined) {
    removePidFileAtExit(paths.pidFile);
    // Written last, once the start-up lines are in the log: it tells `fcpd -d` that the daemon serves.
    await writePidFile(paths.pidFile);
  }
  // Machine-readable readiness line for scripts and tests that start fcpd with --port 0.
  if (log === undefined) process.stdout.write(`fcpd listening on ${where}\n`);
}

function handleSignals(server: FcpServer, write: (line: string) => void, log: LogFile | undefined): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    write(
      `${signal}: no new connections; waiting up to ${SHUTDOWN_GRACE_MS / 1000} s for ${server.sessionCount} sessions`,
    );
    server
      .close(SHUTDOWN_GRACE_MS)
      .then(() => {
        // The pid file goes with the process (removePidFileAtExit).
        write('stopped');
        process.exit(EXIT.OK);
      })
      .catch(fail);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => write(reopenLog(log)));
}

/**
 * What fcpd serves (spec/SECURITY.md §11): `--root DIR` confines every path to DIR; without it, what the
 * account may open, relative paths starting at `home`, the served account's home.
 */
function servedTree(root: string | undefined, home: string): { root: string } | { home: string } {
  return root === undefined ? { home } : { root };
}

interface StopArgs {
  port: number;
  'pid-file': string | undefined;
  user: string | undefined;
}

async function stop(args: StopArgs): Promise<void> {
  checkPort(args.port);
  // --user NAME: the daemon started with --user NAME keeps its pid file in NAME's state directory.
  const account = args.user === undefined ? undefined : lookupAccount(args.user);
  const paths = daemonPaths(account, args.port, args['pid-file'], undefined);
  const pidFile = paths.pidFile ?? defaultPidFile(paths.stateDir, args.port);
  const result = await stopDaemon(pidFile, STOP_TIMEOUT_MS, account);
  process.stdout.write(
    result === 'stopped' ? 'fcpd: stopped\n' : `fcpd: not running (no live pid in ${pidFile})\n`,
  );
  process.exit(result === 'stopped' ? EXIT.OK : EXIT.PATH);
}

/**
 * `args` with the config file applied (config-daemon.ts), and where each came from; `fcpd --print-config`
 * prints them and exits. The options come from the same builders yargs parsed with, so a new option is a
 * config key at once.
 */
function configured<T extends object>(args: T, options: (y: Argv) => Argv<unknown>): Effective<T> {
  const config = daemonSettings(
    args,
    optionTable(options(yargs([]))),
    optionTable(serveOptions(yargs([]))),
    hideBin(process.argv),
  );
  // --port has no yargs default because --serve-once's is 0 (and takes no config file): a standing fcpd's
  // is 7523, settled here so --print-config shows it.
  if (options === serveOptions) (config.args as { port?: number }).port ??= DEFAULT_PORT;
  if ((args as { 'print-config'?: unknown })['print-config'] !== true) return config;
  process.stdout.write(formatDaemonConfig(config));
  process.exit(EXIT.OK);
}

async function main(early: EarlyServeOnce | undefined): Promise<void> {
  // Here, not in the launcher: a young generation pinned while the 700 KB of code is read and compiled
  // scavenges all along (~6 ms of CPU more to start, pinned).
  pinYoungGeneration();
  // What fcp runs over ssh, in the forms it sends, skips building the yargs parser (fcpd-quick-args.ts).
  const quick = quickOverSshArgs(hideBin(process.argv));
  const overSsh = quick === undefined ? undefined : commandOverSsh(quick, early);
  if (overSsh !== undefined) process.exit(await overSsh);
  await yargs(hideBin(process.argv))
    .scriptName('fcpd')
    .usage('fcpd [serve] [options]\nfcpd stop [options]\nfcpd status [--json]')
    .command(['$0', 'serve'], 'serve files on TCP port 7523 (foreground unless -d)', serveOptions, (argv) => {
      const given = argv as unknown as ServeArgs;
      // What fcp runs over ssh takes no settings file: a standing daemon's port or bind there must not move
      // a one-session daemon onto them.
      const config =
        given['serve-once'] === true || given.stdio !== undefined
          ? undefined
          : configured(given, serveOptions);
      const args = config?.args ?? given;
      const cause = tlsOnlyCause(args.encryption, config?.sources.get('encryption'));
      const root = args.root === undefined ? undefined : path.resolve(args.root);
      return serveCommand({ ...args, root, tlsOnlyCause: cause });
    })
    .command('stop', 'stop the daemon started with -d (or any fcpd with a pid file)', stopOptions, (argv) =>
      stop(configured(argv as unknown as StopArgs, stopOptions).args),
    )
    .command(daemonStatusCommand)
    .completion('completion', 'print a completion script: bash, or zsh when $SHELL is zsh')
    .strict()
    .epilogue(
      'STATE, the state directory (host key, token, pid file, log, partials): $FCPD_STATE_DIR, else ' +
        '$XDG_STATE_HOME/fcpd, else ~/.local/state/fcpd; with --user NAME, $FCPD_STATE_DIR, else ' +
        `~NAME/.local/state/fcpd.\n\n${exitCodesHelp()}`,
    )
    .help()
    .alias('h', 'help')
    .version(FCP_VERSION)
    .fail((msg, err) => fail(err ?? new FcpError('FCP_ERR_USAGE', msg)))
    .parseAsync();
}

/** Runs fcpd; `early` is the serve-once start the launcher made from these same arguments, if it did. */
export function runFcpd(early: EarlyServeOnce | undefined): Promise<void> {
  return main(early).catch(fail);
}
