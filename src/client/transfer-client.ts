/**
 * The client's half of push and pull: connect (TLS unless --no-encryption), authenticate, open the session,
 * attach the extra connections with proofs of the session secret, and run the sending or receiving engine
 * until the daemon confirms the end (spec/PROTOCOL.md §3–§6, spec/SECURITY.md §6).
 */
import { lstat } from 'node:fs/promises';
import { homedir } from 'node:os';
import type tls from 'node:tls';
import { hostPort as formatHostPort, socketChannel } from '../transport/channel.js';
import { dial } from '../transport/dial.js';
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
  type DataMsg,
  encodeMessage,
  FcpError,
  type HelloMsg,
  type Message,
  MAX_LIST_BEFORE_SESSION,
  MAX_PATTERNS,
  MsgType,
  type PullMsg,
  type PushMsg,
  type SessionMsg,
  TransferFlag,
  toFcpError,
} from '../protocol/index.js';
import { type AuthenticatedSession, ClientAuthExchange } from '../security/client-auth.js';
import { defaultKnownHostsPath } from '../security/known-hosts.js';
import { attachProof } from '../security/session-secret.js';
import { channelBinding, checkSameDaemon, connectTls, peerHostKey } from '../security/tls-channel.js';
import type { Hasher } from '../transfer/checksum.js';
import { resolveLocalDestination } from '../transfer/destination.js';
import type { TransferEngine } from '../transfer/engine.js';
import { Receiver } from '../transfer/receiver.js';
import { createSelector, type SelectOptions } from '../transfer/select.js';
import { Sender } from '../transfer/sender.js';
import { localSourceRoot, type SourceRoot } from '../transfer/source-spec.js';
import type { TransferStats } from '../transfer/stats.js';
import { ROOT_ENTRY } from '../transfer/wire-path.js';
import { openPastBusy } from './busy-retry.js';

export interface Endpoint {
  host: string;
  port: number;
}

function hostPort(endpoint: Endpoint): string {
  return formatHostPort(endpoint.host, endpoint.port);
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
}

