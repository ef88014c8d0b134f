/**
 * How many list entries fcp's sender keeps unanswered once SESSION granted the list: between
 * SEND_WINDOW_FLOOR and the protocol's LIST_WINDOW, grown by each entry the receiver settles without data
 * (SKIP, FAIL) and shrunk by each file it asks the data of (spec/PROTOCOL.md §5.1).
 *
 * Why: every entry the receiver NEEDs holds state on both sides until its FILE_DONE (a file in progress
 * there, its piece hashes here), and with the whole LIST_WINDOW open a first copy of /usr/share kept ~7,800
 * files in progress at once on the receiver (heap snapshot), their objects promoted to the old generation.
 * A re-run whose entries are all skipped opens the window to LIST_WINDOW within a few round trips, where
 * each answer costs nothing to hold.
 */
import { LIST_WINDOW } from '../protocol/index.js';

/**
 * The window's floor: on a 40 ms round trip, 2048 open files still let 50,000 small files a second through,
 * several times what one session moves; and a whole list before SESSION (1024 entries) fits in it.
 */
export const SEND_WINDOW_FLOOR = 2048;

export class SendWindow {
  #size = SEND_WINDOW_FLOOR;

  /** Entries that may be unanswered now; never above LIST_WINDOW. */
  get size(): number {
    return this.#size;
  }

  /** An entry was settled with no data to send (skipped, failed, or a directory placed). */
  settledWithoutData(): void {
    if (this.#size < LIST_WINDOW) this.#size++;
  }

  /** The receiver wants a file's data: that entry stays open, with state on both sides, until FILE_DONE. */
  dataWanted(): void {
    if (this.#size > SEND_WINDOW_FLOOR) this.#size--;
  }
}
