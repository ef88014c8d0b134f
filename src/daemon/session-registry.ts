/** The daemon's live sessions, by SessionID, with the session limit. */
import { randomBytes } from 'node:crypto';
import type { FramedConn } from '../transport/framed-conn.js';
import { FcpError, SESSION_ID_SIZE } from '../protocol/index.js';
import type { TransferEngine } from '../transfer/engine.js';

export interface Session {
  readonly id: Uint8Array;
  readonly key: string;
  readonly kind: 'push' | 'pull';
  readonly engine: TransferEngine;
  readonly maxConnections: number;
  readonly conns: Set<FramedConn>;
  readonly startedMs: number;
  /** The session secret ATTACH proofs are checked with (spec/SECURITY.md §6.4); never sent. */
  readonly secret: Buffer;
  /** Whether the control connection was TLS; an ATTACH must match (spec/SECURITY.md §3.2). */
  readonly encrypted: boolean;
  /** Whether it came through the relay socket; an ATTACH must match (spec/SECURITY.md §14.4). */
  readonly carried: boolean;
  /** The client's address, for the handshake allowance of its extra connections. */
  readonly address: string;
}

/**
 * How many sessions that ended in good order are remembered, and for how long: a client may have extra
 * connections in flight when its session ends, and their ATTACH is then no problem worth a log line
 * (spec/SECURITY.md §10). Their secrets are kept only that long.
 */
const ENDED_KEPT = 64;
const ENDED_KEPT_MS = 30_000;

export interface EndedSession {
  readonly secret: Buffer;
  readonly encrypted: boolean;
  readonly carried: boolean;
  readonly endedMs: number;
}

export class SessionRegistry {
  readonly #sessions = new Map<string, Session>();
  /** Insertion order is end order: the first key is the oldest. */
  readonly #ended = new Map<string, EndedSession>();
  readonly #maxSessions: number;
  /** Sessions being set up (handshake done, engine not yet registered) count against the limit too. */
  #reserved = 0;

  constructor(maxSessions: number) {
    this.#maxSessions = maxSessions;
  }

  get size(): number {
    return this.#sessions.size;
  }

  all(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /** Claims a slot or throws FCP_ERR_SESSION_LIMIT. Pair with add() or unreserve(). */
  reserve(): void {
    if (this.#sessions.size + this.#reserved >= this.#maxSessions) {
      throw new FcpError('FCP_ERR_SESSION_LIMIT', `daemon is at its limit of ${this.#maxSessions} sessions`);
    }
    this.#reserved++;
  }

  unreserve(): void {
    this.#reserved--;
  }

  /** A fresh random SessionID: 128 bits from the CSPRNG, so ids cannot be guessed. */
  newId(): Uint8Array {
    return randomBytes(SESSION_ID_SIZE);
  }

  add(session: Omit<Session, 'key'>): Session {
    this.#reserved--;
    const full: Session = { ...session, key: keyOf(session.id) };
    this.#sessions.set(full.key, full);
    return full;
  }

  get(id: Uint8Array): Session | undefined {
    return this.#sessions.get(keyOf(id));
  }

  /** `well`: the session ended in good order; its late ATTACHes are then recognised for a while. */
  remove(session: Session, well: boolean): void {
    this.#sessions.delete(session.key);
    if (!well) return;
    this.#ended.set(session.key, {
      secret: session.secret,
      encrypted: session.encrypted,
      carried: session.carried,
      endedMs: Date.now(),
    });
    for (const key of this.#ended.keys()) {
      if (this.#ended.size <= ENDED_KEPT) break;
      this.#ended.delete(key);
    }
  }

  /** A session that ended in good order within ENDED_KEPT_MS, to check a late ATTACH against. */
  endedWell(id: Uint8Array): EndedSession | undefined {
    const ended = this.#ended.get(keyOf(id));
    if (ended === undefined || Date.now() - ended.endedMs > ENDED_KEPT_MS) return undefined;
    return ended;
  }
}

function keyOf(id: Uint8Array): string {
  return Buffer.from(id).toString('hex');
}
