/**
 * --limit on the receiving side (a pull): files are decided in walk order, at most as many at once as may
 * all still be sent (send-limit.ts); a later file waits its turn here, and one past the limit is answered
 * SKIP without being compared and reported as not sent. The sender (the daemon) takes that SKIP as it takes
 * any other: nothing is sent for it.
 */
import type { FileInfoMsg } from '../protocol/index.js';
import type { SendLimit } from './send-limit.js';

export interface LimitedDecisionsHooks {
  /** Decide this file now (the Decider's usual path); decided() must follow for its id. */
  decide(info: FileInfoMsg): void;
  /** Answer this file SKIP and report it as not sent. */
  leaveOut(info: FileInfoMsg): void;
}

export class LimitedDecisions {
  readonly #limit: SendLimit;
  readonly #hooks: LimitedDecisionsHooks;
  /** Files waiting for their turn, in walk order; bounded by the protocol's list window. */
  readonly #waiting: FileInfoMsg[] = [];
  /** Ids of the files being decided under the limit. */
  readonly #admitted = new Set<number>();
  #draining = false;

  constructor(limit: SendLimit, hooks: LimitedDecisionsHooks) {
    this.#limit = limit;
    this.#hooks = hooks;
  }

  /** A regular file of the list, in list order. */
  offer(info: FileInfoMsg): void {
    this.#waiting.push(info);
    this.#drain();
  }

  /** The file with this id was decided: its data is needed, or not. Ids the limit did not admit are ignored. */
  decided(id: number, needed: boolean): void {
    if (!this.#admitted.delete(id)) return;
    this.#limit.decided(needed);
    this.#drain();
  }

  /**
   * Gives the waiting files their turns, in order. A decision made on the spot calls decided() from inside
   * decide(): the flag keeps that from recursing once per waiting file.
   */
  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      for (let info = this.#waiting[0]; info !== undefined; info = this.#waiting[0]) {
        const turn = this.#limit.admit();
        if (turn === 'wait') return;
        this.#waiting.shift();
        if (turn === 'leave-out') {
          this.#hooks.leaveOut(info);
          continue;
        }
        this.#admitted.add(info.id);
        this.#hooks.decide(info);
      }
    } finally {
      this.#draining = false;
    }
  }
}
