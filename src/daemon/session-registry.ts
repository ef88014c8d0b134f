/** The daemon's live sessions, by SessionID, with the session limit. */
import { randomBytes } from 'node:crypto';
import type { FramedConn } from '../net/framed-conn.js';
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
  /** The client's address, for the handshake allowance of its extra connections. */
  readonly address: string;
}

export class SessionRegistry {
  readonly #sessions = new Map<string, Session>();
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

  remove(session: Session): void {
    this.#sessions.delete(session.key);
  }
}

function keyOf(id: Uint8Array): string {
  return Buffer.from(id).toString('hex');
}
