/**
 * Resolves a remote operand's host through the user's ssh config, so `fcp data bigbox:` reaches the same machine
 * as `ssh bigbox`. Only HostName, User and IdentityFile are used; everything else in the file belongs to ssh.
 */

import { readFileSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import SSHConfig from 'ssh-config';
import { FcpError } from '../protocol/errors.js';
import type { RemoteSpec } from './remote-spec.js';

/** Where and as whom to connect, after ssh-config aliases are applied. */
export interface ResolvedHost {
  /** Host name or address to connect to (ssh's HostName, else the operand's host). */
  host: string;
  /** Remote user: the operand's, else ssh's User, else undefined (the daemon decides). */
  user: string | undefined;
  /** fcp's port: the operand's, else the default. ssh's Port is for ssh and never used. */
  port: number;
  /** IdentityFile entries in config order (`none` dropped), with ~ and %-tokens expanded. */
  identityFiles: string[];
  /** The host exactly as the user wrote it, which ssh-config matched against. */
  alias: string;
}

export interface ResolveOptions {
  /** `-F FILE`: read this file instead of ~/.ssh/config; unlike the default, it must exist. */
  configFile?: string;
  defaultPort: number;
  /** Home directory for ~/.ssh/config, ~ and %d (tests); defaults to os.homedir(). */
  homeDir?: string;
}

/** Applies the ssh config (HostName, User, IdentityFile) to a parsed remote operand. */
export function resolveHost(spec: RemoteSpec, opts: ResolveOptions): ResolvedHost {
  const home = opts.homeDir ?? homedir();
  const config = loadConfig(opts.configFile, home);
  const computed = config.compute(
    spec.user === undefined ? { Host: spec.host } : { Host: spec.host, User: spec.user },
    // matchExec: never run shell commands from a config file just to copy files; `Match exec` blocks
    // are treated as not matching. ignoreCase: directive names are case-insensitive in OpenSSH.
    { ignoreCase: true, matchExec: false },
  );

  const local = localTokens(home);
  const configHost = firstString(computed['hostname']);
  const host =
    configHost === undefined || configHost === ''
      ? spec.host
      : expandTokens(configHost, { ...local, h: spec.host }, ['%', 'h']);
  const user = spec.user ?? firstString(computed['user']);
  const tokens = { ...local, h: host, n: spec.host, r: user ?? local.u };
  const identityFiles = allStrings(computed['identityfile'])
    .filter((file) => file.toLowerCase() !== 'none')
    .map((file) => expandTilde(expandTokens(file, tokens), home));

  return { host, user, port: spec.port ?? opts.defaultPort, identityFiles, alias: spec.host };
}

function loadConfig(configFile: string | undefined, home: string): SSHConfig {
  const file = configFile ?? join(home, '.ssh', 'config');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    // A user without ~/.ssh/config is the common case; a file named with -F must exist, as with ssh.
    if (configFile === undefined && isMissing(err)) return new SSHConfig();
    throw cannotRead(file, err);
  }
  try {
    return SSHConfig.parse(text);
  } catch (err) {
    throw cannotRead(file, err);
  }
}

function cannotRead(file: string, err: unknown): FcpError {
  const reason = err instanceof Error ? err.message : String(err);
  return new FcpError('FCP_ERR_USAGE', `cannot read ssh config ${file}: ${reason}`, {
    path: file,
    cause: err,
  });
}

function isMissing(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

type Tokens = Readonly<Record<string, string>>;

/** The %-tokens that describe this machine (ssh_config(5) TOKENS). */
function localTokens(home: string): { d: string; u: string; l: string; L: string; i: string } {
  const name = localUserName();
  const full = hostname();
  const uid = typeof process.getuid === 'function' ? String(process.getuid()) : '';
  return { d: home, u: name, l: full, L: full.split('.')[0] ?? full, i: uid };
}

function localUserName(): string {
  try {
    return userInfo().username;
  } catch {
    // userInfo() throws when the uid has no passwd entry (some containers).
    return process.env['USER'] ?? process.env['LOGNAME'] ?? '';
  }
}

/**
 * Expands ssh's %-tokens. `allowed` limits which ones a directive accepts (HostName takes only %h and %%);
 * unknown or disallowed tokens are left as written, as ssh cannot know them either (%p, %C, ...).
 */
export function expandTokens(text: string, tokens: Tokens, allowed?: readonly string[]): string {
  return text.replace(/%(.)/g, (whole, key: string) => {
    if (allowed !== undefined && !allowed.includes(key)) return whole;
    if (key === '%') return '%';
    return tokens[key] ?? whole;
  });
}

/** Expands a leading `~` or `~/`; `~otheruser/` is left alone (no portable getpwnam in Node). */
export function expandTilde(file: string, home: string): string {
  if (file === '~') return home;
  if (file.startsWith('~/')) return join(home, file.slice(2));
  return file;
}

function firstString(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function allStrings(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
