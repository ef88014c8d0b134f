/**
 * Parses the `[user@]host[:port]:path` operands of fcp, the way scp tells remote operands from local ones.
 */

import { FcpError } from '../protocol/errors.js';

/** A remote operand. `path` is '' for the daemon's default root ("host:"). */
export interface RemoteSpec {
  user?: string;
  host: string;
  port?: number;
  path: string;
}

const DIGITS = /^[0-9]+$/;
const MAX_PORT = 65535;

/**
 * Parses one command-line operand; `undefined` means a local path.
 *
 * Syntax: `[user@]host[:port]:path`, where host may be `[v6addr]`. As in scp, an operand without a ':' or whose
 * first ':' comes after a '/' is local (`./a:b`, `/x:y`). A run of digits between the first and second ':' is a
 * port (`host:7523:dir`); to name a remote path that starts with digits and a ':', write `host:./12:notes`.
 */
export function parseRemoteSpec(arg: string): RemoteSpec | undefined {
  const colon = findHostColon(arg);
  if (colon === undefined) return undefined;

  const authority = arg.slice(0, colon);
  const at = authority.lastIndexOf('@');
  // lastIndexOf like ssh: a user name may itself contain '@' (user@corp@host), a host never does.
  const user = at === -1 ? undefined : authority.slice(0, at);
  const host = parseHost(at === -1 ? authority : authority.slice(at + 1), arg);
  if (user === '') throw usage(`empty user name in "${arg}"`);

  const { port, path } = splitPort(arg.slice(colon + 1), arg);
  const spec: RemoteSpec = { host, path };
  if (user !== undefined) spec.user = user;
  if (port !== undefined) spec.port = port;
  return spec;
}

/**
 * Index of the ':' that ends the host part, or undefined for a local operand. Mirrors scp's `colon()`: a '['
 * at the start or right after '@' opens an IPv6 literal whose ':'s do not count until "]:".
 */
function findHostColon(arg: string): number | undefined {
  let inBrackets = arg.startsWith('[');
  for (let i = 0; i < arg.length; i++) {
    const ch = arg[i];
    if (ch === '/') return undefined;
    if (ch === '@' && arg[i + 1] === '[') inBrackets = true;
    if (ch === ']' && arg[i + 1] === ':' && inBrackets) return i + 1;
    if (ch === ':' && !inBrackets) return i;
  }
  return undefined;
}

function parseHost(raw: string, arg: string): string {
  let host = raw;
  if (raw.startsWith('[') && raw.endsWith(']')) host = raw.slice(1, -1);
  else if (raw.includes('[') || raw.includes(']')) throw usage(`invalid host in "${arg}"`);
  if (host === '') throw usage(`empty host name in "${arg}"`);
  if (/\s/.test(host)) throw usage(`invalid host in "${arg}"`);
  return host;
}

function splitPort(rest: string, arg: string): { port: number | undefined; path: string } {
  const colon = rest.indexOf(':');
  if (colon === -1) return { port: undefined, path: rest };
  const candidate = rest.slice(0, colon);
  if (!DIGITS.test(candidate)) return { port: undefined, path: rest };
  const port = Number(candidate);
  if (port < 1 || port > MAX_PORT) throw usage(`invalid port in "${arg}"`);
  return { port, path: rest.slice(colon + 1) };
}

function usage(message: string): FcpError {
  return new FcpError('FCP_ERR_USAGE', message);
}