interface CommonOptions {
  endpoint: Endpoint;
  security?: Partial<SecurityOptions>;
  connections: number;
  checksum: boolean;
  select: SelectOptions;
  hasher: Hasher;
  stats: TransferStats;
  onWarning: (err: FcpError) => void;
  /** Called with the engine once it runs, so the caller can cancel it (SIGINT). */
  onEngine?: (engine: TransferEngine) => void;
  /** Recoverable events worth a line with -v (a connection replaced). */
  onNotice?: (text: string) => void;
  /** What the user should hear of unless -q (a host key pinned in known_hosts). */
  onInfo?: (text: string) => void;
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

export async function push(opts: PushOptions): Promise<void> {
  const roots = await checkSources(opts.sources);
  const single = roots.length === 1 && roots[0]!.root.topRel !== ROOT_ENTRY && !roots[0]!.isDir;
  const selector = createSelector(opts.select);
  let flags = single ? TransferFlag.SingleFile : 0;
  if (opts.checksum) flags |= TransferFlag.Checksum;
  const request: PushMsg = { type: MsgType.Push, flags, connections: opts.connections, dest: opts.dest };
  const extra = new ExtraConnections(opts);
  let started: Sender | undefined;
  // The list starts right behind the first proof (when the daemon allows it), so its first answers come
  // back with SESSION instead of a round trip after it.
  const startList = (control: FramedConn, preSessionEntries: number): void => {
    started = new Sender({
      hasher: opts.hasher,
      control,
      stats: opts.stats,
      onWarning: opts.onWarning,
      onConnectionLost: extra.lost,
      onNeeded: extra.needed,
      sources: roots.map((r) => r.root),
      selector,
      checksum: opts.checksum,
      preSessionEntries,
    });
    started.start();
  };
  let opened: Awaited<ReturnType<typeof openSession>>;
  try {
    opened = await openSession(opts, request, startList);
  } catch (err) {
    throw await handshakeFailed(started, err);
  }
  const sender = started!;
  const { conn, inbox, session, link } = opened;
  extra.granted(session, link, sender);
  inbox.handOver(sender);
  sender.sessionGranted();
  opts.onEngine?.(sender);
  await finish(sender, conn, extra);
}

/**
 * The error to report when the handshake failed after the list had started. Usually the handshake's own
 * (a refused key, the daemon's ABORT), which also cut the Sender off (FCP_ERR_NET_*); but a Sender that
 * failed by itself (an unreadable source) closed the connection, and then its error is the real one.
 */
async function handshakeFailed(sender: Sender | undefined, err: unknown): Promise<unknown> {
  if (sender === undefined) return err;
  const own = sender.finished
    ? await sender.done.then(
        () => undefined,
        (e: unknown) => toFcpError(e),
      )
    : undefined;
  sender.fail(err, false);
  return own !== undefined && !own.code.startsWith('FCP_ERR_NET_') ? own : err;
}

export async function pull(opts: PullOptions): Promise<void> {
  // Checked before connecting, so a bad pattern is a usage error. The regexes stay here: the receiver
  // applies them to the announced list (the daemon never runs a client's regex).
  createSelector(opts.select);
  for (const [name, list] of [
    ['include', opts.select.include],
    ['exclude', opts.select.exclude],
  ] as const) {
    if ((list?.length ?? 0) > MAX_PATTERNS) {
      throw new FcpError(
        'FCP_ERR_USAGE',
        `at most ${MAX_PATTERNS} --${name} patterns can be sent to the daemon`,
      );
    }
  }
  const regexOnly = createSelector({ regex: opts.select.regex ?? [] });
  let flags = 0;
  if (opts.checksum) flags |= TransferFlag.Checksum;
  const request: PullMsg = {
    type: MsgType.Pull,
    flags,
    connections: opts.connections,
    source: opts.source,
    include: [...(opts.select.include ?? [])],
    exclude: [...(opts.select.exclude ?? [])],
  };
  const { conn, inbox, session, link } = await openSession(opts, request);
  let dest: Awaited<ReturnType<typeof resolveLocalDestination>>;
  try {
    dest = await resolveLocalDestination(opts.dest, (session.flags & TransferFlag.SingleFile) !== 0);
  } catch (err) {
    conn.abort(new FcpError('FCP_ERR_SESSION_ABORTED', 'client cannot write to its destination'));
    throw err;
  }
  const extra = new ExtraConnections(opts);
  const receiver: Receiver = new Receiver({
    hasher: opts.hasher,
    control: conn,
    stats: opts.stats,
    onWarning: opts.onWarning,
    onConnectionLost: extra.lost,
    onNeeded: extra.needed,
    root: dest.root,
    singleName: dest.singleName,
    checksum: opts.checksum,
    wantsFile: (path) => regexOnly.wantsFile(path),
  });
  extra.granted(session, link, receiver);
  inbox.handOver(receiver);
  opts.onEngine?.(receiver);
  await finish(receiver, conn, extra);
}

interface CheckedSource {
  root: SourceRoot;
  isDir: boolean;
}

/** Every source must exist before anything connects: a typo is a clear local error, not a remote one. */
async function checkSources(sources: readonly string[]): Promise<CheckedSource[]> {
  const out: CheckedSource[] = [];
  for (const source of sources) {
    const root = localSourceRoot(source);
    try {
      const st = await lstat(root.abs);
      out.push({ root, isDir: st.isDirectory() });
    } catch (err) {
      const e = toFcpError(err, source);
      throw new FcpError(e.code, `${source}: ${e.message}`, { path: source, fatal: true, cause: err });
    }
  }
  return out;
}

/** What the extra connections of a session need from the control connection. */
interface SessionLink {
  readonly security: SecurityOptions;
  readonly auth: AuthenticatedSession;
  /** The control connection's TLS session (ticket), so ATTACH sockets resume instead of a full handshake. */
  readonly tlsSession: Buffer | undefined;
}

function securityDefaults(given: Partial<SecurityOptions> | undefined): SecurityOptions {
  return {
    encryption: given?.encryption ?? true,
    knownHostsFile: given?.knownHostsFile ?? defaultKnownHostsPath(),
    acceptHostKey: given?.acceptHostKey,
    user: given?.user ?? '',
    identityFile: given?.identityFile,
    configIdentityFiles: given?.configIdentityFiles ?? [],
    homeDir: given?.homeDir ?? homedir(),
    agentSocket: given?.agentSocket ?? process.env['SSH_AUTH_SOCK'],
  };
}

/** A connection to the daemon, before HELLO: its frames, its handshake queue, and the TLS socket if any. */
interface OpenedConn {
  conn: FramedConn;
  inbox: Inbox;
  tls: tls.TLSSocket | undefined;
}

/** TCP, then TLS unless --no-encryption. The caller checks who answered before it writes anything. */
async function openChannel(
  endpoint: Endpoint,
  hasher: Hasher,
  security: SecurityOptions,
  tlsSession: Buffer | undefined,
  signal?: AbortSignal,
): Promise<OpenedConn> {
  const socket = await dial(endpoint.host, endpoint.port, undefined, signal);
  if (!security.encryption) {
    const conn = new FramedConn(socketChannel(socket, false), hasher);
    conn.peerName = `the daemon at ${hostPort(endpoint)}`;
    return { conn, inbox: new Inbox(conn), tls: undefined };
  }
  let secure: tls.TLSSocket;
  try {
    secure = await connectTls(socket, HANDSHAKE_TIMEOUT_MS, tlsSession);
  } catch (err) {
    throw notTls(endpoint, err);
  }
  // FramedConn reports errors; this keeps one that comes before it listens from being uncaught.
  secure.on('error', () => {});
  const conn = new FramedConn(socketChannel(secure, true, channelBinding(secure)), hasher);
  conn.peerName = `the daemon at ${hostPort(endpoint)}`;
  return { conn, inbox: new Inbox(conn), tls: secure };
}

/**
 * A TLS handshake that fails means the port is not an fcpd of protocol 2 (every v2 daemon speaks TLS, even
 * with --no-encryption): a protocol error, told in one line, not OpenSSL's. A connection closed before any
 * answer is a busy daemon instead.
 */
function notTls(endpoint: Endpoint, err: unknown): FcpError {
  const e = toFcpError(err);
  if (e.code !== 'FCP_ERR_AUTH_CHANNEL') return e;
  const cause = e.cause as { code?: unknown; reason?: unknown } | undefined;
  if (cause?.code === 'ECONNRESET' || cause?.code === 'EPIPE') {
    // Closed without a word: a daemon at its cap of connections in their handshake (spec/SECURITY.md §10)
    // closes at accept. Worth a retry, unlike a peer that answers something other than TLS.
    return new FcpError(
      'FCP_ERR_NET_CLOSED',
      `${hostPort(endpoint)} closed the connection during the TLS handshake (is the daemon busy?)`,
      { cause: err },
    );
  }
  const why =
    typeof cause?.reason === 'string'
      ? cause.reason
      : typeof cause?.code === 'string'
        ? cause.code
        : 'TLS failed';
  return new FcpError(
    'FCP_ERR_PROTO_NOT_FCP',
    `${hostPort(endpoint)} does not answer TLS (${why}): is it an fcpd of this version?`,
    { cause: err },
  );
}

/**
 * A listener that accepts but never answers our first message (TLS or HELLO) is not a daemon we reached:
 * the same failure as a refused connection (exit 4, not retried on the first attempt), not a broken session.
 */
function unanswered(endpoint: Endpoint, err: unknown): unknown {
  if (toFcpError(err).code !== 'FCP_ERR_NET_TIMEOUT') return err;
  return new FcpError(
    'FCP_ERR_NET_CONNECT',
    `cannot connect to ${hostPort(endpoint)}: it accepted the connection but did not answer ` +
      `within ${HANDSHAKE_TIMEOUT_MS / 1000} s (is fcpd running there?)`,
    { cause: err },
  );
}

/** Sends HELLO and `first` (pipelined), waits for the daemon's HELLO and returns it. */
async function exchangeHello(ch: OpenedConn, first: Exclude<Message, DataMsg>): Promise<HelloMsg> {
  ch.conn.send(ourHello());
  ch.conn.send(first);
  const hello = await ch.inbox.next(HANDSHAKE_TIMEOUT_MS, 'HELLO');
  if (hello.type !== MsgType.Hello)
    throw new FcpError('FCP_ERR_PROTO_NOT_FCP', 'the server did not answer HELLO');
  negotiateVersion(hello);
  applyCapabilities(ch.conn, hello);
  return hello;
}

/**
 * The control connection: channel, AUTH_START/AUTH_CHALLENGE (the daemon proves its host key, which must be
 * pinned or vouched for by our token), the request, then one AUTH_PROOF per credential until SESSION.
 * `afterFirstProof` runs once the first proof is sent, told how many list entries the daemon takes before
 * SESSION (MAX_LIST_BEFORE_SESSION with ListBeforeSession, else 0); whatever it sends follows that proof,
 * and the daemon keeps it across an AUTH_RETRY. Messages for it wait in the returned Inbox.
 */
async function openSession(
  opts: CommonOptions,
  request: PushMsg | PullMsg,
  afterFirstProof?: (conn: FramedConn, preSessionEntries: number) => void,
): Promise<{ conn: FramedConn; inbox: Inbox; session: SessionMsg; link: SessionLink }> {
  const security = securityDefaults(opts.security);
  // Only a TLS handshake fails with FCP_ERR_NET_CLOSED here: a daemon dropping at accept (notTls).
  const ch = await openPastBusy(
    () => openChannel(opts.endpoint, opts.hasher, security, undefined),
    opts.onNotice,
  ).catch((err: unknown) => {
    throw unanswered(opts.endpoint, err);
  });
  const { conn, inbox } = ch;
  const exchange = new ClientAuthExchange(
    {
      ...security,
      host: opts.endpoint.host,
      port: opts.endpoint.port,
      onNotice: (text) => opts.onNotice?.(text),
      onHostKeyRecorded: (text) => opts.onInfo?.(text),
    },
    {
      tlsHostKey: ch.tls === undefined ? undefined : peerHostKey(ch.tls).spki,
      binding: ch.conn.channel.binding,
    },
  );
  try {
    const hello = await exchangeHello(ch, exchange.start).catch((err: unknown) => {
      throw unanswered(opts.endpoint, err);
    });
    const challenge = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'AUTH_CHALLENGE');
    if (challenge.type !== MsgType.AuthChallenge)
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'expected AUTH_CHALLENGE');
    await exchange.acceptChallenge(challenge);
    conn.send(request);
    const binding = { type: request.type, payload: encodeMessage(request) };
    let first = true;
    for await (const proof of exchange.proofs(binding)) {
      conn.send(proof);
      if (first) afterFirstProof?.(conn, listsBeforeSession(hello) ? MAX_LIST_BEFORE_SESSION : 0);
      first = false;
      // The daemon acts on the request only now (paths, globs): give it the time SESSION always had.
      const answer = await inbox.next(HANDSHAKE_TIMEOUT_MS * 3, 'SESSION');
      if (answer.type === MsgType.Session) {
        const link = { security, auth: exchange.session(), tlsSession: ch.tls?.getSession() };
        return { conn, inbox, session: answer, link };
      }
      if (answer.type !== MsgType.AuthRetry)
        throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'expected SESSION or AUTH_RETRY');
    }
    throw exchange.exhausted();
  } catch (err) {
    conn.destroy();
    throw err;
  } finally {
    exchange.close();
  }
}

