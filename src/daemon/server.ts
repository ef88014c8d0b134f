/**
 * fcpd's listener: accepts connections, runs each through the handshake state machine
 *   SNIFF -> TLS (unless plaintext is allowed and chosen) -> AWAIT_HELLO ->
 *     (AUTH_START -> AUTH_CHALLENGE -> PUSH | PULL -> AUTH_PROOF... -> new session)
 *   | (ATTACH -> ATTACH_CHALLENGE -> ATTACH_PROOF -> joins a session)
 * and hands it to the session's transfer engine. Nothing a client asks for is acted on before it has
 * authenticated (spec/SECURITY.md §6). Every failure is confined to its connection or session; the listener
 * keeps serving (spec/PROTOCOL.md §3).
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir } from 'node:fs/promises';
import net from 'node:net';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import type tls from 'node:tls';
import { socketChannel } from '../transport/channel.js';
import { FramedConn } from '../transport/framed-conn.js';
import {
  applyCapabilities,
  HANDSHAKE_TIMEOUT_MS,
  listsBeforeSession,
  negotiateVersion,
  ourHello,
} from '../transport/hello.js';
import { Inbox } from '../transport/inbox.js';
import {
  type AttachMsg,
  AUTH_NONCE_SIZE,
  type AuthStartMsg,
  encodeMessage,
  FcpError,
  FRAME_HEADER_SIZE,
  MAX_LIST_BEFORE_SESSION,
  MAX_LIST_BYTES_BEFORE_SESSION,
  MAX_PAYLOAD_BY_TYPE,
  type Message,
  MsgType,
  PIECE_SIZE,
  type PullMsg,
  type PushMsg,
  TransferFlag,
  toFcpError,
} from '../protocol/index.js';
import { authError } from '../security/auth-errors.js';
import { AuthorizedKeysFile } from '../security/authorized-keys-file.js';
import { type DaemonAuthConfig, DaemonAuthExchange } from '../security/daemon-auth.js';
import { type HostKey, loadOrCreateHostKey } from '../security/host-key.js';
import type { Account } from '../security/privileges.js';
import { verifyAttachProof } from '../security/session-secret.js';
import { acceptTls, channelBinding, createServerContext, sniffTls } from '../security/tls-channel.js';
import { createLocalToken, type LocalToken, removeLocalToken } from '../security/token.js';
import { type Hasher, loadHasher } from '../transfer/checksum.js';
import type { TransferEngine } from '../transfer/engine.js';
import { Receiver } from '../transfer/receiver.js';
import { createSelector } from '../transfer/select.js';
import { Sender } from '../transfer/sender.js';
import { openServedTree, type ServedTree } from '../transfer/served-tree.js';
import { createStats } from '../transfer/stats.js';
import { ROOT_ENTRY } from '../transfer/wire-path.js';
import { Admission, ThrottleReport } from './admission.js';
import { releaseIdleMemory } from './idle-memory.js';
import { defaultStateDir } from './lifecycle.js';
import type { PartialRegistry } from './partials.js';
import { type Session, SessionRegistry } from './session-registry.js';

/** How long a daemon must have had no session before it gives the memory of its transfers back. */
const IDLE_RELEASE_MS = 1000;

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
  /** Accept --no-encryption clients as well as TLS ones (authentication stays mandatory). */
  allowPlaintext?: boolean;
  /**
   * Runs once the port is bound, before the host key is loaded, the root opened and anything served: fcpd
   * drops root privileges here (spec/SECURITY.md §8).
   */
  afterBind?: () => void | Promise<void>;
}

/** From accept to SESSION or ATTACH, sniff and TLS included (spec/SECURITY.md §10). */
export const HANDSHAKE_DEADLINE_MS = 20_000;

/** Why SSH-key logins are refused by a daemon that serves as root (spec/SECURITY.md §8). */
export const ROOT_PUBLICKEY_REFUSAL =
  'this fcpd runs as root without --user: it accepts no SSH-key logins, only root on the same host (local ' +
  'token); its administrator must start it with --user NAME';

