#!/usr/bin/env node
/**
 * fcpd: the daemon's command line. `fcpd` serves in the foreground (logs on stderr), `fcpd -d` detaches
 * (logs to the state directory's fcpd.log), `fcpd stop` stops the daemon named by the pid file,
 * `fcpd --fingerprint` prints the host key fingerprint. Started as root, `--user NAME` drops to that account
 * right after binding (spec/SECURITY.md §8).
 */
// More threadpool workers than the default 4 keep small-file I/O (open/write/close/rename) overlapping.
process.env['UV_THREADPOOL_SIZE'] ??= '16';

import { homedir } from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DEFAULT_PORT, FcpError, toFcpError } from '../protocol/index.js';
import { loadOrCreateHostKey } from '../security/host-key.js';
import { type Account, dropPrivileges, isRoot, lookupAccount } from '../security/privileges.js';
import { EXIT, exitCodeFor, exitCodesHelp } from '../transfer/exit-codes.js';
import { printable } from '../transfer/printable.js';
import { pinYoungGeneration } from '../transfer/young-generation.js';
import {
  ChildStartupError,
  defaultLogFile,
  defaultPidFile,
  defaultStateDir,
  detach,
  isAlive,
  type LogFile,
  openLog,
  readPidFile,
  removePidFile,
  stopDaemon,
  writePidFile,
} from './lifecycle.js';
import { PartialRegistry } from './partials.js';
import { FcpServer } from './server.js';

/** Set in the environment of the child that `fcpd -d` starts. */
const DETACHED_ENV = 'FCPD_DETACHED';
const STOP_TIMEOUT_MS = 15_000;
/** On SIGTERM, running sessions get this long to finish before their sockets are closed. */
const SHUTDOWN_GRACE_MS = 10_000;

interface ServeArgs {
  port: number;
  bind: string;
  root: string;
  'max-sessions': number;
  'max-connections': number;
  detach: boolean;
  'pid-file': string | undefined;
  'log-file': string | undefined;
  'partial-max-age': number;
  verbose: boolean;
  user: string | undefined;
  'authorized-keys': string | undefined;
  encryption: boolean;
  'local-token': boolean;
  fingerprint: boolean;
}

function fail(err: unknown): never {
  if (err instanceof ChildStartupError) {
    // The detached child already said why in its log; repeat its one line, with its own exit code.
    process.stderr.write(`fcpd: ${printable(err.reason)}\n`);
    process.exit(err.exitCode);
  }
  const e = toFcpError(err);
  const where = e.path !== undefined && !e.message.includes(e.path) ? `${e.path}: ` : '';
  process.stderr.write(`fcpd: ${printable(`${where}${e.message}`)}\n`);
  process.exit(exitCodeFor(e));
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new FcpError('FCP_ERR_USAGE', `--port must be an integer from 0 to 65535, not ${port}`);
  }
}

