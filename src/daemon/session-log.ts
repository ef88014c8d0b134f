/**
 * The daemon's log of a session: one line when it ends, saying who it was and what it moved (README); -v
 * adds a line at each step. Today it reads the session's stats; with an event stream it is one subscriber.
 */
import type { FcpError } from '../protocol/index.js';
import type { TransferStats } from '../transfer/stats.js';

/** How the client authenticated: `authenticated by KEY (no encryption)`. */
export function authenticatedBy(who: string, encrypted: boolean): string {
  return `authenticated by ${who}${encrypted ? '' : ' (no encryption)'}`;
}

/** What every line of the session starts with: `127.0.0.1:50312 authenticated by ..., push (dry run)`. */
export function sessionSummary(remote: string, authenticated: string, kind: string): string {
  return `${remote} ${authenticated}, ${kind}`;
}

/** The line written when the session ends: done or failed, with its counts and duration. */
export function sessionEndLine(summary: string, stats: TransferStats, err: FcpError | undefined): string {
  const secs = ((performance.now() - stats.startedMs) / 1000).toFixed(2);
  const what = `${stats.filesSent} sent, ${stats.filesSkipped} skipped, ${stats.filesFailed} failed, ${stats.bytesDone} bytes, ${secs} s`;
  if (err?.code === 'FCP_ERR_SESSION_CANCELLED' || err?.code === 'FCP_ERR_SESSION_DISCARDED')
    return `${summary}: session cancelled by the client: ${err.message} (${what})`;
  return err
    ? `${summary}: session failed: ${err.code}: ${err.message} (${what})`
    : `${summary}: session done (${what})`;
}
