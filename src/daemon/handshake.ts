/**
 * The daemon's handshake on one channel, whatever made it (a TCP listener today; a later `fcpd --stdio`):
 *   AWAIT_HELLO -> (AUTH_START -> AUTH_CHALLENGE -> PUSH | PULL -> AUTH_PROOF... -> new session)
 *               | (ATTACH -> ATTACH_CHALLENGE -> ATTACH_PROOF -> joins a session)
 * Nothing a client asks for is acted on before it has authenticated (spec/SECURITY.md §6). A failure is
 * logged and closes this connection only (spec/PROTOCOL.md §3).
 */
import { FramedConn } from '../transport/framed-conn.js';
import {
  applyCapabilities,
  HANDSHAKE_TIMEOUT_MS,
  listsBeforeSession,
  negotiateVersion,
  ourHello,
} from '../transport/hello.js';
import { Inbox } from '../transport/inbox.js';
import type { AcceptedChannel } from '../transport/tcp-tls-accept.js';
import { type AuthStartMsg, FcpError, type Message, MsgType, toFcpError } from '../protocol/index.js';
import { type DaemonAuthConfig, DaemonAuthExchange } from '../security/daemon-auth.js';
import type { Hasher } from '../transfer/checksum.js';
import { attachToSession } from './session-attach.js';
import type { SessionRegistry } from './session-registry.js';
import type { Established, Sessions } from './sessions.js';
import { isSameHostAddress } from '../security/same-host.js';
import { SetAsideList } from './set-aside-list.js';

/** What whoever made the channel knows of its client, beyond the channel itself. */
export interface Arrival {
  /** The client's address without its port: admission and authorized_keys `from=` read it. */
  readonly address: string;
  /** Releases the connection's handshake slot and stops its deadline: called once authenticated. */
  readonly authenticated: () => void;
}

/** The daemon's parts a handshake needs. */
export interface HandshakeContext {
  readonly hasher: Hasher;
  readonly auth: DaemonAuthConfig;
  readonly sessions: Sessions;
  readonly registry: SessionRegistry;
  readonly log: (line: string) => void;
  readonly verbose: boolean;
}

/**
 * Runs the handshake on `channel` and hands the connection to its session; never rejects. A channel that
 * comes with a refusal gets it as ABORT after it is framed.
 */
export async function handshake(
  channel: AcceptedChannel,
  arrival: Arrival,
  ctx: HandshakeContext,
): Promise<void> {
  const conn = new FramedConn(channel, ctx.hasher);
  try {
    if (channel.refusal !== undefined) throw channel.refusal;
    const inbox = new Inbox(conn);
    const hello = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'HELLO');
    if (hello.type !== MsgType.Hello)
      throw new FcpError('FCP_ERR_PROTO_NOT_FCP', 'first message is not HELLO');
    const version = negotiateVersion(hello);
    conn.send({ ...ourHello(), versionMin: version, versionMax: version });
    applyCapabilities(conn, hello);
    const first = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'AUTH_START or ATTACH');
    const established: Established = {
      encrypted: channel.encrypted,
      carried: channel.carried === true,
      binding: channel.binding,
      address: arrival.address,
      listBeforeSession: listsBeforeSession(hello),
      authenticated: arrival.authenticated,
    };
    switch (first.type) {
      case MsgType.AuthStart:
        await authenticate(conn, inbox, first, established, ctx);
        return;
      case MsgType.Attach:
        await attachToSession(conn, inbox, first, established, ctx);
        return;
      default:
        throw unexpectedRequest(first);
    }
  } catch (err) {
    const e = toFcpError(err);
    logConnectionFailure(ctx, conn.remote, e);
    conn.abort(e.fatal ? e : new FcpError(e.code, e.message, { fatal: true }));
  }
}

/** A connection that failed before its session: one line, except for a client that just went away (-v). */
export function logConnectionFailure(
  out: { readonly log: (line: string) => void; readonly verbose: boolean },
  who: string,
  e: FcpError,
): void {
  if (out.verbose || e.code !== 'FCP_ERR_NET_CLOSED') out.log(`${who}: ${e.code}: ${e.message}`);
}

/**
 * AUTH_START -> AUTH_CHALLENGE, the request, then AUTH_PROOF until one is accepted (spec/SECURITY.md §6.1).
 * A pushing client that offered ListBeforeSession sends the head of its list right behind its proof; when
 * that proof is refused, the list entries met while waiting for the next proof are set aside, unread
 * (bounded by count and bytes), and go back in front of the queue for the session: nothing in them is
 * acted on before a proof is accepted (PROTOCOL.md §3.2).
 */
async function authenticate(
  conn: FramedConn,
  inbox: Inbox,
  start: AuthStartMsg,
  est: Established,
  ctx: HandshakeContext,
): Promise<void> {
  const exchange = new DaemonAuthExchange(ctx.auth, start, est.binding, isSameHostAddress(est.address));
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
      await ctx.sessions.start(conn, inbox, request, {
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

function unexpectedRequest(msg: Message): FcpError {
  return new FcpError('FCP_ERR_PROTO_UNEXPECTED', `unexpected message type 0x${msg.type.toString(16)}`);
}