/** What the handshake of one connection established, passed on to its session. */
interface Established {
  readonly encrypted: boolean;
  readonly binding: Uint8Array;
  readonly address: string;
  /** The client's HELLO offered ListBeforeSession: a push list may come between its proofs. */
  readonly listBeforeSession: boolean;
  /** Releases the connection's handshake slot and stops its deadline: call once authenticated. */
  readonly authenticated: () => void;
}

export class FcpServer {
  readonly #opts: ServerOptions;
  readonly #sessions: SessionRegistry;
  readonly #sockets = new Set<net.Socket>();
  readonly #admission = new Admission();
  readonly #throttle = new ThrottleReport();
  #server: net.Server | undefined;
  #hasher: Hasher | undefined;
  #served: ServedTree | undefined;
  #tls: tls.SecureContext | undefined;
  #auth: DaemonAuthConfig | undefined;
  #token: LocalToken | undefined;
  #hostKey: HostKey | undefined;
  #serving: Promise<void>;
  #startServing: () => void = () => {};
  #closing = false;
  #idleRelease: NodeJS.Timeout | undefined;

  constructor(opts: ServerOptions) {
    this.#opts = opts;
    this.#sessions = new SessionRegistry(opts.maxSessions);
    this.#serving = new Promise((resolve) => {
      this.#startServing = resolve;
    });
  }

  /**
   * Binds, runs afterBind (the privilege drop), loads the host key, opens the root, writes the local token,
   * then serves. Resolves with the bound port (useful with port 0). Connections that arrive before the end
   * of this wait for it.
   */
  async listen(): Promise<number> {
    this.#hasher = await loadHasher();
    const server = net.createServer({ noDelay: true }, (socket) => {
      this.#serving.then(
        () => this.#serverOnConnection(socket),
        () => socket.destroy(),
      );
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#opts.port, this.#opts.bind, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.#opts.log(`listener error: ${err.message}`));
    const addr = server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : this.#opts.port;
    try {
      await this.#prepare(port);
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw err;
    }
    this.#startServing();
    return port;
  }

  /** The daemon's host key fingerprint (after listen()). */
  get fingerprint(): string {
    return this.#hostKey?.fingerprint ?? '';
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

  async #prepare(port: number): Promise<void> {
    const stateDir = this.#opts.stateDir ?? defaultStateDir();
    // After the drop: the key lives in the served account's state directory, created and read as it.
    await this.#opts.afterBind?.();
    const hostKey = await loadOrCreateHostKey(stateDir);
    this.#hostKey = hostKey;
    const { root, home } = this.#opts;
    this.#served = await openServedTree(root === undefined ? { home: home ?? homedir() } : { root });
    this.#tls = createServerContext(hostKey);
    const account = this.#opts.account ?? currentAccount();
    if (this.#opts.localToken !== false) this.#token = await this.#writeToken(port, hostKey, stateDir);
    const servingAsRoot = process.geteuid?.() === 0;
    const log = this.#opts.log;
    this.#auth = {
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
    return this.#sessions.size;
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
    this.#closing = true;
    if (this.#idleRelease !== undefined) clearTimeout(this.#idleRelease);
    const server = this.#server;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const deadline = Date.now() + graceMs;
    while (this.#sessions.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const session of this.#sessions.all()) {
      session.engine.fail(new FcpError('FCP_ERR_SESSION_SHUTDOWN'));
    }
    for (const socket of this.#sockets) socket.destroy();
    await closed;
    if (this.#token !== undefined) await removeLocalToken(this.#token.path).catch(() => {});
  }

  #serverOnConnection(socket: net.Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const address = socket.remoteAddress ?? '?';
    // sshd's MaxStartups: a flood of connections that never authenticate is thinned at accept (§10).
    const slot = this.#admission.admit(address);
    if (slot === undefined) {
      this.#dropAtAccept(socket, address);
      return;
    }
    this.#logThrottle(this.#throttle.admitted(this.#admission.pending, performance.now()));
    this.#sockets.add(socket);
    // Errors are reported through FramedConn; this keeps an early reset from becoming an uncaught error.
    socket.on('error', () => {});
    let pending = true;
    const deadline = setTimeout(() => socket.destroy(), HANDSHAKE_DEADLINE_MS);
    const authenticated = () => {
      if (!pending) return;
      pending = false;
      clearTimeout(deadline);
      slot.release();
    };
    socket.on('close', () => {
      this.#sockets.delete(socket);
      authenticated();
    });
    void this.#handshake(socket, address, authenticated);
  }

  /** Closed before a byte is read: the client retries it after a moment (spec/SECURITY.md §10). */
  #dropAtAccept(socket: net.Socket, address: string): void {
    socket.destroy();
    this.#logThrottle(this.#throttle.dropped(this.#admission.pending, performance.now()));
    if (this.#opts.verbose) this.#opts.log(`${address}: too many connections in their handshake; dropped`);
  }

  #logThrottle(line: string | undefined): void {
    if (line !== undefined) this.#opts.log(line);
  }

  async #handshake(socket: net.Socket, address: string, authenticated: () => void): Promise<void> {
    let conn: FramedConn | undefined;
    try {
      const encrypted = await sniffTls(socket, HANDSHAKE_TIMEOUT_MS);
      let channel = socketChannel(socket, false);
      if (encrypted) {
        const secure = await acceptTls(socket, this.#tls!, HANDSHAKE_TIMEOUT_MS);
        // A TLSSocket reports its own errors (a reset mid-record); FramedConn listens too, once it exists.
        secure.on('error', () => {});
        channel = socketChannel(secure, true, channelBinding(secure));
      }
      const { binding } = channel;
      conn = new FramedConn(channel, this.#hasher!);
      // sniffTls paused the plain socket; TLS reads it itself.
      if (!encrypted) socket.resume();
      if (!encrypted && this.#opts.allowPlaintext !== true) {
        throw authError('FCP_ERR_AUTH_CHANNEL', 'this daemon requires encryption: drop --no-encryption');
      }
      const inbox = new Inbox(conn);
      const hello = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'HELLO');
      if (hello.type !== MsgType.Hello)
        throw new FcpError('FCP_ERR_PROTO_NOT_FCP', 'first message is not HELLO');
      const version = negotiateVersion(hello);
      conn.send({ ...ourHello(), versionMin: version, versionMax: version });
      applyCapabilities(conn, hello);
      const first = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'AUTH_START or ATTACH');
      const established: Established = {
        encrypted,
        binding,
        address,
        listBeforeSession: listsBeforeSession(hello),
        authenticated,
      };
      switch (first.type) {
        case MsgType.AuthStart:
          await this.#authenticate(conn, inbox, first, established);
          return;
        case MsgType.Attach:
          await this.#attach(conn, inbox, first, established);
          return;
        default:
          throw unexpectedRequest(first);
      }
    } catch (err) {
      const e = toFcpError(err);
      const who = conn?.remote ?? `${address}:${socket.remotePort ?? '?'}`;
      if (this.#opts.verbose || e.code !== 'FCP_ERR_NET_CLOSED')
        this.#opts.log(`${who}: ${e.code}: ${e.message}`);
      if (conn === undefined) socket.destroy();
      else conn.abort(e.fatal ? e : new FcpError(e.code, e.message, { fatal: true }));
    }
  }

  /**
   * AUTH_START -> AUTH_CHALLENGE, the request, then AUTH_PROOF until one is accepted (spec/SECURITY.md §6.1).
   * A pushing client that offered ListBeforeSession sends the head of its list right behind its proof; when
   * that proof is refused, the list entries met while waiting for the next proof are set aside, unread
   * (bounded by count and bytes), and go back in front of the queue for the session: nothing in them is
   * acted on before a proof is accepted (PROTOCOL.md §3.2).
   */
  async #authenticate(conn: FramedConn, inbox: Inbox, start: AuthStartMsg, est: Established): Promise<void> {
    const exchange = new DaemonAuthExchange(this.#auth!, start, est.binding);
    conn.send(exchange.challenge);
    // Decoded, kept, and not acted on until a proof covering its exact bytes is accepted.
    const request = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'PUSH or PULL');
    if (request.type !== MsgType.Push && request.type !== MsgType.Pull) throw unexpectedRequest(request);
    const setAside = new SetAsideList(est.listBeforeSession && request.type === MsgType.Push);
    // A list may only follow a proof: before the first one, any list message is out of place.
    let refused = false;
    for (;;) {
      const msg = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'AUTH_PROOF');
      if (refused && setAside.take(msg)) continue;
      if (msg.type !== MsgType.AuthProof) {
        throw new FcpError(
          'FCP_ERR_PROTO_UNEXPECTED',
          `expected AUTH_PROOF, got type 0x${msg.type.toString(16)}`,
        );
      }
      const result = await exchange.verify(request, msg, conn.remote, est.address);
      if (result !== undefined) {
        est.authenticated();
        inbox.putBack(setAside.messages);
        await this.#startSession(conn, inbox, request, {
          ...est,
          secret: result.sessionSecret,
          who: result.who,
        });
        return;
      }
      refused = true;
      conn.send({ type: MsgType.AuthRetry, attemptsLeft: exchange.attemptsLeft });
    }
  }

  /**
   * A session is one line in the log (README), written when it ends and saying who it was; -v adds a line
   * at each step. One that cannot start gets its one line here.
   */
  async #startSession(
    conn: FramedConn,
    inbox: Inbox,
    request: PushMsg | PullMsg,
    auth: Established & { secret: Buffer; who: string },
  ): Promise<void> {
    const who = `authenticated by ${auth.who}${auth.encrypted ? '' : ' (no encryption)'}`;
    const summary = `${conn.remote} ${who}, ${request.type === MsgType.Push ? 'push' : 'pull'}`;
    if (this.#opts.verbose) this.#opts.log(`${conn.remote}: ${who}`);
    try {
      await this.#runSession(conn, inbox, request, auth, summary);
    } catch (err) {
      const e = toFcpError(err);
      this.#opts.log(`${summary}: session refused: ${e.code}: ${e.message}`);
      conn.abort(e.fatal ? e : new FcpError(e.code, e.message, { fatal: true }));
    }
  }

  async #runSession(
    conn: FramedConn,
    inbox: Inbox,
    request: PushMsg | PullMsg,
    auth: Established & { secret: Buffer },
    summary: string,
  ): Promise<void> {
    this.#sessions.reserve();
    let registered = false;
    try {
      const connections = Math.min(Math.max(request.connections, 1), this.#opts.maxConnections);
      const stats = createStats(performance.now());
      const label = `${conn.remote} ${request.type === MsgType.Push ? 'push' : 'pull'}`;
      const onWarning = (err: FcpError) => {
        if (this.#opts.verbose) this.#opts.log(`${label}: ${err.path ?? ''}: ${err.code}: ${err.message}`);
      };
      const id = this.#sessions.newId();
      let engine: TransferEngine;
      let sessionFlags = 0;
      let startSender: (() => void) | undefined;
      if (request.type === MsgType.Push) {
        const singleFile = (request.flags & TransferFlag.SingleFile) !== 0;
        const dest = await this.#served!.destination(request.dest, singleFile);
        engine = new Receiver({
          hasher: this.#hasher!,
          control: conn,
          stats,
          onWarning,
          root: dest.root,
          singleName: dest.singleName,
          checksum: (request.flags & TransferFlag.Checksum) !== 0,
          idleTimeoutMs: this.#opts.idleTimeoutMs,
          onPartialKept: (temp, sidecar) => this.#opts.partials?.record(temp, sidecar),
        });
        sessionFlags = request.flags & TransferFlag.Checksum;
      } else {
        // --regex never crosses the wire: a client-chosen regex could backtrack for hours on the daemon's
        // event loop, so the pulling client applies it to the announced list instead (spec/SECURITY.md).
        const selector = createSelector({ include: request.include, exclude: request.exclude });
        const sources = await this.#served!.sources(request.source, onWarning);
        const single =
          sources.length === 1 && sources[0]!.topRel !== ROOT_ENTRY && !(await isDir(sources[0]!.abs));
        sessionFlags = (request.flags & TransferFlag.Checksum) | (single ? TransferFlag.SingleFile : 0);
        const sender = new Sender({
          hasher: this.#hasher!,
          control: conn,
          stats,
          onWarning,
          sources,
          selector,
          checksum: (request.flags & TransferFlag.Checksum) !== 0,
          idleTimeoutMs: this.#opts.idleTimeoutMs,
        });
        engine = sender;
        startSender = () => sender.start();
      }
      const session = this.#sessions.add({
        id,
        kind: request.type === MsgType.Push ? 'push' : 'pull',
        engine,
        maxConnections: connections,
        conns: new Set([conn]),
        startedMs: stats.startedMs,
        secret: auth.secret,
        encrypted: auth.encrypted,
        address: auth.address,
      });
      registered = true;
      this.#admission.grant(auth.address, connections);
      // SESSION first: a push list that came early is replayed by handOver, and whatever the receiver
      // answers to it (an ABORT included) must follow SESSION on the wire.
      conn.send({
        type: MsgType.Session,
        sessionId: id,
        flags: sessionFlags,
        maxConnections: connections,
        pieceSize: PIECE_SIZE,
      });
      inbox.handOver(engine);
      startSender?.();
      if (this.#opts.verbose)
        this.#opts.log(`${label}: session started (${connections} connections allowed)`);
      engine.done.then(
        () => this.#endSession(session, summary, stats, undefined),
        (err: unknown) => this.#endSession(session, summary, stats, toFcpError(err)),
      );
    } finally {
      if (!registered) this.#sessions.unreserve();
    }
  }

  #endSession(
    session: Session,
    label: string,
    stats: ReturnType<typeof createStats>,
    err: FcpError | undefined,
  ): void {
    this.#sessions.remove(session, err === undefined);
    this.#admission.revoke(session.address, session.maxConnections);
    if (this.#sessions.size === 0) this.#scheduleIdleRelease();
    const secs = ((performance.now() - stats.startedMs) / 1000).toFixed(2);
    const what = `${stats.filesSent} sent, ${stats.filesSkipped} skipped, ${stats.filesFailed} failed, ${stats.bytesDone} bytes, ${secs} s`;
    this.#opts.log(
      err
        ? `${label}: session failed: ${err.code}: ${err.message} (${what})`
        : `${label}: session done (${what})`,
    );
    // The client closes first after DONE; make sure a peer that never does cannot keep sockets forever.
    setTimeout(() => {
      for (const c of session.conns) c.destroy();
    }, 5000).unref();
  }

  /**
   * Once no session is left for IDLE_RELEASE_MS, the memory the last ones used goes back to the system
   * (idle-memory.ts). The delay keeps a client that runs command after command from paying for it each time.
   */
  #scheduleIdleRelease(): void {
    if (this.#idleRelease !== undefined) clearTimeout(this.#idleRelease);
    this.#idleRelease = setTimeout(() => {
      this.#idleRelease = undefined;
      if (this.#sessions.size === 0) releaseIdleMemory();
    }, IDLE_RELEASE_MS);
    this.#idleRelease.unref();
  }

  /**
   * ATTACH -> ATTACH_CHALLENGE -> ATTACH_PROOF. Every id gets a challenge and every failure the same answer,
   * FCP_ERR_SESSION_UNKNOWN, so nothing tells a live session from a dead one (spec/SECURITY.md §6.1).
   */
  async #attach(conn: FramedConn, inbox: Inbox, attach: AttachMsg, est: Established): Promise<void> {
    const { sessionId } = attach;
    const nonce = randomBytes(AUTH_NONCE_SIZE);
    conn.send({ type: MsgType.AttachChallenge, nonce });
    const answer = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'ATTACH_PROOF');
    if (answer.type !== MsgType.AttachProof) {
      throw new FcpError(
        'FCP_ERR_PROTO_UNEXPECTED',
        `expected ATTACH_PROOF, got type 0x${answer.type.toString(16)}`,
      );
    }
    const session = this.#sessions.get(sessionId);
    const proven =
      session !== undefined &&
      !session.engine.finished &&
      session.encrypted === est.encrypted &&
      verifyAttachProof(session.secret, sessionId, nonce, est.binding, answer.proof);
    if (!proven) {
      const ended = this.#sessions.endedWell(sessionId);
      const late =
        ended !== undefined &&
        ended.encrypted === est.encrypted &&
        verifyAttachProof(ended.secret, sessionId, nonce, est.binding, answer.proof);
      if (!late) throw new FcpError('FCP_ERR_SESSION_UNKNOWN');
      // A client's extra connection that arrived just after its session ended in good order: the same
      // answer on the wire, but no problem worth a line without -v.
      if (this.#opts.verbose) this.#opts.log(`${conn.remote}: ATTACH to a session that has ended; closed`);
      conn.abort(new FcpError('FCP_ERR_SESSION_UNKNOWN', undefined, { fatal: true }));
      return;
    }
    est.authenticated();
    if (session.conns.size >= session.maxConnections) {
      throw new FcpError('FCP_ERR_SESSION_SOCKETS', `session allows ${session.maxConnections} connections`);
    }
    session.conns.add(conn);
    conn.onceClosed(() => session.conns.delete(conn));
    conn.send({ type: MsgType.Attach, sessionId });
    session.engine.addConnection(conn);
    inbox.handOver(session.engine);
  }
}

