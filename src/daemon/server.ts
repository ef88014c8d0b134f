/**
 * fcpd's listener: accepts connections, runs each through the handshake state machine
 *   AWAIT_HELLO -> AWAIT_REQUEST -> (PUSH | PULL -> new session) | (ATTACH -> joins a session)
 * and hands it to the session's transfer engine. Every failure is confined to its connection or session;
 * the listener keeps serving (spec/PROTOCOL.md §3).
 */
import { lstat } from 'node:fs/promises';
import net from 'node:net';
import { FramedConn } from '../net/framed-conn.js';
import { HANDSHAKE_TIMEOUT_MS, negotiateVersion, ourHello } from '../net/hello.js';
import { Inbox } from '../net/inbox.js';
import {
  FcpError,
  type Message,
  MsgType,
  PIECE_SIZE,
  type PullMsg,
  type PushMsg,
  TransferFlag,
  toFcpError,
} from '../protocol/index.js';
import { type Hasher, loadHasher } from '../transfer/checksum.js';
import { ConfinedRoot } from '../transfer/confined-root.js';
import { resolveServedDestination } from '../transfer/destination.js';
import type { TransferEngine } from '../transfer/engine.js';
import { Receiver } from '../transfer/receiver.js';
import { createSelector } from '../transfer/select.js';
import { Sender } from '../transfer/sender.js';
import { expandRemoteSources } from '../transfer/source-spec.js';
import { createStats } from '../transfer/stats.js';
import { ROOT_ENTRY } from '../transfer/wire-path.js';
import type { PartialRegistry } from './partials.js';
import { type Session, SessionRegistry } from './session-registry.js';

export interface ServerOptions {
  port: number;
  bind: string;
  /** The directory tree this daemon serves. */
  root: string;
  maxSessions: number;
  /** Connections one session may hold, the first included. */
  maxConnections: number;
  log: (line: string) => void;
  verbose: boolean;
  /** Where kept partial files are recorded so stale ones can be swept (omit to keep no record). */
  partials?: PartialRegistry;
  /** Drop a connection that hears nothing for this long (tests shorten it). */
  idleTimeoutMs?: number;
}

export class FcpServer {
  readonly #opts: ServerOptions;
  readonly #sessions: SessionRegistry;
  readonly #sockets = new Set<net.Socket>();
  #server: net.Server | undefined;
  #hasher: Hasher | undefined;
  #root: ConfinedRoot | undefined;
  #closing = false;

  constructor(opts: ServerOptions) {
    this.#opts = opts;
    this.#sessions = new SessionRegistry(opts.maxSessions);
  }

