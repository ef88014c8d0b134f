/**
 * Dropping root (spec/SECURITY.md §8): fcpd started as root binds its port, then becomes the `--user` account
 * for good (supplementary groups, gid, uid, in that order) before it touches any file of its state or accepts
 * a connection. withAccountIds borrows the account's ids for a moment, for the one file root must open on its
 * behalf (the log `fcpd -d` hands its child).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { authError } from './auth-errors.js';

export interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly shell: string;
}

const USER_NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/;

/** True when this process runs as root and must drop privileges before serving. */
export function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

/** Parses one passwd(5) line, `name:x:uid:gid:gecos:home:shell`. */
export function parsePasswdLine(line: string): Account | undefined {
  const f = line.replace(/\n$/, '').split(':');
  if (f.length !== 7) return undefined;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) return undefined;
  return { name: f[0]!, uid, gid, home: f[5]!, shell: f[6]! };
}

/**
 * Looks an account up through NSS (`getent passwd NAME`, so LDAP and sssd accounts work), falling back to
 * /etc/passwd where getent is missing. Throws FCP_ERR_AUTH_PRIVILEGES for an unknown or invalid name.
 */
export function lookupAccount(name: string): Account {
  if (!USER_NAME_RE.test(name))
    throw authError('FCP_ERR_AUTH_PRIVILEGES', `invalid user name ${JSON.stringify(name)}`);
  let text: string | undefined;
  try {
    text = execFileSync('getent', ['passwd', name], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { status?: number };
    // getent exits 2 for "no such key"; ENOENT means there is no getent here.
    if (e.code !== 'ENOENT')
      throw authError('FCP_ERR_AUTH_PRIVILEGES', `no such user: ${name}`, { cause: err });
    text = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${name}:`));
  }
  const account = text === undefined ? undefined : parsePasswdLine(text.split('\n')[0]!);
  if (account === undefined || account.name !== name)
    throw authError('FCP_ERR_AUTH_PRIVILEGES', `no such user: ${name}`);
  return account;
}

/**
 * Becomes `account` irrevocably: initgroups, setgid, setuid (setuid as root sets the real, effective and saved
 * uid), then checks every id and that setuid(0) now fails. Also points HOME, USER and LOGNAME at the account.
 * Refuses a uid-0 account: that would not drop anything.
 */
export function dropPrivileges(account: Account): void {
  if (account.uid === 0)
    throw authError('FCP_ERR_AUTH_PRIVILEGES', `--user ${account.name} is root: nothing would be dropped`);
  if (!isRoot()) throw authError('FCP_ERR_AUTH_PRIVILEGES', 'dropping privileges needs root');
  try {
    initgroups(account);
    process.setgid!(account.gid);
    process.setuid!(account.uid);
  } catch (err) {
    throw authError('FCP_ERR_AUTH_PRIVILEGES', `cannot become ${account.name}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  checkDropped(account);
  process.env['HOME'] = account.home;
  process.env['USER'] = account.name;
  process.env['LOGNAME'] = account.name;
}

/** initgroups, present on every POSIX node but missing from @types/node's Process. */
function initgroups(account: Account): void {
  (process as NodeJS.Process & { initgroups(user: string, extraGroup: number): void }).initgroups(
    account.name,
    account.gid,
  );
}

/**
 * Runs `fn` with the effective ids and groups of `account`, then takes root's back: the way OpenSSH's
 * temporarily_use_uid() lets root open a file in a user's home without trusting the path. Only the effective
 * ids change (the saved uid stays 0), so this is no privilege drop: it makes the kernel check each path
 * component, symlinks included, as that user would, so a link the user planted cannot lead root anywhere the
 * user could not go. `fn` must be synchronous: nothing else may run while the ids are borrowed.
 */
export function withAccountIds<T>(account: Account, fn: () => T): T {
  if (!isRoot()) throw authError('FCP_ERR_AUTH_PRIVILEGES', 'acting as another account needs root');
  const groups = process.getgroups!();
  const egid = process.getegid!();
  try {
    initgroups(account);
    process.setegid!(account.gid);
    process.seteuid!(account.uid);
  } catch (err) {
    restoreRoot(groups, egid);
    throw authError('FCP_ERR_AUTH_PRIVILEGES', `cannot act as ${account.name}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    return fn();
  } finally {
    restoreRoot(groups, egid);
  }
}

function restoreRoot(groups: number[], egid: number): void {
  process.seteuid!(0);
  process.setegid!(egid);
  process.setgroups!(groups);
}

function checkDropped(account: Account): void {
  const ids = [process.getuid!(), process.geteuid!(), process.getgid!(), process.getegid!()];
  const want = [account.uid, account.uid, account.gid, account.gid];
  if (ids.some((id, i) => id !== want[i])) {
    throw authError('FCP_ERR_AUTH_PRIVILEGES', `privilege drop incomplete: ids are ${ids.join('/')}`);
  }
  if (account.gid !== 0 && process.getgroups!().includes(0)) {
    throw authError('FCP_ERR_AUTH_PRIVILEGES', 'privilege drop incomplete: still in group 0');
  }
  let regained = false;
  try {
    process.setuid!(0);
    regained = true;
  } catch {
    // EPERM: the saved uid is gone too, as it must be.
  }
  if (regained)
    throw authError('FCP_ERR_AUTH_PRIVILEGES', 'privilege drop is reversible: setuid(0) succeeded');
}