async function serve(args: ServeArgs): Promise<void> {
  checkPort(args.port);
  for (const key of ['max-sessions', 'max-connections'] as const) {
    if (!Number.isInteger(args[key]) || args[key] < 1)
      throw new FcpError('FCP_ERR_USAGE', `--${key} must be a positive integer`);
  }
  const stateDir = defaultStateDir();
  if (args.fingerprint) {
    const hostKey = await loadOrCreateHostKey(stateDir);
    process.stdout.write(`${hostKey.fingerprint}\n`);
    process.exit(EXIT.OK);
  }
  const account = servedAccount(args.user);
  // After the drop the account keeps its own state (token, partials): root's state dir is not its to write.
  const runDir = account === undefined ? stateDir : defaultStateDir({}, account.home);
  const pidFile = args['pid-file'] ?? (args.port === 0 ? undefined : defaultPidFile(stateDir, args.port));
  const logFile = args['log-file'] ?? defaultLogFile(stateDir);
  if (args.detach) {
    if (pidFile === undefined) {
      throw new FcpError('FCP_ERR_USAGE', 'fcpd -d needs a fixed --port or a --pid-file');
    }
    const running = await readPidFile(pidFile);
    if (running !== undefined && isAlive(running)) {
      throw new FcpError('FCP_ERR_USAGE', `fcpd is already running on port ${args.port} (pid ${running})`);
    }
    const argv = process.argv.slice(1).filter((a) => a !== '-d' && a !== '--detach');
    const pid = await detach({
      argv: [...argv, '--log-file', logFile, '--pid-file', pidFile],
      logFile,
      pidFile,
      env: { ...process.env, [DETACHED_ENV]: '1' },
    });
    process.stdout.write(`fcpd: started in the background (pid ${pid}); log ${logFile}\n`);
    process.exit(EXIT.OK);
  }

  let log: LogFile | undefined;
  if (process.env[DETACHED_ENV] === '1') log = openLog(logFile);
  const out: NodeJS.WritableStream = log ?? process.stderr;
  // Lines carry names from the wire: escape control characters so a peer cannot forge log lines.
  const write = (line: string) =>
    out.write(`${new Date().toISOString()} fcpd[${process.pid}] ${printable(line)}\n`);

  const partials = new PartialRegistry(runDir, args['partial-max-age'] * 3600_000, write);
  const server = new FcpServer({
    partials,
    port: args.port,
    bind: args.bind,
    root: args.root,
    maxSessions: args['max-sessions'],
    maxConnections: args['max-connections'],
    log: write,
    verbose: args.verbose,
    stateDir,
    tokenDir: runDir,
    localToken: args['local-token'],
    allowPlaintext: !args.encryption,
    ...(account === undefined ? {} : { account }),
    ...(args['authorized-keys'] === undefined
      ? {}
      : { authorizedKeysFile: path.resolve(args['authorized-keys']) }),
    afterBind: async () => {
      // The pid file goes into root's state dir, so it is written before the drop (spec/SECURITY.md §8).
      if (pidFile !== undefined) await writePidFile(pidFile);
      if (account !== undefined && isRoot()) dropPrivileges(account);
    },
  });
  const port = await server.listen();
  partials.start();
  write(`listening on ${args.bind}:${port}, serving ${server.rootPath}, host key ${server.fingerprint}`);
  if (account !== undefined) write(`serving as ${account.name} (uid ${account.uid})`);
  else if (isRoot()) {
    write('serving as root without --user: only root on this host (local token) can log in; no SSH keys');
  }
  if (!args.encryption) write('--no-encryption: plaintext clients accepted (they still authenticate)');
  // Machine-readable readiness line for scripts and tests that start fcpd with --port 0.
  if (log === undefined) process.stdout.write(`fcpd listening on ${args.bind}:${port}\n`);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    write(
      `${signal}: no new connections; waiting up to ${SHUTDOWN_GRACE_MS / 1000} s for ${server.sessionCount} sessions`,
    );
    server
      .close(SHUTDOWN_GRACE_MS)
      .then(async () => {
        // After a privilege drop the pid file in root's state dir may not be ours to remove any more.
        if (pidFile !== undefined) await removePidFile(pidFile).catch(() => {});
        write('stopped');
        process.exit(EXIT.OK);
      })
      .catch(fail);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    log?.reopen();
    write('SIGHUP: log reopened');
  });
}

/**
 * The account named by --user, when it means a privilege drop; undefined to serve as this process's user.
 * Without root, --user may only name ourselves (nothing to drop).
 */
function servedAccount(user: string | undefined): Account | undefined {
  if (user === undefined) return undefined;
  const account = lookupAccount(user);
  if (account.uid === 0) {
    throw new FcpError('FCP_ERR_AUTH_PRIVILEGES', `--user ${user} is root: nothing would be dropped`);
  }
  if (!isRoot()) {
    if (account.uid === process.geteuid?.()) return undefined;
    throw new FcpError('FCP_ERR_USAGE', `--user ${user} needs fcpd to be started as root`);
  }
  return account;
}

