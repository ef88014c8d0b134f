/**
 * ATTACH: an extra connection joins its session once it proves the session secret over its own channel
 * (spec/SECURITY.md §6.4), and is handed to the session's engine.
 */
import { randomBytes } from 'node:crypto';
import type { FramedConn } from '../transport/framed-conn.js';
import { attachProven, HANDSHAKE_TIMEOUT_MS } from '../transport/hello.js';
import type { Inbox } from '../transport/inbox.js';
import { type AttachMsg, AUTH_NONCE_SIZE, FcpError, MsgType } from '../protocol/index.js';
import { attachAnswerProof, verifyAttachProof } from '../security/session-secret.js';
import type { SessionRegistry } from './session-registry.js';
import type { Established } from './sessions.js';

/**
 * A session's connections all come the same way: all TLS, all plaintext (spec/SECURITY.md §3.2), or all
 * through the relay socket (§14.4). A proof made for one kind of channel is never good on another.
 */
function sameWay(session: { encrypted: boolean; carried: boolean }, est: Established): boolean {
  return session.encrypted === est.encrypted && session.carried === est.carried;
}

export interface AttachContext {
  readonly registry: SessionRegistry;
  readonly log: (line: string) => void;
  readonly verbose: boolean;
}

/**
 * ATTACH -> ATTACH_CHALLENGE -> ATTACH_PROOF. Every id gets a challenge and every failure the same answer,
 * FCP_ERR_SESSION_UNKNOWN, so nothing tells a live session from a dead one (spec/SECURITY.md §6.1).
 */
export async function attachToSession(
  conn: FramedConn,
  inbox: Inbox,
  attach: AttachMsg,
  est: Established,
  ctx: AttachContext,
): Promise<void> {
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
  const session = ctx.registry.get(sessionId);
  const proven =
    session !== undefined &&
    !session.engine.finished &&
    sameWay(session, est) &&
    verifyAttachProof(session.secret, sessionId, nonce, est.binding, answer.proof);
  if (!proven) {
    const ended = ctx.registry.endedWell(sessionId);
    const late =
      ended !== undefined &&
      sameWay(ended, est) &&
      verifyAttachProof(ended.secret, sessionId, nonce, est.binding, answer.proof);
    if (!late) throw new FcpError('FCP_ERR_SESSION_UNKNOWN');
    // A client's extra connection that arrived just after its session ended in good order: the same
    // answer on the wire, but no problem worth a line without -v.
    if (ctx.verbose) ctx.log(`${conn.remote}: ATTACH to a session that has ended; closed`);
    conn.abort(new FcpError('FCP_ERR_SESSION_UNKNOWN', undefined, { fatal: true }));
    return;
  }
  est.authenticated();
  if (session.conns.size >= session.maxConnections) {
    throw new FcpError('FCP_ERR_SESSION_SOCKETS', `session allows ${session.maxConnections} connections`);
  }
  session.conns.add(conn);
  conn.onceClosed(() => session.conns.delete(conn));
  // Under AttachProven the answer proves the secret too, so a client whose connection reached someone
  // else (a swapped relay socket, spec/SECURITY.md §14.4) never sends it data.
  const proof = attachProven(conn)
    ? attachAnswerProof(session.secret, sessionId, nonce, est.binding, answer.proof)
    : undefined;
  conn.send({ type: MsgType.Attach, sessionId, ...(proof === undefined ? {} : { proof }) });
  session.engine.addConnection(conn);
  inbox.handOver(session.engine);
}