/**
 * The session's connections besides the control one, for one engine.
 *
 * They are opened the first time the files the receiver asked for (not merely listed: a re-run skips most)
 * hold more than one piece of data. Until then there is nothing for a second connection to carry in
 * parallel (a piece travels whole on one connection), and each costs a TLS handshake on both ends: a
 * one-file copy of a few KiB took 193 ms with its 7 extra connections and 183 ms without (README
 * "Connections"), and a no-change re-run of a tree opened all of them for nothing. A push lists before
 * SESSION, so they also wait for granted().
 *
 * When one dies mid-session its pieces are re-sent over the others (the engine does that); here a
 * replacement is attached so the transfer keeps its width. Bounded, so a link that kills every new
 * connection cannot make us reconnect forever.
 *
 * When the session ends, none is opened any more and those still on their way are cancelled with a FIN
 * (dial.ts), and the client waits for them to close before it exits: one cut off by the process's exit
 * mid-handshake was a reset the daemon logged as a failed TLS handshake (README: one line per session).
 */
class ExtraConnections {
  readonly #opts: CommonOptions;
  #granted: { session: SessionMsg; link: SessionLink; engine: TransferEngine } | undefined;
  #neededBytes = 0;
  #attached = false;
  #replacements = 0;
  #closing = false;
  /** Attaches on their way, each with what cancels it. */
  readonly #inFlight = new Map<Promise<void>, AbortController>();

