/**
 * Whether an address is this very host: a loopback one or one of this host's own interface addresses. The
 * daemon asks it of a client (only such a client can read the same-host token, spec/SECURITY.md §5.4, so only
 * it is told where the token is: the path names the served account's state directory, which §5.3 keeps from
 * everyone else); the client asks it of a daemon (one on this host may be any local account's, so it is not
 * trusted on first use blindly, §4.2).
 */
import { networkInterfaces } from 'node:os';

/** `::ffff:10.0.0.5` is the IPv4 client 10.0.0.5 on a dual-stack socket. */
const V4_MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

export function isSameHostAddress(address: string): boolean {
  const plain = V4_MAPPED.exec(address)?.[1] ?? address.toLowerCase();
  if (plain === '::1' || plain.startsWith('127.')) return true;
  // Read per login, not cached: interfaces come and go on a long-running daemon, and this is microseconds.
  for (const list of Object.values(networkInterfaces())) {
    for (const iface of list ?? []) if (iface.address.toLowerCase() === plain) return true;
  }
  return false;
}
