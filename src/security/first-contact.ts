/**
 * First contact with a daemon on this very host (spec/SECURITY.md §4.2): trust on first use assumes the
 * network was honest that once, but on this host the "network" is every local account, any of which may
 * listen on a loopback port our own daemon used to hold. So, unless our own token vouched for the key or a pin
 * exists (the caller checks both), the key is pinned only when the listening socket belongs to us or root.
 */
import { errorArea, FcpError } from '../protocol/index.js';
import { authError } from './auth-errors.js';
import { checkHostKey, knownHostName } from './known-hosts.js';
import { listenerOwners } from './listener-owner.js';
import { isSameHostAddress } from './same-host.js';

export interface FirstContact {
  /** Host and port as connected to (the known_hosts name). */
  readonly host: string;
  readonly port: number;
  /** The address the connection reached (the socket's remote address); '' when not a TCP connection. */
  readonly peerAddress: string;
  readonly fingerprint: string;
}

/** True when the connection reached this host, where first use needs the checks of vetSameHostFirstContact. */
export function isSameHostDaemon(c: FirstContact): boolean {
  return c.peerAddress !== '' && isSameHostAddress(c.peerAddress);
}

/**
 * The client's rule for a daemon its own token did not vouch for: one on this host that `knownHostsFile` has
 * no pin for, and whose key `acceptHostKey` does not name, must pass vetSameHostFirstContact.
 */
export async function vetFirstContact(
  c: FirstContact,
  acceptHostKey: string | undefined,
  knownHostsFile: string,
): Promise<void> {
  if (acceptHostKey === c.fingerprint || !isSameHostDaemon(c)) return;
  // A changed pin throws here as the pin check does; a known_hosts we cannot read pins nothing: no pin.
  const pinned = await checkHostKey(knownHostsFile, knownHostName(c.host, c.port), c.fingerprint).catch(
    (err: unknown) => {
      if (err instanceof FcpError && errorArea(err.code) === 'AUTH') throw err;
      return 'unknown' as const;
    },
  );
  if (pinned === 'unknown') await vetSameHostFirstContact(c);
}

/**
 * Throws FCP_ERR_AUTH_HOST_KEY_UNVERIFIED unless every socket listening where the connection went belongs
 * to our euid or to root (root can be anyone anyway: its system daemon is trusted as before).
 */
export async function vetSameHostFirstContact(c: FirstContact, procNetDir?: string): Promise<void> {
  const owners = await listenerOwners(c.peerAddress, c.port, procNetDir);
  const euid = process.geteuid?.();
  if (owners === undefined || euid === undefined)
    throw unverified(c, 'cannot tell which account listens there (no /proc/net/tcp)');
  if (owners.length === 0) throw unverified(c, 'no listening socket for it is found in /proc/net/tcp');
  const other = owners.find((uid) => uid !== euid && uid !== 0);
  if (other !== undefined) throw unverified(c, `it listens as uid ${other}, not as you (${euid}) or root`);
}

function unverified(c: FirstContact, why: string): Error {
  const name = knownHostName(c.host, c.port);
  return authError(
    'FCP_ERR_AUTH_HOST_KEY_UNVERIFIED',
    `not trusting the daemon at ${name} (host key ${c.fingerprint}) on first contact: ${why}; ` +
      `if its account's \`fcpd --fingerprint\` prints ${c.fingerprint}, run again with ` +
      `--accept-host-key ${c.fingerprint}, or run your own fcpd`,
  );
}
