/**
 * The options of `fcp push` and `fcp pull` (yargs declarations and their defaults), apart from the command
 * that runs them (fcp.ts); the ssh options are in ssh-options.ts, --json/--dry-run/--limit in run-options.ts.
 */
import type { Argv } from 'yargs';
import { runOptions } from './run-options.js';

/** Tuned while the transfer runs (client/connection-tuner.ts, README "Connections"). */
export const DEFAULT_CONNECTIONS = 'auto';
export const MAX_CONNECTIONS = 64;

/** `--connections` as given (flag or config file): 'auto', or a whole number 1..MAX_CONNECTIONS; else undefined. */
export function parseConnections(value: unknown): number | 'auto' | undefined {
  if (value === 'auto') return 'auto';
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_CONNECTIONS) return undefined;
  return n;
}

/**
 * The options of push and pull, declared once at the top so they work before the command as after it
 * (`fcp -v push ...`). Defaults are written into the descriptions: yargs' "[default: true]" column would
 * describe --encryption, which nobody types, instead of --no-encryption.
 */
export function commonOptions<T>(y: Argv<T>) {
  return (
    runOptions(y)
      // No type: 'auto' or a number, from the command line or the config file alike (parseConnections).
      .option('connections', {
        alias: 'n',
        default: DEFAULT_CONNECTIONS as number | string,
        describe: `TCP connections: N exactly, or auto to grow while it pays (default ${DEFAULT_CONNECTIONS})`,
      })
      .option('retries', {
        type: 'number',
        default: 5,
        describe: 'times to resume after the session is lost (default 5)',
      })
      .option('retry-wait', {
        type: 'number',
        default: 1,
        describe: 'seconds before the first retry, then doubling (default 1)',
      })
      .option('checksum', {
        alias: 'c',
        type: 'boolean',
        default: false,
        describe: 'skip files by content hash, not size and mtime',
      })
      .option('fsync', {
        type: 'boolean',
        default: false,
        describe: 'sync each file and directory to disk before the copy reports success (slower)',
      })
      .option('include', {
        type: 'string',
        // Not `array: true`, which would swallow the operands after it: the option repeats instead.
        coerce: (v: unknown) => [v].flat().map(String),
        describe: 'only send files matching this glob (repeatable)',
      })
      .option('exclude', {
        type: 'string',
        // Not `array: true`, which would swallow the operands after it: the option repeats instead.
        coerce: (v: unknown) => [v].flat().map(String),
        describe: 'skip files and directories matching this glob (repeatable)',
      })
      .option('regex', {
        type: 'string',
        // Not `array: true`, which would swallow the operands after it: the option repeats instead.
        coerce: (v: unknown) => [v].flat().map(String),
        describe: 'only send files whose relative path matches (repeatable)',
      })
      .option('ssh-config', {
        alias: 'F',
        type: 'string',
        describe: 'ssh config file for host aliases, also given to ssh (default ~/.ssh/config)',
      })
      .option('identity', {
        alias: 'i',
        type: 'string',
        describe:
          'SSH private key to log in with, also given to ssh (signed through ssh-agent when it holds it)',
      })
      // yargs turns --no-encryption into encryption=false; the positive form is the default, so help shows
      // only the negative one.
      .option('encryption', { type: 'boolean', default: true, hidden: true })
      .option('no-encryption', {
        type: 'boolean',
        describe:
          'send files in clear, still authenticated (trusted networks only; a standing daemon must allow it; ' +
          'over ssh it does not apply)',
      })
      .option('accept-host-key', {
        type: 'string',
        describe: "accept the daemon's host key only if it has this fingerprint (fcpd --fingerprint)",
      })
      .option('bwlimit', {
        type: 'string',
        describe: 'cap file data at RATE bytes/s, all connections together (10M, 500k, 1.5G, 64Mi)',
      })
      .option('background', {
        type: 'boolean',
        default: false,
        describe: 'run detached: print the transfer id, log to the state directory (fcp status)',
      })
      .option('quiet', {
        alias: 'q',
        type: 'boolean',
        default: false,
        describe: 'no progress and no summary',
      })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'more detail in errors' })
  );
}
