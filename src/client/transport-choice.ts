/**
 * Which way a transfer reaches the remote (README "Works wherever ssh works"): `--daemon`, the standing
 * fcpd on its port; `--ssh`, a one-session fcpd that ssh starts; neither, the standing fcpd if one listens
 * and else ssh, said once on stderr. A daemon that answers, even to refuse us, is never passed over for
 * ssh: only nothing listening (refused, unreachable, unknown host, no answer in DAEMON_PROBE_MS) is.
 */
import { FcpError, toFcpError } from '../protocol/index.js';
import { hostPort } from '../transport/channel.js';
import type { DialedChannel, Dialer } from '../transport/dialer.js';
import type { ForwardDialer } from '../transport/socket-forward-dial.js';
import type { SshCommand } from '../transport/ssh-command.js';
import { tcpTlsDialer } from '../transport/tcp-tls-dial.js';
import {
  type CommonOptions,
  dialerFor,
  type Endpoint,
  type SecurityOptions,
  securityDefaults,
} from './options.js';
import { dropEarlyBootstrap } from './early-bootstrap.js';
import { type RemoteFcpd, startRemoteFcpd } from './ssh-bootstrap.js';
import { carriedPrelogins } from './ssh-prelogin.js';
import {
  CARRIED_AUTO_START,
  type SshConfig,
  sshConfigFor,
  type SshDialer,
  sshDialer,
  type SshTransport,
} from './ssh-dialer.js';
import type { TransferRoute } from './transfer-route.js';

/** How long the first connection to a standing daemon may take before auto mode goes through ssh. */
export const DAEMON_PROBE_MS = 3_000;

export type TransportMode = 'auto' | 'daemon' | 'ssh';

export interface TransportChoice {
  readonly mode: TransportMode;
  readonly ssh: SshCommand;
  /** ssh's destination: `[user@]host` exactly as typed, so ssh applies its own config to the alias. */
  readonly dest: string;
  readonly sshTransport: SshTransport;
  /** --remote-fcpd CMD. */
  readonly remoteFcpd: string | undefined;
  /** false for --no-remote-install. */
  readonly remoteInstall: boolean;
  /** Each line ssh, or the remote fcpd through it, writes on stderr. */
  readonly onStderr: (line: string) => void;
}

/** Thrown for `--ssh` with `HOST:PORT:PATH`: the port names a standing fcpd, not ssh's. */
export function portWithSsh(): FcpError {
  return new FcpError(
    'FCP_ERR_USAGE',
    "a port in HOST:PORT:PATH names a standing fcpd; with --ssh give ssh's port in the ssh command or config",
  );
}

/**
 * Runs each attempt of a transfer (withRetries calls `run` once per attempt) the way the choice asks.
 * Auto mode decides on its first attempt and keeps to it; every attempt over ssh starts its own remote
 * fcpd and ends it (and every ssh) when the attempt ends.
 */
export class TransportChooser {
  readonly #choice: TransportChoice;
  #via: TransportMode;
  /** --ssh-transport; auto becomes what the first attempt found, so a retry does not probe again. */
  #sshTransport: SshTransport;
  readonly #open = new Set<() => void>();
  #route: TransferRoute | undefined;
  /** The --no-encryption line over ssh is said once per run, not once per attempt. */
  #toldPlaintext = false;

  constructor(choice: TransportChoice) {
    // A bootstrap the launcher started on a guess is of no use to a run that will not go through ssh.
    if (choice.mode !== 'ssh') dropEarlyBootstrap();
    this.#choice = choice;
    this.#via = choice.mode;
    this.#sshTransport = choice.sshTransport;
  }

