/**
 * What a push or pull is asked to do (the options main.ts fills in), the defaults of the security options,
 * and the one place that picks the transport the options ask for.
 */
import { homedir } from 'node:os';
import type { FcpError, SessionMsg } from '../protocol/index.js';
import type { OneTimeCredential } from '../security/client-auth.js';
import { defaultKnownHostsPath } from '../security/known-hosts.js';
import type { Hasher } from '../transfer/checksum.js';
import type { TransferEngine } from '../transfer/engine.js';
import type { TransferListener } from '../transfer/events.js';
import type { SelectOptions } from '../transfer/select.js';
import type { TransferStats } from '../transfer/stats.js';
import type { Dialer } from '../transport/dialer.js';
import type { RateLimit } from '../transport/rate-limit.js';
import { tcpTlsDialer } from '../transport/tcp-tls-dial.js';
import type { TransferRoute } from './transfer-route.js';

export interface Endpoint {
  host: string;
  port: number;
}

/** How to secure and authenticate the connections (spec/SECURITY.md); every field has a default. */
export interface SecurityOptions {
  /** false for --no-encryption (plaintext; authentication and ATTACH proofs stay). Default true. */
  encryption: boolean;
  /** Default defaultKnownHostsPath(). */
  knownHostsFile: string;
  /** --accept-host-key SHA256:...: the one new host key to accept for this daemon. */
  acceptHostKey: string | undefined;
  /** The account asked for ('' = the daemon's own). */
  user: string;
  /** -i FILE. */
  identityFile: string | undefined;
  /** IdentityFile entries of the host's ssh config. */
  configIdentityFiles: readonly string[];
  /** Where ~/.ssh is; default os.homedir(). */
  homeDir: string;
  /** Default $SSH_AUTH_SOCK. */
  agentSocket: string | undefined;
  /**
   * A daemon that fcp started over ssh (`fcpd --serve-once`, spec/SECURITY.md §14): pin its announced
   * fingerprint, leave known_hosts alone, offer only its one-time secret.
   */
  oneTime?: OneTimeCredential;
  /** --dry-run: check the host key pin, never write known_hosts. Default false. */
  knownHostsReadOnly: boolean;
}

export interface CommonOptions {
  endpoint: Endpoint;
  security?: Partial<SecurityOptions>;
  /** --connections: exactly N, or 'auto' (tuned while it runs: client/connection-tuner.ts). */
  connections: number | 'auto';
  checksum: boolean;
  select: SelectOptions;
  hasher: Hasher;
  stats: TransferStats;
  onWarning: (err: FcpError) => void;
  /** --bwlimit: shared by every connection of the session, both directions. */
  rateLimit?: RateLimit;
  /** --dry-run: decide everything as a real run, write nothing on either end (spec/PROTOCOL.md §5.6). */
  dryRun?: boolean;
  /**
   * --fsync: whoever receives (the daemon on push, this process on pull) syncs each file before its rename
   * and each changed directory before the session succeeds (spec/PROTOCOL.md §6.3).
   */
  fsync?: boolean;
  /** --limit N: at most N files get their data sent, the first that need it in walk order. */
  limit?: number | undefined;
  /** More subscribers to the engine's events (transfer/events.ts), beside the problem printer: --json. */
  listeners?: readonly TransferListener[];
  /**
   * Called with the daemon's SESSION once a session is granted (--json's start event), and how it was
   * reached when the caller ran it through a TransportChooser.
   */
  onSession?: (session: SessionMsg, route?: TransferRoute) => void;
  /** Called with the engine once it runs, so the caller can cancel it (SIGINT). */
  onEngine?: (engine: TransferEngine) => void;
  /** Recoverable events worth a line with -v (a connection replaced). */
  onNotice?: (text: string) => void;
  /** What the user should hear of unless -q (a host key pinned in known_hosts). */
  onInfo?: (text: string) => void;
  /** The transport to use instead of the one dialerFor() picks (fcp over ssh: a command dialer). */
  dialer?: Dialer;
}

export interface PushOptions extends CommonOptions {
  sources: readonly string[];
  /** The remote destination path as typed (trailing '/' matters). */
  dest: string;
}

export interface PullOptions extends CommonOptions {
  /** The remote source path or glob as typed. */
  source: string;
  /** The local destination as typed. */
  dest: string;
}

export function securityDefaults(given: Partial<SecurityOptions> | undefined): SecurityOptions {
  return {
    encryption: given?.encryption ?? true,
    knownHostsFile: given?.knownHostsFile ?? defaultKnownHostsPath(),
    acceptHostKey: given?.acceptHostKey,
    user: given?.user ?? '',
    identityFile: given?.identityFile,
    configIdentityFiles: given?.configIdentityFiles ?? [],
    homeDir: given?.homeDir ?? homedir(),
    agentSocket: given?.agentSocket ?? process.env['SSH_AUTH_SOCK'],
    ...(given?.oneTime === undefined ? {} : { oneTime: given.oneTime }),
    knownHostsReadOnly: given?.knownHostsReadOnly ?? false,
  };
}

/** The transport the options ask for: TCP, with TLS unless --no-encryption. */
export function dialerFor(endpoint: Endpoint, security: SecurityOptions): Dialer {
  return tcpTlsDialer(endpoint, security.encryption);
}
