/**
 * The receiver's own bounds on what a sender can make it hold (spec/SECURITY.md §10). Every per-session
 * table a peer can grow is either one of these or bounded by them: path reservations and pending decisions
 * belong to open entries, assemblies and piece writes to connections.
 */
import { FcpError, LIST_WINDOW } from '../protocol/index.js';

/**
 * File ids given up on that are remembered, so that their late DATA and FILE_END frames are dropped rather
 * than refused. A late frame is one the sender sent before it read our verdict; 8 times the list window of
 * newer failures arriving before it is far past what any sender's in-flight data allows.
 */
export const MAX_DROPPED_IDS = 8 * LIST_WINDOW;

/**
 * The list entries taken and not yet settled (FILE_READY SKIP or FAIL queued, or FILE_DONE): at most
 * LIST_WINDOW. The sender counts an entry open until it reads our answer, so its count is never below ours
 * and a sender that keeps its window never trips this (spec/PROTOCOL.md §5.1).
 *
 * Reading is not paused at the bound: the messages that settle open entries (DATA, FILE_END) come on the
 * same control connection, and stopping it would wait for them forever.
 */
export class OpenEntries {
  readonly #open = new Set<number>();

  get size(): number {
    return this.#open.size;
  }

  /** Entry `id` arrived; FCP_ERR_PROTO_WINDOW when the sender already had the whole window open. */
  admit(id: number): void {
    if (this.#open.size >= LIST_WINDOW) {
      throw new FcpError(
        'FCP_ERR_PROTO_WINDOW',
        `more than ${LIST_WINDOW} list entries unanswered (entry id ${id})`,
      );
    }
    this.#open.add(id);
  }

  /** Its final answer is queued. Settling twice, or an id never admitted, is harmless. */
  settle(id: number): void {
    this.#open.delete(id);
  }
}

/** A set that keeps only its `capacity` newest members (insertion order). */
export class RecentIds {
  readonly #ids = new Set<number>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  add(id: number): void {
    this.#ids.add(id);
    if (this.#ids.size <= this.#capacity) return;
    const oldest = this.#ids.values().next();
    if (oldest.done !== true) this.#ids.delete(oldest.value);
  }

  has(id: number): boolean {
    return this.#ids.has(id);
  }
}
