/**
 * The Dialer of a session with a remote fcpd that ssh started (ssh-bootstrap.ts): direct TLS connections
 * to its ephemeral port when they get through, else each connection carried by its own
 * `ssh HOST fcpd --stdio SOCKET` (--ssh-transport=auto, the default; direct and carried force one).
 * Either way the handshake pins the host key fingerprint and logs in with the one-time secret that came
 * through ssh (SecurityOptions.oneTime).
 */
import { toFcpError } from '../protocol/index.js';
import { hostPort } from '../transport/channel.js';
import { type CommandDialer, commandDialer } from '../transport/command-dial.js';
import type { DialedChannel, Dialer, NeededSoFar } from '../transport/dialer.js';
import { firstAnswerDialer } from '../transport/first-answer-dial.js';
import { type ForwardDialer, socketForwardDialer } from '../transport/socket-forward-dial.js';
import {
  carriedSshEnv,
  configQueryArgv,
  dataArgv,
  forwardablePath,
  forwardArgv,
  forwardingsConfigured,
  hostnameFromConfig,
  type SshCommand,
} from '../transport/ssh-command.js';
import { remoteCommandFor } from '../transport/remote-script.js';
import { tcpTlsDialer } from '../transport/tcp-tls-dial.js';
import type { RemoteFcpd } from './ssh-bootstrap.js';
import { carriedCiphers, sshQuery, withCiphers } from './ssh-ciphers.js';

export type SshTransport = 'auto' | 'direct' | 'carried';
export const SSH_TRANSPORTS: readonly SshTransport[] = ['auto', 'direct', 'carried'];

/**
 * How long the first direct connection may take to connect in auto mode before the data goes through ssh
 * instead: a firewall that drops packets answers with nothing, and the user waits this long once.
 */
export const DIRECT_PROBE_MS = 3_000;
/**
 * The carried connections `--connections auto` opens where the data is in big files (carriedAutoCount),
 * and the most it opens. Each carries one ssh channel window (2 MiB: ~50 MB/s at 40 ms), so 8 hold 16 MiB in flight, more
 * than a 2 Gbit path at 40 ms needs (10 MB); every window beyond that only queues in the receiving ssh,
 * whose buffers grow by copy (OpenSSH's recallocarray) and, under glibc's defaults, by mmap and page
 * zeroing: the receiving sshd of a 512 MiB push through the emulator (pinned, -n N) took 0.82 CPU s at 2
 * connections, 1.15 at 4, 1.74 at 8 and 4.05 at 16, on the server's one core that fcpd shares. And the
 * tuner, which sees neither that CPU nor the client's ssh processes, read 8 -> 16 as a gain when it
 * measured 8 while their logins and windows still ramped (+41 % to +240 % in -v runs). 1 GiB, auto,
 * interleaved, 3 runs: the client's ssh processes 2.23-2.75 -> 1.92-1.96 CPU s on a push and 4.40-4.72
 * -> 2.07-2.41 on a pull (with CARRIED_SSH_TUNABLES). A path with a longer round trip can need more
 * connections: `-n 16` (README "Over ssh").
 */
export const CARRIED_AUTO_MAX = 8;
/**
 * The connections carried `--connections auto` opens where the files are small (CARRIED_SMALL_FILE_BYTES),
 * their logins started with the first's: it stays there. Such a copy is bound by the work per file on both
 * ends, not by the windows (four hold 8 MiB in flight: ~200 MB/s at 40 ms, where 20,000 files of 1-16 KiB
 * through the emulator moved at 40-110 MB/s), and each connection more is an ssh login on both cores: ~77
 * ms of the client's CPU with OpenSSH 9's default key exchange (sntrup761x25519), more on the server.
 */
export const CARRIED_AUTO_START = 4;
/**
 * Data asked for per file, on average when the extra connections are first opened, below which carried auto
 * stays at CARRIED_AUTO_START: a file under one piece (1 MiB) travels whole on one connection, and the
 * session's first ~1 MiB of data tells a tree of small files from a big file.
 */
export const CARRIED_SMALL_FILE_BYTES = 1024 * 1024;

/**
 * Carried auto's count, fixed (the tuner only measures it): CARRIED_AUTO_MAX when the data asked for so
 * far is in files of a piece or more, else CARRIED_AUTO_START. The tuner is not let loose on carried
 * connections: it sees neither the ssh processes' CPU nor the server's, and each step is a round of logins
 * mid-transfer (CARRIED_AUTO_MAX). Two could not tell it anything about a WAN but that a step to 8 pays:
 * 1 GiB pushed through the emulator (RTT 40 ms) with -v spent ~1 s measuring 2 connections at 90 MB/s and
 * 1.2-1.3 s more with them alone while the six new logins ran.
 */
export function carriedAutoCount(needed: NeededSoFar): number {
  const small = needed.files > 0 && needed.bytes / needed.files < CARRIED_SMALL_FILE_BYTES;
  return small ? CARRIED_AUTO_START : CARRIED_AUTO_MAX;
}

