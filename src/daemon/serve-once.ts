/**
 * `fcpd --serve-once`, the daemon fcp starts over ssh (spec/PROTOCOL.md §8, spec/SECURITY.md §14): an
 * ephemeral in-memory host key, a fresh 128-bit one-time secret, a TCP listener (direct mode) and a relay
 * socket (carried mode), both served by one FcpServer that grants exactly one session. It ends when that
 * session ends, when its stdin ends (ssh went away: the session is aborted, partial files kept), after an
 * idle time with no login, or when stop() is called (a signal), and leaves no socket or file behind.
 */
import type { Readable } from 'node:stream';
import { type FcpError, toFcpError } from '../protocol/errors.js';
import { OneTimeLogin } from '../security/daemon-auth.js';
import type { BootstrapInfo } from '../transport/bootstrap-line.js';
import { FcpServer } from './server.js';
import type { OpenedServeOnce } from './serve-once-open.js';
import { RelayListener } from './serve-once-relay.js';

/** How long a serve-once daemon waits for its one login before it exits. */
export const SERVE_ONCE_IDLE_MS = 30_000;

/** What serving needs beside what openServeOnce() made (serve-once-open.ts). */
export interface ServeOnceOptions {
  /** `--root`; without it, what the account may open, relative paths from `home`. */
  readonly root?: string;
  readonly home: string;
  readonly maxConnections: number;
  readonly log: (line: string) => void;
  readonly verbose: boolean;
  /** ssh's channel: its end means the client is gone. */
  readonly stdin: Readable;
  /** Default SERVE_ONCE_IDLE_MS. */
  readonly idleMs?: number;
  /**
   * Ends the daemon as a signal would (a running session is aborted); the same signal openServeOnce() was
   * given, wired before the line so that a signal that follows the line at once is heard.
   */
  readonly stop: AbortSignal;
  /** Tests only: wait this long before loading the rest, so connections come first. */
  readonly deferMs?: number;
}

/** Why a serve-once daemon ended. */
export type ServeOnceEnd =
  | { readonly reason: 'session'; readonly error: FcpError | undefined }
  /** What serving needs could not be loaded after the line was written. */
  | { readonly reason: 'start'; readonly error: FcpError }
  | { readonly reason: 'idle' | 'stdin' | 'stopped' };

export interface ServeOnce {
  /** What the bootstrap line says. */
  readonly info: BootstrapInfo;
  /** The address bound, for the log. */
  readonly address: string;
  /** Resolves once everything is closed and the socket removed. */
  readonly ended: Promise<ServeOnceEnd>;
}

/**
 * Serves the daemon that openServeOnce() bound and announced (serve-once-open.ts): loads the rest (hasher,
 * TLS context, sessions) while the line travels to the client, and serves until one of the ends above.
 * Connections that come before serving is ready wait for it.
 */
export async function startServeOnce(open: OpenedServeOnce, opts: ServeOnceOptions): Promise<ServeOnce> {
  const login = new OneTimeLogin(open.info.secret);
  let end: (how: ServeOnceEnd) => void = () => {};
  const ending = new Promise<ServeOnceEnd>((resolve) => {
    end = resolve;
  });
  const server = new FcpServer({
    port: open.info.port,
    bind: open.address,
    ...(opts.root === undefined ? { home: opts.home } : { root: opts.root }),
    maxSessions: 1,
    maxConnections: opts.maxConnections,
    log: opts.log,
    verbose: opts.verbose,
    localToken: false,
    hostKey: open.hostKey,
    oneTime: login,
    onSessionEnd: (error) => end({ reason: 'session', error }),
  });
  try {
    await server.adopt(open.tcp);
  } catch (err) {
    open.relay.remove();
    throw err;
  }
  const relay = new RelayListener(open.relay, (channel, arrival) => server.serveChannel(channel, arrival));
  const unwatch = watchEnds(opts, login, end);
  if (opts.stop.aborted) {
    // Stopped while starting (before the line, which then was not written, or right after it).
    end({ reason: 'stopped' });
  } else {
    opts.stop.addEventListener('abort', () => end({ reason: 'stopped' }), { once: true });
    void serveAfter(opts.deferMs, server).catch((err: unknown) =>
      end({ reason: 'start', error: toFcpError(err) }),
    );
  }
  const ended = ending.then(async (how) => {
    unwatch();
    await Promise.all([server.close(), relay.close()]);
    return how;
  });
  return { info: open.info, address: open.address, ended };
}

/** FcpServer.serve(), after `deferMs` when a test asks for it. */
async function serveAfter(deferMs: number | undefined, server: FcpServer): Promise<void> {
  if (deferMs !== undefined) await new Promise((resolve) => setTimeout(resolve, deferMs));
  await server.serve();
}

/**
 * stdin's end (ssh gone) and the idle timer. Only the first end counts: the rest resolve nothing. The timer
 * looks at the login, not at sessions: once the secret is spent, the session's own end is what ends us.
 */
function watchEnds(
  opts: ServeOnceOptions,
  login: OneTimeLogin,
  end: (how: ServeOnceEnd) => void,
): () => void {
  const idle = setTimeout(() => {
    if (!login.spent) end({ reason: 'idle' });
  }, opts.idleMs ?? SERVE_ONCE_IDLE_MS);
  const stdinOnEnd = () => end({ reason: 'stdin' });
  opts.stdin.once('end', stdinOnEnd);
  opts.stdin.once('close', stdinOnEnd);
  opts.stdin.once('error', stdinOnEnd);
  // Read and drop whatever comes: a stdin nobody reads never reports its end.
  opts.stdin.resume();
  return () => {
    clearTimeout(idle);
    opts.stdin.off('end', stdinOnEnd);
    opts.stdin.off('close', stdinOnEnd);
    opts.stdin.off('error', stdinOnEnd);
    opts.stdin.pause();
  };
}
