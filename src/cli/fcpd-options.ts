/**
 * The options of `fcpd` (serve) and `fcpd stop`, apart from the commands that run them (fcpd.ts): also the
 * keys its config file may set (config-daemon.ts reads them from these builders).
 */
import type { Argv } from 'yargs';
import { DEFAULT_PORT, FcpError } from '../protocol/index.js';

/** A port fcpd may listen on: 0 (the system picks) to 65535. */
export function isListenPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 65535;
}

/** A count of sessions or connections: a whole number, 1 or more. */
export function isCount(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1;
}

/** --port as given (flag, config file already checked at its line, or --serve-once's own parse). */
export function checkPort(port: number): void {
  if (!isListenPort(port)) {
    throw new FcpError('FCP_ERR_USAGE', `--port must be an integer from 0 to 65535, not ${port}`);
  }
}

/** The options of `fcpd` (serve); also what its config file may set (config-daemon.ts). */
export function serveOptions<T>(y: Argv<T>) {
  return y
    .option('port', {
      alias: 'p',
      type: 'number',
      defaultDescription: `${DEFAULT_PORT}; 0 with --serve-once`,
      describe: 'TCP port (0 picks a free one)',
    })
    .option('bind', {
      type: 'string',
      defaultDescription: 'every address, IPv6 and IPv4',
      describe: 'address to listen on (every client must authenticate: spec/SECURITY.md)',
    })
    .option('root', {
      type: 'string',
      describe:
        'confine every remote path to this directory (default: serve what the account may open; ' +
        'relative paths start at its home)',
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
      describe: 'run in the background (log in --log-file)',
    })
    .option('pid-file', {
      type: 'string',
      defaultDescription: 'STATE/fcpd-PORT.pid',
      describe: 'pid file, written once fcpd serves and removed when it exits',
    })
    .option('log-file', {
      type: 'string',
      defaultDescription: 'STATE/fcpd.log',
      describe: 'log file when detached',
    })
    .option('partial-max-age', {
      type: 'number',
      default: 24,
      describe: 'hours an interrupted upload is kept for resume before it is removed',
    })
    .option('verbose', {
      alias: 'v',
      type: 'boolean',
      describe: 'log every per-file problem',
    })
    .option('user', {
      type: 'string',
      describe:
        'started as root: become this account right after binding (its rights, paths relative to its home), keep all state in its STATE',
    })
    .option('authorized-keys', {
      type: 'string',
      defaultDescription: '~/.ssh/authorized_keys of the account',
      describe: 'SSH keys allowed to log in',
    })
    .option('bwlimit', {
      type: 'string',
      describe:
        "cap the daemon's file data at RATE bytes/s, all sessions and both directions together (10M, 500k, 64Mi)",
    })
    .option('fsync', {
      type: 'boolean',
      describe: 'sync every received file and directory to disk before a push reports success (slower)',
    })
    .option('encryption', {
      type: 'boolean',
      describe: 'TLS only, the default; --no-encryption also accepts plaintext clients (still authenticated)',
    })
    .option('local-token', {
      type: 'boolean',
      describe: 'a same-host login token in STATE, the default; --no-local-token: SSH keys only',
    })
    .option('fingerprint', {
      type: 'boolean',
      describe: 'print the host key fingerprint (creating the key if needed) and exit',
    })
    .option('serve-once', {
      type: 'boolean',
      describe:
        'what fcp runs over ssh: print one bootstrap line, serve one session with an ephemeral key ' +
        'and a one-time secret, then exit',
    })
    .option('stdio', {
      type: 'string',
      requiresArg: true,
      describe: 'what fcp runs over ssh to carry a connection: relay stdin/stdout to this socket',
    })
    .option('config', {
      type: 'string',
      defaultDescription: '/etc/fcpd.conf (root), ~/.config/fcp/fcpd.conf',
      describe: 'settings file (TOML, one key per long option); flags win over it',
    })
    .option('print-config', {
      type: 'boolean',
      describe: 'print the settings fcpd would use and where each comes from, and exit',
    });
}

/** The options of `fcpd stop`; the config file gives it the port, pid file and user fcpd serves with. */
export function stopOptions<T>(y: Argv<T>) {
  return y
    .option('port', {
      alias: 'p',
      type: 'number',
      default: DEFAULT_PORT,
      describe: 'port of the daemon to stop',
    })
    .option('pid-file', {
      type: 'string',
      defaultDescription: 'STATE/fcpd-PORT.pid',
      describe: 'pid file',
    })
    .option('user', {
      type: 'string',
      describe: 'stop the daemon started with --user NAME (its STATE)',
    })
    .option('config', {
      type: 'string',
      defaultDescription: 'as for fcpd',
      describe: 'settings file of the daemon to stop',
    });
}
