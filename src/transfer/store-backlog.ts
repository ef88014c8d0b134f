/**
 * The session's pieces handed to the sink and not yet stored, bounded across all its connections.
 *
 * Why: each such piece holds a piece buffer (1 MiB) until its write finishes, and the bound per connection
 * (receive-assemble.ts) alone lets memory grow with the connection count: a pinned 1 GiB push with `-n 32`
 * peaked the daemon at 166-171 MiB RSS against 117 with `-n 8`, ~2 MiB per connection. Past MAX_STORING
 * pieces every connection of the session stops being read; they read again once the stores are down to half
 * of it. Stores finish by themselves (they wait on the disk, never on the network), so this cannot deadlock.
 */
import type { FramedConn } from '../transport/framed-conn.js';

/** Pieces being stored, session-wide, before every connection stops being read. */
export const MAX_STORING = 8;

export class StoreBacklog {
  readonly #conns: () => Iterable<FramedConn>;
  #storing = 0;
  #paused = false;

  /** `conns`: the session's connections as they are when the bound is reached or left. */
  constructor(conns: () => Iterable<FramedConn>) {
    this.#conns = conns;
  }

  /** Pieces being stored now. */
  get storing(): number {
    return this.#storing;
  }

  /** A connection joined: it starts paused while the session is over the bound. */
  connectionAdded(conn: FramedConn): void {
    if (this.#paused) conn.pause('stores');
  }

  /** A piece went to the sink. */
  started(): void {
    this.#storing++;
    if (this.#paused || this.#storing < MAX_STORING) return;
    this.#paused = true;
    for (const conn of this.#conns()) conn.pause('stores');
  }

  /** A piece's store finished (or failed). */
  finished(): void {
    this.#storing--;
    if (!this.#paused || this.#storing > MAX_STORING / 2) return;
    this.#paused = false;
    for (const conn of this.#conns()) conn.resume('stores');
  }
}
