/**
 * Which address fcpd listens on, and what it says when it cannot.
 *
 * Without --bind, fcpd listens on `::`, which on Linux (net.ipv6.bindv6only=0, the default) and most other
 * systems also accepts IPv4 clients as v4-mapped addresses; where the kernel has no IPv6 at all, that bind
 * fails with EAFNOSUPPORT and fcpd falls back to 0.0.0.0. This is what node's own listen(port) does without a
 * host; fcpd spells it out so it can name the address it ended up on.
 */
import { isIPv6 } from 'node:net';
import { errnoOf, FcpError } from '../protocol/errors.js';

/** Every address, IPv6 first: `::` (dual-stack), then 0.0.0.0 where IPv6 is unavailable. */
export const ANY_ADDRESSES: readonly string[] = ['::', '0.0.0.0'];

/** Errors of a bind that say "this address family or address does not exist here", not "try another port". */
const FAMILY_UNAVAILABLE: ReadonlySet<string> = new Set(['EAFNOSUPPORT', 'EADDRNOTAVAIL', 'EPROTONOSUPPORT']);

/** The lowest port an unprivileged process may bind on Linux by default (net.ipv4.ip_unprivileged_port_start). */
const FIRST_UNPRIVILEGED_PORT = 1024;

/** `[::]:7523` or `0.0.0.0:7523`: how an address and port are written so the port stays readable. */
export function formatAddress(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * The host for net.Server.listen: none for `::` on an ephemeral port, which node then binds the same way
 * (`::`, or 0.0.0.0 without IPv6) but without a dns.lookup of the literal, whose isIPv6 check compiles node's
 * large address pattern first: ~5 ms of fcpd --serve-once's start, before its bootstrap line (profiled).
 */
export function listenHost(bind: string, port: number): string | undefined {
  return bind === '::' && port === 0 ? undefined : bind;
}

/**
 * Listens on the first address of `addresses` that exists on this host: `listenOn(address)` is tried for each
 * in turn while the failure says the address family is missing. Any other failure names the address and port
 * (see listenError). Returns what `listenOn` returned and the address used.
 */
export async function listenOnFirst<T>(
  addresses: readonly string[],
  port: number,
  listenOn: (address: string) => Promise<T>,
): Promise<{ result: T; address: string }> {
  for (let i = 0; i < addresses.length; i++) {
    const address = addresses[i]!;
    try {
      return { result: await listenOn(address), address };
    } catch (err) {
      const last = i === addresses.length - 1;
      if (last || !isBindError(err) || !FAMILY_UNAVAILABLE.has(errnoOf(err) ?? '')) {
        throw isBindError(err) ? listenError(err, address, port) : err;
      }
    }
  }
  throw new FcpError('FCP_ERR_USAGE', 'no address to listen on');
}

/** What a failed bind means, in words, for the errno values an operator meets. */
const BIND_REASONS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'address already in use (is another fcpd running on this port?)',
  EADDRNOTAVAIL: 'no such address on this host',
  EACCES: 'permission denied',
};

/**
 * A failed bind as one line that names what failed: `cannot listen on [::]:80: permission denied (ports below
 * 1024 need root; ...)`. Exit code 1: the address or port asked for cannot be used and the operator must
 * choose another, as for a port already in use.
 */
export function listenError(err: unknown, address: string, port: number): FcpError {
  const code = errnoOf(err) ?? '';
  const privileged = code === 'EACCES' && port > 0 && port < FIRST_UNPRIVILEGED_PORT;
  const reason = privileged
    ? `permission denied (ports below ${FIRST_UNPRIVILEGED_PORT} need root; fcpd --user NAME drops root after binding)`
    : (BIND_REASONS[code] ?? (err instanceof Error ? err.message : String(err)));
  return new FcpError('FCP_ERR_USAGE', `cannot listen on ${formatAddress(address, port)}: ${reason}`, {
    cause: err,
  });
}

/** An error from bind()/listen() itself (node sets `syscall`), as opposed to what follows the bind. */
function isBindError(err: unknown): boolean {
  const syscall = (err as { syscall?: unknown } | null)?.syscall;
  return syscall === 'listen' || syscall === 'bind';
}