/** Entries the client may send past MAX_LIST_BYTES_BEFORE_SESSION: the one that crossed it. */
const MAX_SET_ASIDE_ENTRY_BYTES =
  MAX_LIST_BYTES_BEFORE_SESSION + FRAME_HEADER_SIZE + MAX_PAYLOAD_BY_TYPE[MsgType.FileInfo]!;

/**
 * The push list a client sent between a refused proof and its next one (ListBeforeSession), kept for the
 * session: at most MAX_LIST_BEFORE_SESSION entries of MAX_SET_ASIDE_ENTRY_BYTES and one FILE_COUNT, which is
 * what an honest client sends before SESSION (PROTOCOL.md §3.2). Anything past that is a protocol error.
 */
class SetAsideList {
  readonly messages: Message[] = [];
  readonly #allowed: boolean;
  #entries = 0;
  #entryBytes = 0;
  #counts = 0;

  constructor(allowed: boolean) {
    this.#allowed = allowed;
  }

  /** False for anything but a list message (the caller decides what it is); throws past the bounds. */
  take(msg: Message): boolean {
    if (!this.#allowed) return false;
    if (msg.type === MsgType.FileCount) {
      if (++this.#counts > 1) throw tooMuchList('a second FILE_COUNT');
    } else if (msg.type === MsgType.DirInfo || msg.type === MsgType.FileInfo) {
      this.#entryBytes += FRAME_HEADER_SIZE + encodeMessage(msg).length;
      if (++this.#entries > MAX_LIST_BEFORE_SESSION) {
        throw tooMuchList(`more than ${MAX_LIST_BEFORE_SESSION} entries`);
      }
      if (this.#entryBytes > MAX_SET_ASIDE_ENTRY_BYTES) throw tooMuchList('more list bytes than allowed');
    } else {
      return false;
    }
    this.messages.push(msg);
    return true;
  }
}

function tooMuchList(what: string): FcpError {
  return new FcpError('FCP_ERR_PROTO_UNEXPECTED', `${what} before SESSION`);
}

function unexpectedRequest(msg: Message): FcpError {
  return new FcpError('FCP_ERR_PROTO_UNEXPECTED', `unexpected message type 0x${msg.type.toString(16)}`);
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

async function isDir(abs: string): Promise<boolean> {
  try {
    return (await lstat(abs)).isDirectory();
  } catch {
    return false;
  }
}
