/**
 * Re-running a transfer after the whole session was lost (every connection cut, the daemon restarted).
 * Each attempt resumes: finished files are skipped by the quick check, partial ones keep their verified
 * pieces. Waits grow exponentially from --retry-wait, capped at MAX_WAIT_MS.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type FcpError, toFcpError } from '../protocol/index.js';

const MAX_WAIT_MS = 30_000;

/** Failures of the link or the daemon's process, not of the request: worth trying again. */
const RETRYABLE = new Set([
  'FCP_ERR_NET_CLOSED',
  'FCP_ERR_NET_TIMEOUT',
  'FCP_ERR_PROTO_TRUNCATED',
  'FCP_ERR_PROTO_BAD_CHECKSUM',
  'FCP_ERR_SESSION_SHUTDOWN',
]);

export interface RetryOptions {
  retries: number;
  retryWaitMs: number;
  /** Told before each wait: the error, the attempt about to start (2..), and the wait. */
  onRetry: (err: FcpError, nextAttempt: number, waitMs: number) => void;
}

/**
 * Runs `attempt` until it succeeds, fails for a reason a retry cannot fix, or retries run out. A refused
 * connection is retried only once an earlier attempt had connected (a daemon restarting), so a wrong host
 * or port still fails at once.
 */
export async function withRetries(attempt: (n: number) => Promise<void>, opts: RetryOptions): Promise<void> {
  let connectedOnce = false;
  for (let n = 1; ; n++) {
    try {
      await attempt(n);
      return;
    } catch (err) {
      const e = toFcpError(err);
      if (e.code !== 'FCP_ERR_NET_CONNECT') connectedOnce = true;
      const retryable = RETRYABLE.has(e.code) || (e.code === 'FCP_ERR_NET_CONNECT' && connectedOnce);
      if (!retryable || n > opts.retries) throw e;
      const waitMs = Math.min(opts.retryWaitMs * 2 ** (n - 1), MAX_WAIT_MS);
      opts.onRetry(e, n + 1, waitMs);
      await sleep(waitMs);
    }
  }
}
