/**
 * A daemon with many connections in their handshake drops some new ones at random, at accept, without a word
 * (spec/SECURITY.md §10, sshd's MaxStartups). Each new try is a new draw, so a dropped connection is tried
 * again after a short random pause, many times, before the transfer's own retries (retry.ts, which wait
 * seconds) see the failure.
 */
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { toFcpError } from '../protocol/index.js';

/**
 * Tries per connection. Under the flood of spec/SECURITY.md §10 (the table filled by a burst from many
 * addresses), one try in five or more gets in, so 40 all fail about once in 10^4 runs.
 */
export const BUSY_TRIES = 40;
/** Pause before the next try: random in [MIN, MIN + SPREAD) ms, so dropped clients do not come back in step. */
const BUSY_PAUSE_MIN_MS = 50;
const BUSY_PAUSE_SPREAD_MS = 150;

/**
 * Runs `open` until it succeeds, fails otherwise than by a connection closed during its handshake
 * (FCP_ERR_NET_CLOSED), or BUSY_TRIES are used up. `onBusy` hears of the first drop.
 */
export async function openPastBusy<T>(open: () => Promise<T>, onBusy?: (text: string) => void): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await open();
    } catch (err) {
      const e = toFcpError(err);
      if (e.code !== 'FCP_ERR_NET_CLOSED' || n >= BUSY_TRIES) throw err;
      if (n === 1) onBusy?.(`${e.message}; trying again (up to ${BUSY_TRIES} times)`);
      await sleep(BUSY_PAUSE_MIN_MS + randomInt(BUSY_PAUSE_SPREAD_MS));
    }
  }
}
