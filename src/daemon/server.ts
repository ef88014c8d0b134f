/**
 * fcpd, wired together: the TCP listener (listener.ts) admits connections and makes channels of them
 * (transport/tcp-tls-accept.ts), the handshake (handshake.ts) authenticates each and hands it to its session
 * (sessions.ts, session-attach.ts), whose push or pull handler builds the engine. This file loads what they
 * share once the port is bound: the host key, the served tree, the authentication config, the local token.
 */
import { mkdir } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { AuthorizedKeysFile } from '../security/authorized-keys-file.js';
import { type DaemonAuthConfig, ONE_TIME_ONLY, type OneTimeLogin } from '../security/daemon-auth.js';
import { type HostKey, loadOrCreateHostKey } from '../security/host-key.js';
import type { Account } from '../security/privileges.js';
import { createServerContext } from '../security/tls-channel.js';
import { createLocalToken, type LocalToken, removeLocalToken } from '../security/token.js';
import { type Hasher, loadHasher } from '../transfer/checksum.js';
import { openServedTree, type ServedTree } from '../transfer/store/served-tree.js';
import { Admission, ThrottleReport } from './admission.js';
import type { FcpError } from '../protocol/index.js';
import type { RateLimit } from '../transport/rate-limit.js';
import { type AcceptedChannel, TLS_ONLY } from '../transport/tcp-tls-accept.js';
import { ControlSocket, controlSocketPath } from './control-socket.js';
import { type Arrival, handshake, type HandshakeContext } from './handshake.js';
import { defaultStateDir } from './lifecycle.js';
import { Listener, type Serving } from './listener.js';
import type { PartialRegistry } from './partials.js';
import { SessionRegistry } from './session-registry.js';
import { Sessions } from './sessions.js';
import type { WaitingServer } from './waiting-server.js';

export { HANDSHAKE_DEADLINE_MS } from './listener.js';

export interface ServerOptions {
  port: number;
  bind: string;
  /**
   * Confine every path to this directory (`fcpd --root`). Without it the daemon serves what its account may
   * open: absolute paths are absolute, relative ones start at `home` (spec/SECURITY.md §11).
   */
  root?: string;
  /** Where relative paths start when there is no `root`; default $HOME. */
  home?: string;
  maxSessions: number;
  /** Connections one session may hold, the first included. */
  maxConnections: number;
  log: (line: string) => void;
  verbose: boolean;
  /** Where kept partial files are recorded so stale ones can be swept (omit to keep no record). */
  partials?: PartialRegistry;
  /** Drop a connection that hears nothing for this long (tests shorten it). */
  idleTimeoutMs?: number;
  /** Where the host key lives (and the token, unless tokenDir says otherwise); default defaultStateDir(). */
  stateDir?: string;
  /** Directory of the same-host token file; default the state dir. */
  tokenDir?: string;
  /** Write a same-host token (spec/SECURITY.md §5.4); default true. */
  localToken?: boolean;
  /** The account served; default the process's own user. */
  account?: Account;
  /** authorized_keys to check SSH keys against; default ~/.ssh/authorized_keys of the account. */
  authorizedKeysFile?: string;
  /** Serve `fcpd status` on a unix socket in the state directory (control-socket.ts); default true. */
  controlSocket?: boolean;
  /** Accept --no-encryption clients as well as TLS ones (authentication stays mandatory). */
  allowPlaintext?: boolean;
  /** fcpd --bwlimit: one limiter for every session's file data, both directions (none: no cap). */
  rateLimit?: RateLimit;
  /** fcpd --fsync: every push is synced, whatever its client asked (PROTOCOL.md §6.3). */
  fsync?: boolean;
  /**
   * Otherwise, why plaintext is refused, as a plaintext client is told (fcpd: where its encryption setting
   * came from); default TLS_ONLY's, for a one-session fcpd or by default.
   */
  tlsOnlyCause?: string;
  /**
   * Runs once the port is bound, before the host key is loaded, the root opened and anything served: fcpd
   * drops root privileges here (spec/SECURITY.md §8).
   */
  afterBind?: () => void | Promise<void>;
  /** Use this host key instead of the state directory's (fcpd --serve-once: an ephemeral one in memory). */
  hostKey?: HostKey;
  /** fcpd --serve-once: the one-time secret is the only credential (spec/SECURITY.md §14). */
  oneTime?: OneTimeLogin;
  /** See SessionOptions.onSessionEnd. */
  onSessionEnd?: (err: FcpError | undefined) => void;
}