  /** Listens; resolves with the bound port (useful with port 0). */
  async listen(): Promise<number> {
    this.#hasher = await loadHasher();
    this.#root = await ConfinedRoot.open(this.#opts.root);
    const server = net.createServer({ noDelay: true }, (socket) => this.#serverOnConnection(socket));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#opts.port, this.#opts.bind, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.#opts.log(`listener error: ${err.message}`));
    const addr = server.address();
    return typeof addr === 'object' && addr !== null ? addr.port : this.#opts.port;
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  get rootPath(): string {
    return this.#root?.path ?? this.#opts.root;
  }

  /**
   * Stops accepting; running sessions get `graceMs` to finish, then every socket is closed.
   * Resolves once the listener and all connections are gone.
   */
  async close(graceMs = 0): Promise<void> {
    this.#closing = true;
    const server = this.#server;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const deadline = Date.now() + graceMs;
    while (this.#sessions.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const session of this.#sessions.all()) {
      session.engine.fail(new FcpError('FCP_ERR_SESSION_SHUTDOWN'));
    }
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  #serverOnConnection(socket: net.Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    // Errors are reported through FramedConn; this keeps an early reset from becoming an uncaught error.
    socket.on('error', () => {});
    const conn = new FramedConn(socket, this.#hasher!);
    this.#handshake(conn).catch((err) => {
      const e = toFcpError(err);
      if (this.#opts.verbose || e.code !== 'FCP_ERR_NET_CLOSED')
        this.#opts.log(`${conn.remote}: ${e.code}: ${e.message}`);
      conn.abort(e.fatal ? e : new FcpError(e.code, e.message, { fatal: true }));
    });
  }

  async #handshake(conn: FramedConn): Promise<void> {
    const inbox = new Inbox(conn);
    const hello = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'HELLO');
    if (hello.type !== MsgType.Hello)
      throw new FcpError('FCP_ERR_PROTO_NOT_FCP', 'first message is not HELLO');
    const version = negotiateVersion(hello);
    conn.send({ ...ourHello(), versionMin: version, versionMax: version });
    const request = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'request');
    switch (request.type) {
      case MsgType.Push:
      case MsgType.Pull:
        await this.#startSession(conn, inbox, request);
        return;
      case MsgType.Attach:
        this.#attach(conn, inbox, request.sessionId);
        return;
      default:
        throw unexpectedRequest(request);
    }
  }

  async #startSession(conn: FramedConn, inbox: Inbox, request: PushMsg | PullMsg): Promise<void> {
    this.#sessions.reserve();
    let registered = false;
    try {
      const connections = Math.min(Math.max(request.connections, 1), this.#opts.maxConnections);
      const stats = createStats(performance.now());
      const label = `${conn.remote} ${request.type === MsgType.Push ? 'push' : 'pull'}`;
      const onWarning = (err: FcpError) => {
        if (this.#opts.verbose) this.#opts.log(`${label}: ${err.path ?? ''}: ${err.code}: ${err.message}`);
      };
      const id = this.#sessions.newId();
      let engine: TransferEngine;
      let sessionFlags = 0;
      let startSender: (() => void) | undefined;
      if (request.type === MsgType.Push) {
        const singleFile = (request.flags & TransferFlag.SingleFile) !== 0;
        const dest = await resolveServedDestination(this.#root!, request.dest, singleFile);
        engine = new Receiver({
          hasher: this.#hasher!,
          control: conn,
          stats,
          onWarning,
          root: dest.root,
          singleName: dest.singleName,
          checksum: (request.flags & TransferFlag.Checksum) !== 0,
          idleTimeoutMs: this.#opts.idleTimeoutMs,
          onPartialKept: (temp, sidecar) => this.#opts.partials?.record(temp, sidecar),
        });
        sessionFlags = request.flags & TransferFlag.Checksum;
      } else {
        // --regex never crosses the wire: a client-chosen regex could backtrack for hours on the daemon's
        // event loop, so the pulling client applies it to the announced list instead (spec/SECURITY.md).
        const selector = createSelector({ include: request.include, exclude: request.exclude });
        const sources = await expandRemoteSources(this.#root!, request.source, onWarning);
        const single =
          sources.length === 1 && sources[0]!.topRel !== ROOT_ENTRY && !(await isDir(sources[0]!.abs));
        sessionFlags = (request.flags & TransferFlag.Checksum) | (single ? TransferFlag.SingleFile : 0);
        const sender = new Sender({
          hasher: this.#hasher!,
          control: conn,
          stats,
          onWarning,
          sources,
          selector,
          checksum: (request.flags & TransferFlag.Checksum) !== 0,
          idleTimeoutMs: this.#opts.idleTimeoutMs,
        });
        engine = sender;
        startSender = () => sender.start();
      }
      const session = this.#sessions.add({
        id,
        kind: request.type === MsgType.Push ? 'push' : 'pull',
        engine,
        maxConnections: connections,
        conns: new Set([conn]),
        startedMs: stats.startedMs,
      });
      registered = true;
      inbox.handOver(engine);
      conn.send({
        type: MsgType.Session,
        sessionId: id,
        flags: sessionFlags,
        maxConnections: connections,
        pieceSize: PIECE_SIZE,
      });
      startSender?.();
      this.#opts.log(`${label}: session started (${connections} connections allowed)`);
      engine.done.then(
        () => this.#endSession(session, label, stats, undefined),
        (err: unknown) => this.#endSession(session, label, stats, toFcpError(err)),
      );
    } finally {
      if (!registered) this.#sessions.unreserve();
    }
  }

  #endSession(
    session: Session,
    label: string,
    stats: ReturnType<typeof createStats>,
    err: FcpError | undefined,
  ): void {
    this.#sessions.remove(session);
    const secs = ((performance.now() - stats.startedMs) / 1000).toFixed(2);
    const what = `${stats.filesSent} sent, ${stats.filesSkipped} skipped, ${stats.filesFailed} failed, ${stats.bytesDone} bytes, ${secs} s`;
    this.#opts.log(
      err
        ? `${label}: session failed: ${err.code}: ${err.message} (${what})`
        : `${label}: session done (${what})`,
    );
    // The client closes first after DONE; make sure a peer that never does cannot keep sockets forever.
    setTimeout(() => {
      for (const c of session.conns) c.destroy();
    }, 5000).unref();
  }

  #attach(conn: FramedConn, inbox: Inbox, sessionId: Uint8Array): void {
    const session = this.#sessions.get(sessionId);
    if (session === undefined || session.engine.finished) throw new FcpError('FCP_ERR_SESSION_UNKNOWN');
    if (session.conns.size >= session.maxConnections) {
      throw new FcpError('FCP_ERR_SESSION_SOCKETS', `session allows ${session.maxConnections} connections`);
    }
    session.conns.add(conn);
    conn.socket.once('close', () => session.conns.delete(conn));
    conn.send({ type: MsgType.Attach, sessionId });
    session.engine.addConnection(conn);
    inbox.handOver(session.engine);
  }
}

function unexpectedRequest(msg: Message): FcpError {
  return new FcpError(
    'FCP_ERR_PROTO_UNEXPECTED',
    `expected PUSH, PULL or ATTACH, got type 0x${msg.type.toString(16)}`,
  );
}

async function isDir(abs: string): Promise<boolean> {
  try {
    return (await lstat(abs)).isDirectory();
  } catch {
    return false;
  }
}
