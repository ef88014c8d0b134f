/**
 * Sessions, from an accepted login proof to their end: one is granted (the session limit, its connection
 * allowance), its push or pull engine built and SESSION sent; when the engine is done it is removed, logged,
 * and its sockets closed. Also the daemon's shutdown of what still runs, and giving memory back when idle.
 */
import type { Admission } from './admission.js';
import type { SessionStatus } from './control-socket.js';
import { releaseIdleMemory } from './idle-memory.js';
import type { PartialRegistry } from './partials.js';
import { openPull } from './pull-handler.js';
import { openPush } from './push-handler.js';
import type { HandlerContext } from './session-engine.js';
import { authenticatedBy, sessionEndLine, sessionSummary } from './session-log.js';
import type { Session, SessionRegistry } from './session-registry.js';
import type { FramedConn } from '../transport/framed-conn.js';
import type { Inbox } from '../transport/inbox.js';
import type { RateLimit } from '../transport/rate-limit.js';
import {
  FcpError,
  MsgType,
  PIECE_SIZE,
  type PullMsg,
  type PushMsg,
  toFcpError,
  TransferFlag,
} from '../protocol/index.js';
import type { Hasher } from '../transfer/checksum.js';
import { problemsTo } from '../transfer/events.js';
import type { ServedTree } from '../transfer/store/served-tree.js';
import { createStats, type TransferStats } from '../transfer/stats.js';

/** How long a daemon must have had no session before it gives the memory of its transfers back. */
const IDLE_RELEASE_MS = 1000;

/** What the handshake of one connection established, passed on to its session. */
export interface Established {
  readonly encrypted: boolean;
  /** Came through the relay socket (fcpd --stdio), not TCP: ATTACH must come the same way. */
  readonly carried: boolean;
  readonly binding: Uint8Array;
  readonly address: string;
  /** The client's HELLO offered ListBeforeSession: a push list may come between its proofs. */
  readonly listBeforeSession: boolean;
  /** Releases the connection's handshake slot and stops its deadline: call once authenticated. */
  readonly authenticated: () => void;
}

/** A login the daemon accepted: the session secret its ATTACH proofs use, and who logged in. */
export interface Granted extends Established {
  readonly secret: Buffer;
  readonly who: string;
}

export interface SessionOptions {
  /** Connections one session may hold, the first included. */
  readonly maxConnections: number;
  readonly log: (line: string) => void;
  readonly verbose: boolean;
  readonly partials?: PartialRegistry;
  readonly idleTimeoutMs?: number;
  /** fcpd --bwlimit: one limiter for every session's file data, both directions (none: no cap). */
  readonly rateLimit?: RateLimit;
  /** fcpd --fsync: every push is synced, whatever its client asked (PROTOCOL.md §6.3). */
  readonly fsync?: boolean;
  /**
   * A session ended, or a granted login could not start one; called once its connections are closed
   * (so its last frames have left). fcpd --serve-once exits here.
   */
  readonly onSessionEnd?: (err: FcpError | undefined) => void;
}

export class Sessions {
  readonly #opts: SessionOptions;
  readonly #registry: SessionRegistry;
  readonly #admission: Admission;
  readonly #hasher: Hasher;
  readonly #served: ServedTree;
  #idleRelease: NodeJS.Timeout | undefined;
  /** What `fcpd status` shows of each running session (control-socket.ts). */
  readonly #shown = new Map<Session, { who: string; from: string; stats: TransferStats; startedAt: Date }>();

  constructor(
    opts: SessionOptions,
    registry: SessionRegistry,
    admission: Admission,
    engine: { hasher: Hasher; served: ServedTree },
  ) {
    this.#opts = opts;
    this.#registry = registry;
    this.#admission = admission;
    this.#hasher = engine.hasher;
    this.#served = engine.served;
  }

  /**
   * A session is one line in the log (README), written when it ends and saying who it was; -v adds a line
   * at each step. One that cannot start gets its one line here.
   */
  async start(conn: FramedConn, inbox: Inbox, request: PushMsg | PullMsg, auth: Granted): Promise<void> {
    const who = authenticatedBy(auth.who, auth.encrypted);
    const kind = request.type === MsgType.Push ? 'push' : 'pull';
    // A dry run's counts are what it would have moved (PROTOCOL.md §5.6): the log says so.
    const dryRun = (request.flags & TransferFlag.DryRun) !== 0;
    const summary = sessionSummary(conn.remote, who, dryRun ? `${kind} (dry run)` : kind);
    if (this.#opts.verbose) this.#opts.log(`${conn.remote}: ${who}`);
    try {
      await this.#run(conn, inbox, request, auth, summary);
    } catch (err) {
      const e = toFcpError(err);
      this.#opts.log(`${summary}: session refused: ${e.code}: ${e.message}`);
      conn.abort(e.fatal ? e : new FcpError(e.code, e.message, { fatal: true }));
      this.#notifyEnd([conn], e);
    }
  }

  /** The sessions served now, for `fcpd status`: figures from each one's stats (the reduction of its events). */
  status(): SessionStatus[] {
    const now = performance.now();
    return [...this.#shown].map(([session, s]) => {
      const secs = (now - s.stats.startedMs) / 1000;
      return {
        who: s.who,
        from: s.from,
        direction: session.kind,
        bytes_done: s.stats.bytesDone,
        bytes_total: s.stats.bytesTotal,
        files_done: s.stats.filesSent + s.stats.filesSkipped + s.stats.filesFailed + s.stats.dirs,
        files_total: s.stats.filesTotal,
        rate: secs > 0 ? Math.round(s.stats.bytesDone / secs) : 0,
        connections: session.engine.connectionCount,
        started_at: s.startedAt.toISOString(),
      };
    });
  }