/** Why SSH-key logins are refused by a daemon that serves as root (spec/SECURITY.md §8). */
export const ROOT_PUBLICKEY_REFUSAL =
  'this fcpd runs as root without --user: it accepts no SSH-key logins, only root on the same host (local ' +
  'token); its administrator must start it with --user NAME';

export class FcpServer {
  readonly #opts: ServerOptions;
  readonly #registry: SessionRegistry;
  readonly #admission = new Admission();
  readonly #listener: Listener;
  #served: ServedTree | undefined;
  #sessions: Sessions | undefined;
  #token: LocalToken | undefined;
  #hostKey: HostKey | undefined;
  #control: ControlSocket | undefined;
  #serving: Serving | undefined;
  #port: number | undefined;
  /** Resolves once serve() is done: relayed channels that came earlier wait for it. */
  readonly #ready: Promise<Serving>;
  #startServing: (serving: Serving) => void = () => {};

  constructor(opts: ServerOptions) {
    this.#opts = opts;
    this.#registry = new SessionRegistry(opts.maxSessions);
    this.#listener = new Listener({ ...opts, admission: this.#admission, throttle: new ThrottleReport() });
    this.#ready = new Promise((resolve) => {
      this.#startServing = resolve;
    });
  }

  /**
   * Binds, runs afterBind (the privilege drop), opens the root, loads the host key, writes the local token,
   * then serves. Resolves with the bound port (useful with port 0). Connections that arrive before the end
   * of this wait for it.
   */
  async listen(): Promise<number> {
    const port = await this.bind();
    await this.serve();
    return port;
  }

  /**
   * Binds, runs afterBind and opens the root; resolves with the bound port. Connections are accepted and
   * wait until serve() is done, so a caller can announce the port first (fcpd --serve-once's bootstrap
   * line) and load the rest after.
   */
  async bind(): Promise<number> {
    return this.#opened(await this.#listener.bind());
  }

  /** bind() for a listener already bound (fcpd --serve-once's, bound before this code was loaded). */
  async adopt(waiting: WaitingServer): Promise<number> {
    return this.#opened(this.#listener.adopt(waiting));
  }

  /** bind()'s steps after the listener is bound. */
  async #opened(port: number): Promise<number> {
    try {
      // After the drop, as the account served; before any announcement, so a bad --root is said first.
      await this.#opts.afterBind?.();
      const { root, home } = this.#opts;
      this.#served = await openServedTree(root === undefined ? { home: home ?? homedir() } : { root });
    } catch (err) {
      await this.#listener.stop();
      throw err;
    }
    this.#port = port;
    return port;
  }

  /** After bind(): loads what serving needs (listen()'s steps), then serves the connections that wait. */
  async serve(): Promise<void> {
    const port = this.#port;
    const served = this.#served;
    if (port === undefined || served === undefined) throw new Error('serve() before bind()');
    let serving: Serving;
    try {
      serving = await this.#prepare(port, served, await loadHasher());
    } catch (err) {
      await this.#listener.stop();
      throw err;
    }
    this.#serving = serving;
    this.#listener.serve(serving);
    this.#startServing(serving);
  }

  /**
   * Runs the handshake on a channel that came another way than the TCP listener (the serve-once relay
   * socket), once serve() is done; never rejects.
   */
  async serveChannel(channel: AcceptedChannel, arrival: Arrival): Promise<void> {
    const serving = this.#serving ?? (await this.#ready);
    return serving.handshake(channel, arrival);
  }

  /** The daemon's host key fingerprint (after listen()). */
  get fingerprint(): string {
    return this.#hostKey?.fingerprint ?? '';
  }

  /** The control socket `fcpd status` asks, when there is one. */
  get controlPath(): string | undefined {
    return this.#control?.path;
  }

  /** The local token file, when one was written. */
  get tokenPath(): string | undefined {
    return this.#token?.path;
  }

  /** The same-host token; a directory we cannot write only costs same-host logins, so it is not fatal. */
  async #writeToken(port: number, hostKey: HostKey, stateDir: string): Promise<LocalToken | undefined> {
    const dir = this.#opts.tokenDir ?? stateDir;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      return await createLocalToken(dir, port, hostKey.fingerprint);
    } catch (err) {
      this.#opts.log(`no local token (same-host logins need an SSH key): ${(err as Error).message}`);
      return undefined;
    }
  }

  /**
   * After the drop, as the token: the socket is the served account's, in its state directory. Without it
   * only `fcpd status` is lost, so a failure is said and serving goes on.
   */
  async #listenControl(
    stateDir: string,
    port: number,
    sessions: Sessions,
  ): Promise<ControlSocket | undefined> {
    const socketPath = controlSocketPath(stateDir, port);
    try {
      return await ControlSocket.listen(socketPath, () => sessions.status());
    } catch (err) {
      this.#opts.log(
        `no control socket (fcpd status will not answer): ${socketPath}: ${(err as Error).message}`,
      );
      return undefined;
    }
  }

  async #prepare(port: number, served: ServedTree, hasher: Hasher): Promise<Serving> {
    const stateDir = this.#opts.stateDir ?? defaultStateDir();
    // After the drop (bind()): the key lives in the served account's state directory, created and read as it.
    const hostKey = this.#opts.hostKey ?? (await loadOrCreateHostKey(stateDir));
    this.#hostKey = hostKey;
    const tls = createServerContext(hostKey);
    const account = this.#opts.account ?? currentAccount();
    if (this.#opts.localToken !== false) this.#token = await this.#writeToken(port, hostKey, stateDir);
    const sessions = new Sessions(this.#opts, this.#registry, this.#admission, { hasher, served });
    this.#sessions = sessions;
    if (this.#opts.controlSocket !== false)
      this.#control = await this.#listenControl(stateDir, port, sessions);
    const ctx: HandshakeContext = {
      hasher,
      auth: this.#authConfig(hostKey, account),
      sessions,
      registry: this.#registry,
      log: this.#opts.log,
      verbose: this.#opts.verbose,
    };
    return {
      tls,
      plaintextRefused: this.#opts.allowPlaintext === true ? undefined : this.#tlsOnlyCause(),
      handshake: (channel, arrival) => handshake(channel, arrival, ctx),
    };
  }

  #tlsOnlyCause(): string {
    const own = this.#opts.oneTime === undefined ? TLS_ONLY.byDefault : TLS_ONLY.oneSession;
    return this.#opts.tlsOnlyCause ?? own;
  }

  /** Who may log in: the local token, and SSH keys unless the daemon serves as root (spec/SECURITY.md §8). */
  #authConfig(hostKey: HostKey, account: Account): DaemonAuthConfig {
    const oneTime = this.#opts.oneTime;
    if (oneTime !== undefined) {
      const none = { token: undefined, authorizedKeys: undefined, publicKeyRefusal: ONE_TIME_ONLY };
      return { hostKey, account: account.name, ...none, oneTime, log: this.#opts.log };
    }
    const servingAsRoot = process.geteuid?.() === 0;
    const log = this.#opts.log;
    return {
      hostKey,
      account: account.name,
      token: this.#token,
      authorizedKeys: servingAsRoot
        ? undefined
        : new AuthorizedKeysFile(
            this.#opts.authorizedKeysFile ?? join(account.home, '.ssh', 'authorized_keys'),
            account.uid,
            log,
          ),
      publicKeyRefusal: servingAsRoot ? ROOT_PUBLICKEY_REFUSAL : undefined,
      log,
    };
  }

  /** Connections in their handshake, outside any session's allowance (what admission.ts counts). */
  get handshakesPending(): number {
    return this.#admission.pending;
  }

  get sessionCount(): number {
    return this.#registry.size;
  }

  /** What is served, for the start-up line: the --root directory, or "/ (relative paths from HOME)". */
  get rootPath(): string {
    return this.#served?.description ?? this.#opts.root ?? '/';
  }

  /**
   * Stops accepting; running sessions get `graceMs` to finish, then every socket is closed.
   * Resolves once the listener and all connections are gone.
   */
  async close(graceMs = 0): Promise<void> {
    const closed = this.#listener.stop();
    this.#control?.close();
    await this.#sessions?.shutdown(graceMs);
    this.#listener.destroyAll();
    await closed;
    // Best effort: the token is only good against this daemon, which is gone; a file left behind proves
    // nothing, and the next fcpd on this port replaces it. Stopping must not fail over it.
    if (this.#token !== undefined) await removeLocalToken(this.#token.path).catch(() => {});
  }
}

/** The account this process runs as (fcpd without --user). */
function currentAccount(): Account {
  const uid = process.geteuid?.() ?? 0;
  try {
    const info = userInfo();
    return { name: info.username, uid, gid: info.gid, home: info.homedir, shell: info.shell ?? '' };
  } catch {
    // userInfo() throws when the uid has no passwd entry (some containers).
    const name = process.env['USER'] ?? process.env['LOGNAME'] ?? String(uid);
    return { name, uid, gid: process.getegid?.() ?? 0, home: homedir(), shell: '' };
  }
}