export interface SshDialerOptions {
  readonly ssh: SshCommand;
  readonly dest: string;
  readonly remoteFcpd: string | undefined;
  readonly transport: SshTransport;
  /** The connections a session opens after its first (with auto, CARRIED_AUTO_START - 1): their logins start early. */
  readonly extraConnections: number;
  /** What `ssh -G` said of the destination (sshConfigFor). */
  readonly config: SshConfig;
  /** Each stderr line of the carrying ssh children. */
  readonly onStderr: (line: string) => void;
  /** The one line auto mode says when it falls back to carrying (not with -q). */
  readonly onInfo?: (text: string) => void;
  /** What -v shows: which way carried connections went. */
  readonly onNotice?: (text: string) => void;
  /**
   * Carried connections already logging in (ssh-prelogin.ts; --ssh-transport=carried), the forwarded way's
   * first ones: they stand for the spares of extraConnections. Ended with the dialer, used or not.
   */
  readonly prelogins?: ForwardDialer;
}

/** A Dialer that also ends the ssh children it started. */
export interface SshDialer extends Dialer {
  close(): void;
  /** The way the connections went, once the first one opened; undefined before. */
  chosen(): 'direct' | 'carried' | undefined;
}

/** What fcp needs of `ssh -G DEST`. */
export interface SshConfig {
  /** Where direct connections go: ssh's HostName for the destination. */
  readonly host: string;
  /**
   * The user's config sets up forwardings (or clears them all): carried connections then run the relay,
   * as a forwarding of ours would bring theirs along.
   */
  readonly forwardings: boolean;
  /** The `-c` list of the carried connections' ssh, AES-GCM first (ssh-ciphers.ts); undefined: ssh's own. */
  readonly ciphers: string | undefined;
}

/** The dialer of the session `remote` serves. */
export function sshDialer(opts: SshDialerOptions, remote: RemoteFcpd): SshDialer {
  const { info } = remote;
  const endpoint = { host: opts.config.host, port: info.port };
  const carried = carriedDialer(opts, remote);
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
    autoLimit: (needed) => (chosen === carried ? carriedAutoCount(needed) : undefined),
    autoStart: (needed) => (chosen === carried ? carriedAutoCount(needed) : undefined),
  };
}

/**
 * Carried connections: each an `ssh -N -L` forwarding of its own to the relay socket, which sshd connects
 * itself (no process on the remote per connection: spec/PROTOCOL.md §8.3); where the server refuses that
 * (AllowStreamLocalForwarding, DisableForwarding, a `restrict` key), or the user's config has forwardings
 * of its own, each an `ssh HOST fcpd --stdio SOCKET` relay. The first connection finds out for the session.
 */
function carriedDialer(opts: SshDialerOptions, remote: RemoteFcpd): CommandDialer {
  const peerName = `the fcpd started through ssh on ${opts.dest}`;
  const env = carriedSshEnv(process.env);
  const ssh = withCiphers(opts.ssh, opts.config.ciphers);
  const relayed = commandDialer({
    peerName,
    argv: () =>
      dataArgv(ssh, opts.dest, remoteCommandFor(opts.remoteFcpd, remote.cachedName), remote.info.relay),
    env,
    onStderr: opts.onStderr,
  });
  if (opts.config.forwardings || !forwardablePath(remote.info.relay)) {
    opts.prelogins?.close();
    return relayed;
  }
  const forwarded =
    opts.prelogins ??
    socketForwardDialer({
      peerName,
      argv: (local) => forwardArgv(ssh, opts.dest, local, remote.info.relay),
      env,
      onStderr: opts.onStderr,
    });
  const either = firstAnswerDialer(forwarded, relayed, (way) => {
    if (way !== 'fallback') return;
    // Spares started for the forwarded way are of no use now.
    forwarded.close();
    opts.onNotice?.(
      `ssh on ${opts.dest} does not forward to the relay socket; relaying through fcpd --stdio`,
    );
  });
  return withSpareLogins(either, forwarded, opts.prelogins === undefined ? opts.extraConnections : 0);
}

/**
 * `dialer`, whose first open() also starts the logins of the `extra` connections the session will open
 * next (the other `-n N - 1`, or the rest of carried auto's start), so they log in while the first one does instead of after
 * its session began: each carried connection is an ssh login, several round trips, where a direct one is
 * a TLS handshake. A spare that ends up unused is ended with the dialer.
 */
function withSpareLogins(dialer: CommandDialer, forwarded: ForwardDialer, extra: number): CommandDialer {
  let first = true;
  return {
    ...dialer,
    open: (resume, signal) => {
      if (first && extra > 0) {
        const channel = dialer.open(resume, signal);
        forwarded.prestart(extra);
        first = false;
        return channel;
      }
      first = false;
      return dialer.open(resume, signal);
    },
  };
}

/**
 * Where ssh itself would connect for `dest` (`ssh -G`'s hostname, after aliases, HostName and Match
 * blocks), so direct connections reach the same machine, whether it has forwardings of the user's, and
 * the carried connections' cipher order; `fallback` and none when ssh cannot say. Run once per session,
 * beside the bootstrap.
 */
export async function sshConfigFor(ssh: SshCommand, dest: string, fallback: string): Promise<SshConfig> {
  const output = sshQuery(configQueryArgv(ssh, dest));
  const ciphers = await carriedCiphers(ssh, dest, output);
  const stdout = await output;
  if (stdout === undefined) return { host: fallback, forwardings: false, ciphers };
  return {
    host: hostnameFromConfig(stdout) ?? fallback,
    forwardings: forwardingsConfigured(stdout),
    ciphers,
  };
}
