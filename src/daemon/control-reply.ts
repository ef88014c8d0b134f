/**
 * Checks `fcpd status`'s reply before anything uses it. Root may ask another account's daemon
 * (`fcpd status --user NAME`), and NAME can put any program behind that socket: every field is checked
 * for its type, and a reply that is not one is a single FCP_ERR_PROTO_MALFORMED naming the socket.
 */
import { FcpError } from '../protocol/index.js';

/** One session fcpd serves now, as `fcpd status --json` shows it. */
export interface SessionStatus {
  /** Who logged in: the key's comment or fingerprint, or "local token". */
  who: string;
  /** The client's address and port. */
  from: string;
  direction: 'push' | 'pull';
  bytes_done: number;
  bytes_total: number;
  files_done: number;
  files_total: number;
  /** Bytes per second, averaged since the session started. */
  rate: number;
  connections: number;
  started_at: string;
}

export interface ControlReply {
  version: number;
  sessions: SessionStatus[];
}

const STRINGS = ['who', 'from', 'started_at'] as const;
const NUMBERS = ['bytes_done', 'bytes_total', 'files_done', 'files_total', 'rate', 'connections'] as const;

/** Why `s` is not a SessionStatus, or undefined when it is one. */
function sessionProblem(s: unknown): string | undefined {
  if (typeof s !== 'object' || s === null) return 'a session is not an object';
  const o = s as Record<string, unknown>;
  for (const k of STRINGS) if (typeof o[k] !== 'string') return `${k} is not a string`;
  for (const k of NUMBERS)
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) return `${k} is not a number`;
  if (o['direction'] !== 'push' && o['direction'] !== 'pull') return 'direction is neither push nor pull';
  return undefined;
}

/** The reply `text` read on `socketPath`, checked; FCP_ERR_PROTO_MALFORMED naming the socket when it is not one. */
export function parseControlReply(text: string, socketPath: string): ControlReply {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new FcpError('FCP_ERR_PROTO_MALFORMED', `bad answer on ${socketPath}: not JSON`, { cause: err });
  }
  const sessions = (parsed as { sessions?: unknown } | null)?.sessions;
  const why = !Array.isArray(sessions)
    ? 'no sessions in the reply'
    : sessions.map(sessionProblem).find((p) => p !== undefined);
  if (why !== undefined) throw new FcpError('FCP_ERR_PROTO_MALFORMED', `bad answer on ${socketPath}: ${why}`);
  return parsed as ControlReply;
}