async function stop(args: { port: number; 'pid-file': string | undefined }): Promise<void> {
  checkPort(args.port);
  const pidFile = args['pid-file'] ?? defaultPidFile(defaultStateDir(), args.port);
  const result = await stopDaemon(pidFile, STOP_TIMEOUT_MS);
  process.stdout.write(
    result === 'stopped' ? 'fcpd: stopped\n' : `fcpd: not running (no live pid in ${pidFile})\n`,
  );
  process.exit(result === 'stopped' ? EXIT.OK : EXIT.PATH);
}

async function main(): Promise<void> {
  pinYoungGeneration();
  await yargs(hideBin(process.argv))
    .scriptName('fcpd')
    .command(
      ['$0', 'serve'],
      'serve files on TCP port 7523 (foreground unless -d)',
      (y) =>
        y
          .option('port', {
            alias: 'p',
            type: 'number',
            default: DEFAULT_PORT,
            describe: 'TCP port (0 picks a free one)',
          })
          .option('bind', {
            type: 'string',
            default: '0.0.0.0',
            describe: 'address to listen on (every client must authenticate: spec/SECURITY.md)',
          })
          .option('root', {
            type: 'string',
            default: homedir(),
            describe: 'directory tree served; relative remote paths resolve under it',
          })
          .option('max-sessions', { type: 'number', default: 16, describe: 'sessions served at once' })
          .option('max-connections', {
            type: 'number',
            default: 64,
            describe: 'connections one session may open',
          })
          .option('detach', {
            alias: 'd',
            type: 'boolean',
            default: false,
            describe: 'run in the background',
          })
          .option('pid-file', { type: 'string', describe: 'pid file (default: state dir/fcpd-PORT.pid)' })
          .option('log-file', {
            type: 'string',
            describe: 'log file when detached (default: state dir/fcpd.log)',
          })
          .option('partial-max-age', {
            type: 'number',
            default: 24,
            describe: 'hours an interrupted upload is kept for resume before it is removed',
          })
          .option('verbose', {
            alias: 'v',
            type: 'boolean',
            default: false,
            describe: 'log every per-file problem',
          })
          .option('user', {
            type: 'string',
            describe: 'started as root: become this account right after binding, and serve it',
          })
          .option('authorized-keys', {
            type: 'string',
            describe: 'SSH keys allowed to log in (default ~/.ssh/authorized_keys of the served account)',
          })
          .option('encryption', {
            type: 'boolean',
            default: true,
            describe: 'require TLS; --no-encryption also accepts plaintext clients (still authenticated)',
          })
          .option('local-token', {
            type: 'boolean',
            default: true,
            describe: 'write a same-host login token to the state dir (--no-local-token: SSH keys only)',
          })
          .option('fingerprint', {
            type: 'boolean',
            default: false,
            describe: 'print the host key fingerprint (creating the key if needed) and exit',
          }),
      (argv) => serve({ ...(argv as unknown as ServeArgs), root: path.resolve(String(argv.root)) }),
    )
    .command(
      'stop',
      'stop the daemon started with -d (or any fcpd with a pid file)',
      (y) =>
        y
          .option('port', {
            alias: 'p',
            type: 'number',
            default: DEFAULT_PORT,
            describe: 'port of the daemon to stop',
          })
          .option('pid-file', { type: 'string', describe: 'pid file (default: state dir/fcpd-PORT.pid)' }),
      (argv) => stop(argv as unknown as { port: number; 'pid-file': string | undefined }),
    )
    .strict()
    .epilogue(
      `State directory: $FCPD_STATE_DIR, else $XDG_STATE_HOME/fcpd, else ~/.local/state/fcpd.\n\n${exitCodesHelp()}`,
    )
    .help()
    .alias('h', 'help')
    .version('0.1.0')
    .fail((msg, err) => fail(err ?? new FcpError('FCP_ERR_USAGE', msg)))
    .parseAsync();
}

main().catch(fail);
