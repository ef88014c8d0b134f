/**
 * The account a daemon serves and where it keeps its state (README "Installing on a server",
 * spec/SECURITY.md §8). With `--user NAME` every file is NAME's, in NAME's state directory, so that NAME's own
 * `fcpd stop` and clients find them and the dropped daemon can still write them.
 */
import path from 'node:path';
import { FcpError } from '../protocol/errors.js';
import { type Account, isRoot, lookupAccount } from '../security/privileges.js';
import { accountStateDir, defaultLogFile, defaultPidFile, defaultStateDir } from './lifecycle.js';

/** Where one daemon keeps its state; with --user, all of it is the served account's (spec/SECURITY.md §8). */
export interface DaemonPaths {
  stateDir: string;
  pidFile: string | undefined;
  logFile: string;
}

/**
 * The account named by --user, when it means a privilege drop; undefined to serve as this process's user.
 * Without root, --user may only name ourselves (nothing to drop).
 */
export function servedAccount(user: string | undefined): Account | undefined {
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

/**
 * The state directory of the daemon serving `account` (this process's own user when undefined), and its pid
 * and log files: the ones given (made absolute), else the defaults in that directory. Port 0 has no default
 * pid file: the port is not known until the daemon listens.
 */
export function daemonPaths(
  account: Account | undefined,
  port: number,
  pidFile: string | undefined,
  logFile: string | undefined,
): DaemonPaths {
  const stateDir = account === undefined ? defaultStateDir() : accountStateDir(account.home);
  return {
    stateDir,
    pidFile: resolveOr(pidFile, port === 0 ? undefined : defaultPidFile(stateDir, port)),
    logFile: resolveOr(logFile, defaultLogFile(stateDir)),
  };
}

function resolveOr<T extends string | undefined>(given: string | undefined, otherwise: T): string | T {
  return given === undefined ? otherwise : path.resolve(given);
}
