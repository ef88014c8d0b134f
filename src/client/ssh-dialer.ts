/**
 * The Dialer of a session with a remote fcpd that ssh started (ssh-bootstrap.ts): direct TLS connections
 * to its ephemeral port when they get through, else each connection carried by its own
 * `ssh HOST fcpd --stdio SOCKET` (--ssh-transport=auto, the default; direct and carried force one).
 * Either way the handshake pins the host key fingerprint and logs in with the one-time secret that came
 * through ssh (SecurityOptions.oneTime).
 */
import { execFile } from 'node:child_process';
import { toFcpError } from '../protocol/index.js';
import { hostPort } from '../transport/channel.js';
import { commandDialer } from '../transport/command-dial.js';
import type { DialedChannel, Dialer } from '../transport/dialer.js';
import {
  configQueryArgv,
  dataArgv,
  hostnameFromConfig,
  remoteCommandFor,
  type SshCommand,
} from '../transport/ssh-command.js';
import { tcpTlsDialer } from '../transport/tcp-tls-dial.js';
import type { RemoteFcpd } from './ssh-bootstrap.js';

export type SshTransport = 'auto' | 'direct' | 'carried';
export const SSH_TRANSPORTS: readonly SshTransport[] = ['auto', 'direct', 'carried'];

/**
 * How long the first direct connection may take to connect in auto mode before the data goes through ssh
 * instead: a firewall that drops packets answers with nothing, and the user waits this long once.
 */
export const DIRECT_PROBE_MS = 3_000;
/** `ssh -G` only reads config files; a stuck one must not hold the transfer up. */
const CONFIG_QUERY_TIMEOUT_MS = 10_000;

export interface SshDialerOptions {
  readonly ssh: SshCommand;
  readonly dest: string;
  readonly remoteFcpd: string | undefined;
  readonly transport: SshTransport;
  /** Where direct connections go: ssh's HostName for the destination (sshHostname). */
  readonly directHost: string;
  /** Each stderr line of the carrying ssh children. */
  readonly onStderr: (line: string) => void;
  /** The one line auto mode says when it falls back to carrying (not with -q). */
  readonly onInfo?: (text: string) => void;
}

/** A Dialer that also ends the ssh children it started. */
export interface SshDialer extends Dialer {
  close(): void;
  /** The way the connections went, once the first one opened; undefined before. */
  chosen(): 'direct' | 'carried' | undefined;
}

/** The dialer of the session `remote` serves. */
export function sshDialer(opts: SshDialerOptions, remote: RemoteFcpd): SshDialer {
  const { info } = remote;
  const endpoint = { host: opts.directHost, port: info.port };
  const carried = commandDialer({
    peerName: `the fcpd started through ssh on ${opts.dest}`,
    argv: () =>
      dataArgv(opts.ssh, opts.dest, remoteCommandFor(opts.remoteFcpd, remote.cachedName), info.relay),
    onStderr: opts.onStderr,
  });
  const direct = tcpTlsDialer(endpoint, true);
  let chosen: Dialer | undefined =
    opts.transport === 'direct' ? direct : opts.transport === 'carried' ? carried : undefined;
  const probe = async (resume: Buffer | undefined, signal?: AbortSignal): Promise<DialedChannel> => {
    try {
      const ch = await tcpTlsDialer(endpoint, true, DIRECT_PROBE_MS).open(resume, signal);
      chosen = direct;
      return ch;
    } catch (err) {
      if (toFcpError(err).code !== 'FCP_ERR_NET_CONNECT') throw err;
      chosen = carried;
      opts.onInfo?.(
        `${hostPort(endpoint.host, endpoint.port)} not reachable directly; carrying the data through ssh`,
      );
      return carried.open(resume, signal);
    }
  };
  return {
    get peerName() {
      return (chosen ?? direct).peerName;
    },
    open: (resume, signal) => (chosen === undefined ? probe(resume, signal) : chosen.open(resume, signal)),
    unanswered: (err) => (chosen ?? direct).unanswered(err),
    close: () => carried.close(),
    chosen: () => (chosen === undefined ? undefined : chosen === direct ? 'direct' : 'carried'),
  };
}

/**
 * Where ssh itself would connect for `dest` (`ssh -G`'s hostname, after aliases, HostName and Match
 * blocks), so direct connections reach the same machine; `fallback` when ssh cannot say.
 */
export function sshHostname(ssh: SshCommand, dest: string, fallback: string): Promise<string> {
  const [file, ...args] = configQueryArgv(ssh, dest);
  return new Promise((resolve) => {
    execFile(file!, args, { timeout: CONFIG_QUERY_TIMEOUT_MS }, (err, stdout) => {
      resolve(err === null ? (hostnameFromConfig(stdout) ?? fallback) : fallback);
    });
  });
}
