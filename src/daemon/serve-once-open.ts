/**
 * The first half of `fcpd --serve-once` (spec/PROTOCOL.md §8): what its bootstrap line says must exist before
 * the line is written, and nothing more. A fresh one-time secret and in-memory host key, the TCP port (direct
 * mode) and the relay socket (carried mode) bound, the root checked, then the line. Connections that come
 * before serve-once.ts takes over wait, unread (waiting-server.ts). Kept to modules that load quickly:
 * cli/fcpd-launch.ts runs this before the rest of fcpd is compiled, so the line leaves ~30 ms of CPU sooner.
 */
import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { FcpError } from '../protocol/errors.js';
import { generateHostKey, type HostKey } from '../security/host-key.js';
import { resolveRootDir } from '../transfer/store/root-dir.js';
import { type BootstrapInfo, ONE_TIME_SECRET_SIZE } from '../transport/bootstrap-line.js';
import { listenHost, listenOnFirst } from './listen-address.js';
import { privateRunDir, relaySocketPath } from './serve-once-run-dir.js';
import { WaitingServer } from './waiting-server.js';

export interface ServeOnceOpenOptions {
  /** Addresses to try in turn (listen-address.ts), and the port (0: ephemeral). */
  readonly binds: readonly string[];
  readonly port: number;
  /** `--root`, checked to be a directory before the line. */
  readonly root?: string;
  /** Where XDG_RUNTIME_DIR and HOME are read, for the relay socket's directory; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** The package version, for the bootstrap line. */
  readonly version: string;
  /** A daemon stopped while it starts writes no line. */
  readonly stop: AbortSignal;
  /** Writes the bootstrap line. */
  readonly announce: (info: BootstrapInfo) => void;
}

/** A serve-once daemon bound and announced, before anything is served. */
export interface OpenedServeOnce {
  /** What the bootstrap line said (unless stopped first). */
  readonly info: BootstrapInfo;
  readonly hostKey: HostKey;
  /** The address bound, for the log. */
  readonly address: string;
  readonly tcp: WaitingServer;
  readonly relay: RelaySocket;
}

/** The relay socket, listening; its file is removed by remove(), or at exit if nothing did. */
export class RelaySocket {
  readonly path: string;
  readonly waiting = new WaitingServer();
  readonly #removeAtExit = () => unlinkQuietly(this.path);

  constructor(socketPath: string) {
    this.path = socketPath;
  }

  async listen(): Promise<void> {
    process.once('exit', this.#removeAtExit);
    await this.waiting.listen({ path: this.path });
  }

  /** After the server closed: server.close() unlinks the socket on most systems, a crash does not. */
  remove(): void {
    unlinkQuietly(this.path);
    process.off('exit', this.#removeAtExit);
  }
}

/**
 * Binds, checks the root, listens on the relay socket and announces. Only what the line says comes before
 * it: the client cannot dial before it has the line, and then needs at least a round trip more (the TCP
 * handshake, then its ClientHello) before the TLS context is used.
 */
export async function openServeOnce(opts: ServeOnceOpenOptions): Promise<OpenedServeOnce> {
  // The run directory's mkdir and lstat run on libuv's pool while this thread makes the key and cert.
  const runDir = privateRunDir(opts.env);
  const secret = randomBytes(ONE_TIME_SECRET_SIZE);
  const hostKey = generateHostKey();
  const socketPath = relaySocketPath(await runDir);
  const { result: tcp, address } = await listenOnFirst(opts.binds, opts.port, async (bind) => {
    const waiting = new WaitingServer({ noDelay: true });
    await waiting.listen({ port: opts.port, host: listenHost(bind, opts.port) });
    return waiting;
  });
  const relay = new RelaySocket(socketPath);
  try {
    // Before any announcement, so that a bad --root is said first.
    if (opts.root !== undefined) await resolveRootDir(opts.root);
    await relay.listen().catch((err: unknown) => {
      throw new FcpError('FCP_ERR_USAGE', `cannot listen on ${socketPath}: ${(err as Error).message}`, {
        cause: err,
        path: socketPath,
      });
    });
  } catch (err) {
    relay.remove();
    await tcp.close();
    throw err;
  }
  const info: BootstrapInfo = {
    port: boundPort(tcp),
    hostKey: hostKey.fingerprint,
    secret,
    relay: socketPath,
    version: opts.version,
  };
  if (!opts.stop.aborted) opts.announce(info);
  return { info, hostKey, address, tcp, relay };
}

function boundPort(tcp: WaitingServer): number {
  const addr = tcp.server.address();
  return typeof addr === 'object' && addr !== null ? addr.port : 0;
}

function unlinkQuietly(socketPath: string): void {
  try {
    unlinkSync(socketPath);
  } catch {
    // Already gone (net.Server removes it on close), which is what we want.
  }
}
