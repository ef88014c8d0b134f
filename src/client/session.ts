/**
 * The client's handshake, over whatever channel the transport opened: HELLO on every connection of the
 * session, and on the control one the auth exchange, the request and the proofs until the daemon grants
 * SESSION (spec/PROTOCOL.md §3–§4, spec/SECURITY.md §4–§5).
 */
import {
  type DataMsg,
  encodeMessage,
  FcpError,
  type HelloMsg,
  type Message,
  MAX_LIST_BEFORE_SESSION,
  MsgType,
  type PullMsg,
  type PushMsg,
  type SessionMsg,
  TransferFlag,
} from '../protocol/index.js';
import { type AuthenticatedSession, ClientAuthExchange } from '../security/client-auth.js';
import type { Hasher } from '../transfer/checksum.js';
import type { DialedChannel, Dialer } from '../transport/dialer.js';
import { FramedConn } from '../transport/framed-conn.js';
import {
  applyCapabilities,
  attachProven,
  HANDSHAKE_TIMEOUT_MS,
  listsBeforeSession,
  negotiateVersion,
  ourHello,
  servesDryRun,
  servesFsync,
} from '../transport/hello.js';
import { Inbox } from '../transport/inbox.js';
import { openPastBusy } from './busy-retry.js';
import { type CommonOptions, dialerFor, securityDefaults } from './options.js';

/** What the extra connections of a session need from the control connection. */
export interface SessionLink {
  /** The transport the control connection came through: the extra ones use it too. */
  readonly dialer: Dialer;
  readonly auth: AuthenticatedSession;
  /** The control connection's resumption (a TLS ticket), so ATTACH channels resume instead of a full handshake. */
  readonly resumption: Buffer | undefined;
  /**
   * The daemon offered AttachProven on the control connection, the one its host key proved: every extra
   * connection's ATTACH answer must then prove the session secret, whatever that connection's HELLO says.
   */
  readonly attachProven: boolean;
}

/** A connection to the daemon, before HELLO: its frames, its handshake queue, and what its channel proved. */
export interface OpenedConn {
  conn: FramedConn;
  inbox: Inbox;
  dialed: DialedChannel;
}

/** A channel from `dialer`, framed. The caller checks who answered before it writes anything. */
export async function openConn(
  dialer: Dialer,
  hasher: Hasher,
  resume: Buffer | undefined,
  signal?: AbortSignal,
): Promise<OpenedConn> {
  const dialed = await dialer.open(resume, signal);
  const conn = new FramedConn(dialed.channel, hasher);
  conn.peerName = dialer.peerName;
  return { conn, inbox: new Inbox(conn), dialed };
}

/** Sends HELLO and `first` (pipelined), waits for the daemon's HELLO and returns it. */
export async function exchangeHello(ch: OpenedConn, first: Exclude<Message, DataMsg>): Promise<HelloMsg> {
  ch.conn.send(ourHello());
  ch.conn.send(first);
  const hello = await ch.inbox.next(HANDSHAKE_TIMEOUT_MS, 'HELLO');
  if (hello.type !== MsgType.Hello)
    throw new FcpError('FCP_ERR_PROTO_NOT_FCP', 'the server did not answer HELLO');
  negotiateVersion(hello);
  applyCapabilities(ch.conn, hello);
  return hello;
}

/** The control connection once the daemon granted the session; messages for the engine wait in `inbox`. */
export interface OpenedSession {
  conn: FramedConn;
  inbox: Inbox;
  session: SessionMsg;
  link: SessionLink;
}

/**
 * The control connection: channel, AUTH_START/AUTH_CHALLENGE (the daemon proves its host key, which must be
 * the one the channel proved, if any, and pinned or vouched for by our token), the request, then one
 * AUTH_PROOF per credential until SESSION.
 * `afterFirstProof` runs once the first proof is sent, told how many list entries the daemon takes before
 * SESSION (MAX_LIST_BEFORE_SESSION with ListBeforeSession, else 0); whatever it sends follows that proof,
 * and the daemon keeps it across an AUTH_RETRY. Messages for it wait in the returned Inbox.
 */
export async function openSession(
  opts: CommonOptions,
  request: PushMsg | PullMsg,
  afterFirstProof?: (conn: FramedConn, preSessionEntries: number) => void,
): Promise<OpenedSession> {
  const security = securityDefaults(opts.security);
  const dialer = opts.dialer ?? dialerFor(opts.endpoint, security);
  // Only a TLS handshake fails with FCP_ERR_NET_CLOSED here: a daemon dropping at accept (tcp-tls-dial.ts).
  const ch = await openPastBusy(() => openConn(dialer, opts.hasher, undefined), opts.onNotice).catch(
    (err: unknown) => {
      throw dialer.unanswered(err);
    },
  );
  const { conn, inbox } = ch;
  const exchange = new ClientAuthExchange(
    {
      ...security,
      host: opts.endpoint.host,
      port: opts.endpoint.port,
      peerAddress: ch.dialed.channel.address ?? '',
      onNotice: (text) => opts.onNotice?.(text),
      onHostKeyRecorded: (text) => opts.onInfo?.(text),
    },
    { tlsHostKey: ch.dialed.identity.hostKey(), binding: ch.dialed.channel.binding },
  );
  try {
    const hello = await exchangeHello(ch, exchange.start).catch((err: unknown) => {
      throw dialer.unanswered(err);
    });
    if (asksDryRun(request) && !servesDryRun(hello)) throw dryRunUnsupported(opts.endpoint);
    if (asksFsync(request) && !servesFsync(hello)) throw fsyncUnsupported(opts.endpoint);
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
        if (asksDryRun(request) && (answer.flags & TransferFlag.DryRun) === 0)
          throw dryRunUnsupported(opts.endpoint);
        const link = {
          dialer,
          auth: exchange.session(),
          resumption: ch.dialed.resumption(),
          attachProven: attachProven(conn),
        };
        opts.onSession?.(answer);
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

/** The request asks for a dry run (fcp --dry-run). */
function asksDryRun(request: PushMsg | PullMsg): boolean {
  return (request.flags & TransferFlag.DryRun) !== 0;
}

/**
 * A dry run asked of a daemon that does not offer it (HELLO) or did not grant it (SESSION's flags): an older
 * daemon ignores the flag and would write, so the client stops before the request (PROTOCOL.md §5.6).
 */
function dryRunUnsupported(endpoint: { host: string; port: number }): FcpError {
  return new FcpError(
    'FCP_ERR_SESSION_DRY_RUN',
    `the daemon at ${endpoint.host}:${endpoint.port} cannot do a dry run (it is older than this fcp); nothing was sent`,
    { fatal: true },
  );
}

/** The push asks the daemon to sync what it writes (fcp push --fsync). */
function asksFsync(request: PushMsg | PullMsg): boolean {
  return (request.flags & TransferFlag.Fsync) !== 0;
}

/**
 * --fsync asked of a daemon whose HELLO does not offer it: an older daemon ignores the flag and would write
 * without syncing, so the client stops before the request (PROTOCOL.md §6.3).
 */
function fsyncUnsupported(endpoint: { host: string; port: number }): FcpError {
  return new FcpError(
    'FCP_ERR_SESSION_FSYNC',
    `the daemon at ${endpoint.host}:${endpoint.port} cannot sync what it writes (--fsync; it is older than this fcp); nothing was sent`,
    { fatal: true },
  );
}