  constructor(opts: CommonOptions) {
    this.#opts = opts;
  }

  /** SESSION arrived and `engine` runs it. */
  granted(session: SessionMsg, link: SessionLink, engine: TransferEngine): void {
    this.#granted = { session, link, engine };
    this.#replacements = 2 * this.#wanted(session);
    this.#maybeAttach();
  }

  /** EngineOptions.onNeeded. */
  readonly needed = (bytes: number): void => {
    this.#neededBytes = bytes;
    this.#maybeAttach();
  };

  /** EngineOptions.onConnectionLost: a data connection died and the session goes on without it. */
  readonly lost = (err: FcpError): void => {
    const g = this.#granted;
    if (g === undefined || this.#closing || g.engine.finished || this.#replacements <= 0) return;
    this.#replacements--;
    this.#opts.onNotice?.(
      `a connection failed (${err.message}); its pieces go over the others, attaching a replacement`,
    );
    this.#attachOne(g).catch(() => {});
  };

  #wanted(session: SessionMsg): number {
    return Math.min(this.#opts.connections, session.maxConnections);
  }

  /** Opens the others in parallel; one that cannot be attached is reported and the transfer goes on. */
  #maybeAttach(): void {
    const g = this.#granted;
    if (this.#attached || this.#closing || g === undefined || g.engine.finished) return;
    if (this.#neededBytes <= g.session.pieceSize) return;
    this.#attached = true;
    let reported = false;
    for (let i = 1; i < this.#wanted(g.session); i++) {
      this.#attachOne(g).catch((err: unknown) => {
        // SESSION_UNKNOWN: a small transfer finished on the daemon before this connection arrived; had the
        // session died, the control connection says so.
        const e = toFcpError(err);
        if (g.engine.finished || reported || e.code === 'FCP_ERR_SESSION_UNKNOWN') return;
        reported = true;
        this.#opts.onWarning(new FcpError(e.code, `could not open an extra connection: ${e.message}`));
      });
    }
  }

  /** The session is over: opens nothing more, cancels what is on its way, and waits (bounded) for it. */
  async close(timeoutMs: number): Promise<void> {
    this.#closing = true;
    for (const cancel of this.#inFlight.values()) cancel.abort();
    const settled = Promise.allSettled(this.#inFlight.keys());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([settled, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  #attachOne(g: { session: SessionMsg; link: SessionLink; engine: TransferEngine }): Promise<void> {
    const cancel = new AbortController();
    const attempt = (async () => {
      const { conn, inbox } = await attachOne(
        this.#opts.endpoint,
        this.#opts.hasher,
        g.session.sessionId,
        g.link,
        cancel.signal,
      );
      if (this.#closing || g.engine.finished) {
        // Attached too late to carry anything: a proper close (TLS close_notify, then FIN).
        conn.end();
        return;
      }
      g.engine.addConnection(conn);
      inbox.handOver(g.engine);
    })();
    this.#inFlight.set(attempt, cancel);
    const forget = () => this.#inFlight.delete(attempt);
    attempt.then(forget, forget);
    return attempt;
  }
}

/**
 * One extra connection: TLS resumed from the control connection (or the same host key), HELLO, ATTACH, and the
 * proof of the session secret bound to this connection's own channel (spec/SECURITY.md §6.4).
 */
async function attachOne(
  endpoint: Endpoint,
  hasher: Hasher,
  sessionId: Uint8Array,
  link: SessionLink,
  signal: AbortSignal,
): Promise<{ conn: FramedConn; inbox: Inbox }> {
  const ch = await openChannel(endpoint, hasher, link.security, link.tlsSession, signal);
  const { conn, inbox } = ch;
  try {
    if (ch.tls !== undefined) checkSameDaemon(ch.tls, link.auth.hostFingerprint);
    await exchangeHello(ch, { type: MsgType.Attach, sessionId });
    const challenge = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'ATTACH_CHALLENGE');
    if (challenge.type !== MsgType.AttachChallenge)
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'expected ATTACH_CHALLENGE');
    const proof = attachProof(link.auth.sessionSecret, sessionId, challenge.nonce, ch.conn.channel.binding);
    conn.send({ type: MsgType.AttachProof, proof });
    const msg = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'ATTACH');
    if (msg.type !== MsgType.Attach) throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'expected ATTACH');
  } catch (err) {
    conn.destroy();
    throw err;
  }
  // On a pull the daemon may start sending DATA right behind its ATTACH: the inbox keeps it for the engine.
  return { conn, inbox };
}

/** How long the last messages get to leave before the caller may exit the process. */
const FLUSH_TIMEOUT_MS = 2_000;

async function finish(engine: TransferEngine, control: FramedConn, extra: ExtraConnections): Promise<void> {
  try {
    await engine.done;
  } finally {
    const extrasClosed = extra.close(FLUSH_TIMEOUT_MS);
    engine.closeAll();
    // The receiver's DONE is the last thing written: wait until it has left (TLS encrypts and writes it
    // asynchronously), so a process.exit right after cannot cut it off.
    await Promise.all([control.flushed(FLUSH_TIMEOUT_MS), extrasClosed]);
  }
}