  /**
   * Running sessions get `graceMs` to finish; those still running then fail with FCP_ERR_SESSION_SHUTDOWN.
   * Stops the idle release too: the daemon is going away.
   */
  async shutdown(graceMs: number): Promise<void> {
    if (this.#idleRelease !== undefined) clearTimeout(this.#idleRelease);
    const deadline = Date.now() + graceMs;
    while (this.#registry.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const session of this.#registry.all()) {
      session.engine.fail(new FcpError('FCP_ERR_SESSION_SHUTDOWN'));
    }
  }

  async #run(
    conn: FramedConn,
    inbox: Inbox,
    request: PushMsg | PullMsg,
    auth: Granted,
    summary: string,
  ): Promise<void> {
    this.#registry.reserve();
    let registered = false;
    try {
      const connections = Math.min(Math.max(request.connections, 1), this.#opts.maxConnections);
      const stats = createStats(performance.now());
      const kind = request.type === MsgType.Push ? 'push' : 'pull';
      const label = `${conn.remote} ${kind}`;
      const onWarning = (err: FcpError) => {
        if (this.#opts.verbose) this.#opts.log(`${label}: ${err.path ?? ''}: ${err.code}: ${err.message}`);
      };
      const id = this.#registry.newId();
      const ctx: HandlerContext = {
        hasher: this.#hasher,
        control: conn,
        stats,
        listeners: [problemsTo(onWarning)],
        onWarning,
        idleTimeoutMs: this.#opts.idleTimeoutMs,
        rateLimit: this.#opts.rateLimit,
        fsync: this.#opts.fsync === true,
        served: this.#served,
      };
      const { engine, flags, start } =
        request.type === MsgType.Push
          ? await openPush(request, ctx, this.#opts.partials)
          : await openPull(request, ctx);
      const session = this.#registry.add({
        id,
        kind,
        engine,
        maxConnections: connections,
        conns: new Set([conn]),
        startedMs: stats.startedMs,
        secret: auth.secret,
        encrypted: auth.encrypted,
        carried: auth.carried,
        address: auth.address,
      });
      registered = true;
      this.#shown.set(session, { who: auth.who, from: conn.remote, stats, startedAt: new Date() });
      this.#admission.grant(auth.address, connections);
      // SESSION first: a push list that came early is replayed by handOver, and whatever the receiver
      // answers to it (an ABORT included) must follow SESSION on the wire.
      conn.send({
        type: MsgType.Session,
        sessionId: id,
        flags,
        maxConnections: connections,
        pieceSize: PIECE_SIZE,
      });
      inbox.handOver(engine);
      start?.();
      if (this.#opts.verbose)
        this.#opts.log(`${label}: session started (${connections} connections allowed)`);
      engine.done.then(
        () => this.#end(session, summary, stats, undefined),
        (err: unknown) => this.#end(session, summary, stats, toFcpError(err)),
      );
    } finally {
      if (!registered) this.#registry.unreserve();
    }
  }

  #end(session: Session, summary: string, stats: TransferStats, err: FcpError | undefined): void {
    this.#registry.remove(session, err === undefined);
    this.#shown.delete(session);
    this.#admission.revoke(session.address, session.maxConnections);
    if (this.#registry.size === 0) this.#scheduleIdleRelease();
    this.#opts.log(sessionEndLine(summary, stats, err));
    // The client closes first after DONE; make sure a peer that never does cannot keep sockets forever.
    setTimeout(() => {
      for (const c of session.conns) c.destroy();
    }, 5000).unref();
    this.#notifyEnd([...session.conns], err);
  }

  /** onSessionEnd, once every one of `conns` has closed. */
  #notifyEnd(conns: readonly FramedConn[], err: FcpError | undefined): void {
    const hook = this.#opts.onSessionEnd;
    if (hook === undefined) return;
    let open = conns.length;
    if (open === 0) hook(err);
    for (const c of conns) {
      c.onceClosed(() => {
        if (--open === 0) hook(err);
      });
    }
  }

  /**
   * Once no session is left for IDLE_RELEASE_MS, the memory the last ones used goes back to the system
   * (idle-memory.ts). The delay keeps a client that runs command after command from paying for it each time.
   */
  #scheduleIdleRelease(): void {
    if (this.#idleRelease !== undefined) clearTimeout(this.#idleRelease);
    this.#idleRelease = setTimeout(() => {
      this.#idleRelease = undefined;
      if (this.#registry.size === 0) releaseIdleMemory();
    }, IDLE_RELEASE_MS);
    this.#idleRelease.unref();
  }
}
