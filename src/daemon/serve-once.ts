/**
 * `fcpd --serve-once`, the daemon fcp starts over ssh (spec/PROTOCOL.md §8, spec/SECURITY.md §14): an
 * ephemeral in-memory host key, a fresh 128-bit one-time secret, a TCP listener (direct mode) and a relay
 * socket (carried mode), both served by one FcpServer that grants exactly one session. It ends when that
 * session ends, when its stdin ends (ssh went away: the session is aborted, partial files kept), after an
 * idle time with no login, or when stop() is called (a signal), and leaves no socket or file behind.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { FcpError, toFcpError } from '../protocol/index.js';
import { OneTimeLogin } from '../security/daemon-auth.js';
import { generateHostKey } from '../security/host-key.js';
import { type BootstrapInfo, ONE_TIME_SECRET_SIZE } from '../transport/bootstrap-line.js';
import { listenOnFirst } from './listen-address.js';
import { FcpServer } from './server.js';
import { RelayListener } from './serve-once-relay.js';
import { privateRunDir, relaySocketPath } from './serve-once-run-dir.js';

/** How long a serve-once daemon waits for its one login before it exits. */
export const SERVE_ONCE_IDLE_MS = 30_000;

export interface ServeOnceOptions {
  /** Addresses to try in turn (listen-address.ts), and the port (0: ephemeral). */
  readonly binds: readonly string[];
  readonly port: number;
  /** `--root`; without it, what the account may open, relative paths from `home`. */
  readonly root?: string;
  readonly home: string;
  readonly maxConnections: number;
  readonly log: (line: string) => void;
  readonly verbose: boolean;
  /** ssh's channel: its end means the client is gone. */
  readonly stdin: Readable;
  /** The package version, for the bootstrap line. */
  readonly version: string;
  /** Default SERVE_ONCE_IDLE_MS. */
  readonly idleMs?: number;
  /** Where XDG_RUNTIME_DIR and HOME are read, for the relay socket's directory; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Writes the bootstrap line. Called as soon as the port, the host key and the secret exist; the rest
   * (hasher, TLS context, sessions) is loaded right after it, while the line travels to the
   * client, and a connection that comes first waits for it.
   */
  readonly announce: (info: BootstrapInfo) => void;
  /**
   * Ends the daemon as a signal would (a running session is aborted); it may fire before the line, and is
   * wired before it so that a signal that follows the line at once is heard.
   */
  readonly stop: AbortSignal;
  /** Tests only: wait this long after announce() before loading the rest, so connections come first. */
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
 * Binds, listens on the relay socket, announces, then loads the rest and serves until one of the ends above.
 * Only what the line says comes before it: the client cannot dial before it has the line, and then needs at
 * least a round trip more (the TCP handshake, then its ClientHello) before the TLS context is used.
 */
export async function startServeOnce(opts: ServeOnceOptions): Promise<ServeOnce> {
  // The run directory's mkdir and lstat run on libuv's pool while this thread makes the key and cert.
  const runDir = privateRunDir(opts.env);
  const secret = randomBytes(ONE_TIME_SECRET_SIZE);
  const login = new OneTimeLogin(secret);
  const hostKey = generateHostKey();
  const socketPath = relaySocketPath(await runDir);
  let end: (how: ServeOnceEnd) => void = () => {};
  const ending = new Promise<ServeOnceEnd>((resolve) => {
    end = resolve;
  });
  const { result, address } = await listenOnFirst(opts.binds, opts.port, async (bind) => {
    const s = new FcpServer({
      port: opts.port,
      bind,
      ...(opts.root === undefined ? { home: opts.home } : { root: opts.root }),
      maxSessions: 1,
      maxConnections: opts.maxConnections,
      log: opts.log,
      verbose: opts.verbose,
      localToken: false,
      hostKey,
      oneTime: login,
      onSessionEnd: (error) => end({ reason: 'session', error }),
    });
    return { server: s, port: await s.bind() };
  });
  const { server, port } = result;
  const relay = new RelayListener(socketPath, (channel, arrival) => server.serveChannel(channel, arrival));
  try {
    await relay.listen();
  } catch (err) {
    await server.close();
    throw new FcpError('FCP_ERR_USAGE', `cannot listen on ${socketPath}: ${(err as Error).message}`, {
      cause: err,
      path: socketPath,
    });
  }
  const info: BootstrapInfo = {
    port,
    hostKey: hostKey.fingerprint,
    secret,
    relay: socketPath,
    version: opts.version,
  };
  const unwatch = watchEnds(opts, login, end);
  if (opts.stop.aborted) {
    // Stopped while starting: no line for a daemon that will not serve.
    end({ reason: 'stopped' });
  } else {
    opts.stop.addEventListener('abort', () => end({ reason: 'stopped' }), { once: true });
    opts.announce(info);
    void serveAfter(opts.deferMs, server).catch((err: unknown) =>
      end({ reason: 'start', error: toFcpError(err) }),
    );
  }
  const ended = ending.then(async (how) => {
    unwatch();
    await Promise.all([server.close(), relay.close()]);
    return how;
  });
  return { info, address, ended };
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
