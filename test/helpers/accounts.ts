// Real unprivileged accounts for tests that need a second user (we run as root): looked up with getent,
// created with a home when missing, and kept (removing one raced with another test file using it).
import { chownSync, mkdirSync } from 'node:fs';
import { execFileSync } from './sync.js';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function lookup(name: string): Account | undefined {
  try {
    const f = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim().split(':');
    return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '' };
  } catch {
    return undefined;
  }
}

/** The account `name` with a home it owns, created if missing (root only). */
export function accountWithHome(name: string): Account {
  if (lookup(name) === undefined) {
    try {
      execFileSync('useradd', ['-m', '-s', '/usr/sbin/nologin', name], { stdio: 'pipe' });
    } catch (err) {
      // Another test file may have created it a moment ago; only a lookup that still fails is an error.
      if (lookup(name) === undefined) throw err;
    }
  }
  const account = lookup(name);
  if (account === undefined) throw new Error(`cannot create user ${name}`);
  mkdirSync(account.home, { recursive: true, mode: 0o755 });
  chownSync(account.home, account.uid, account.gid);
  return account;
}