  async run(common: CommonOptions, transfer: (opts: CommonOptions) => Promise<void>): Promise<void> {
    if (this.#via === 'auto' && (await this.#tryDaemon(common, transfer))) return;
    if (this.#via === 'daemon') return transfer(this.#routed(common, () => daemonRoute(common)));
    await this.#viaSsh(common, transfer);
  }

  /** How the latest granted session was reached; undefined before the first one (fcp status). */
  route(): TransferRoute | undefined {
    return this.#route;
  }

  /**
   * --no-encryption (or encryption = false) over ssh: the fcpd ssh started accepts TLS only, and carried
   * connections ride inside ssh whatever fcp does, so the data stays encrypted; said, never silently
   * ignored (README "Works wherever ssh works").
   */
  #tellPlaintextKept(common: CommonOptions): void {
    if (common.security?.encryption !== false || this.#toldPlaintext) return;
    this.#toldPlaintext = true;
    common.onInfo?.(
      '--no-encryption does not apply over ssh: direct connections keep TLS to the fcpd ssh started, ' +
        "carried ones ride inside ssh's encryption",
    );
  }

  /** `common` whose onSession first records the route, which is known once a session is granted. */
  #routed(common: CommonOptions, route: () => TransferRoute): CommonOptions {
    return {
      ...common,
      onSession: (session) => {
        this.#route = route();
        common.onSession?.(session, this.#route);
      },
    };
  }

  /** Ends every ssh of the running attempt at once (SIGINT): each remote fcpd sees its stdin end. */
  close(): void {
    for (const close of this.#open) close();
  }

  /** true when the standing daemon served the attempt; false when nothing listens there (go through ssh). */
  async #tryDaemon(
    common: CommonOptions,
    transfer: (opts: CommonOptions) => Promise<void>,
  ): Promise<boolean> {
    const probe = probingDialer(common.endpoint, securityDefaults(common.security));
    try {
      await transfer({ ...this.#routed(common, () => daemonRoute(common)), dialer: probe });
      this.#via = 'daemon';
      return true;
    } catch (err) {
      if (!probe.nothingListens()) {
        this.#via = 'daemon';
        throw err;
      }
      this.#via = 'ssh';
      common.onInfo?.(
        `no fcpd listening on ${hostPort(common.endpoint.host, common.endpoint.port)}; going through ssh`,
      );
      return false;
    }
  }

  async #viaSsh(common: CommonOptions, transfer: (opts: CommonOptions) => Promise<void>): Promise<void> {
    const c = this.#choice;
    this.#tellPlaintextKept(common);
    const extraConnections = common.connections === 'auto' ? CARRIED_AUTO_START - 1 : common.connections - 1;
    const configured = sshConfigFor(c.ssh, c.dest, common.endpoint.host);
    const known: { relay?: string } = {};
    const prelogins = this.#preloginsFor(c, configured, () => known.relay, 1 + extraConnections);
    let remote: RemoteFcpd;
    let config: SshConfig;
    try {
      [remote, config] = await Promise.all([
        startRemoteFcpd({ ...c, onNotice: common.onNotice }),
        configured,
      ]);
    } catch (err) {
      (await prelogins)?.close();
      throw err;
    }
    known.relay = remote.info.relay;
    common.onNotice?.(
      `fcpd ${remote.info.version} started on ${c.dest} through ssh (port ${remote.info.port})`,
    );
    const dialer = sshDialer(
      {
        ...c,
        transport: this.#sshTransport,
        config,
        extraConnections,
        onInfo: common.onInfo,
        onNotice: common.onNotice,
        prelogins: await prelogins,
      },
      remote,
    );
    const end = () => {
      dialer.close();
      remote.abort();
    };
    this.#open.add(end);
    try {
      // The first connection, made before the session is granted, has settled direct or carried.
      const route = () => sshRoute(dialer.chosen(), remote.info.port);
      await transfer({ ...this.#routed(common, route), dialer, security: oneTimeSecurity(common, remote) });
    } catch (err) {
      // A failed attempt makes sure the remote fcpd is gone before the next one (or the exit) goes on.
      this.#endAttempt(dialer, end);
      await remote.close();
      throw err;
    }
    this.#endAttempt(dialer, end);
    remote.release();
  }

  /**
   * With --ssh-transport=carried the data connections' logins start now, beside the bootstrap's
   * (ssh-prelogin.ts), unless the user's config forwards ports of its own (the relayed way then).
   */
  #preloginsFor(
    c: TransportChoice,
    configured: Promise<SshConfig>,
    relay: () => string | undefined,
    count: number,
  ): Promise<ForwardDialer | undefined> {
    if (this.#sshTransport !== 'carried') return Promise.resolve(undefined);
    return configured.then((config) =>
      config.forwardings
        ? undefined
        : carriedPrelogins({ ssh: c.ssh, dest: c.dest, config, relay, onStderr: c.onStderr }, count),
    );
  }

  #endAttempt(dialer: SshDialer, end: () => void): void {
    this.#sshTransport = dialer.chosen() ?? this.#sshTransport;
    this.#open.delete(end);
    dialer.close();
  }
}

function daemonRoute(common: CommonOptions): TransferRoute {
  return { transport: 'daemon', port: common.endpoint.port };
}

function sshRoute(chosen: 'direct' | 'carried' | undefined, port: number): TransferRoute {
  return { transport: chosen === 'carried' ? 'ssh-carried' : 'ssh-direct', port };
}

/**
 * The remote fcpd's own key and secret, from the bootstrap line: the handshake pins that fingerprint (no
 * known_hosts) and offers only the secret. The login is ssh's: the daemon runs as that user, so none is
 * asked for.
 */
function oneTimeSecurity(common: CommonOptions, remote: RemoteFcpd): CommonOptions['security'] {
  const oneTime = { hostFingerprint: remote.info.hostKey, secret: remote.info.secret };
  return { ...common.security, user: '', oneTime };
}

/** The standing daemon's dialer, whose first connect is short and remembers whether nothing listened. */
function probingDialer(
  endpoint: Endpoint,
  security: SecurityOptions,
): Dialer & { nothingListens(): boolean } {
  const standing = dialerFor(endpoint, security);
  let opened = false;
  let nothing = false;
  const first = async (resume: Buffer | undefined, signal?: AbortSignal): Promise<DialedChannel> => {
    opened = true;
    try {
      return await tcpTlsDialer(endpoint, security.encryption, DAEMON_PROBE_MS).open(resume, signal);
    } catch (err) {
      nothing = toFcpError(err).code === 'FCP_ERR_NET_CONNECT';
      throw err;
    }
  };
  return {
    peerName: standing.peerName,
    open: (resume, signal) => (opened ? standing.open(resume, signal) : first(resume, signal)),
    unanswered: (err) => standing.unanswered(err),
    nothingListens: () => nothing,
  };
}
