/**
 * fcp --limit N: at most N regular files have their data sent, the first N that need it in walk order; the
 * rest are "not sent". Whichever end the client is, it applies the limit as entries are decided: the sender
 * (push) holds back its next file while the files it announced might still all be needed, and the receiver
 * (pull) holds back deciding one the same way; a file that can no longer be sent is left out (README
 * "Options"). Directories and links are not counted: they carry no data.
 *
 * Walk order holds because at most `limit - wanted` files are ever being decided at once: each of them may
 * be needed without passing the limit, and a later file waits until an earlier one is found not needed.
 */

/** What to do with the next file in walk order. */
export type LimitVerdict = 'go' | 'wait' | 'leave-out';

export class SendLimit {
  readonly #limit: number;
  #wanted = 0;
  #deciding = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** The next file's turn: 'go' counts it as being decided until decided() is called for it. */
  admit(): LimitVerdict {
    if (this.#wanted + this.#deciding < this.#limit) {
      this.#deciding++;
      return 'go';
    }
    return this.#deciding > 0 ? 'wait' : 'leave-out';
  }

  /** A file admitted by 'go' was decided: its data is needed (it takes one of the N), or not. */
  decided(needed: boolean): void {
    this.#deciding--;
    if (needed) this.#wanted++;
  }
}
