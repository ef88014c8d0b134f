/**
 * The client's half of push and pull: connect, handshake, open the session, attach the extra connections,
 * and run the sending or receiving engine until the daemon confirms the end (spec/PROTOCOL.md §3–§6).
 */
import { lstat } from 'node:fs/promises';
import { dial } from '../net/dial.js';
import { FramedConn } from '../net/framed-conn.js';
import { HANDSHAKE_TIMEOUT_MS, negotiateVersion, ourHello } from '../net/hello.js';
import { Inbox } from '../net/inbox.js';
import {
  FcpError,
  MAX_PATTERNS,
  MsgType,
  type SessionMsg,
  TransferFlag,
  toFcpError,
} from '../protocol/index.js';
import type { Hasher } from '../transfer/checksum.js';
import { resolveLocalDestination } from '../transfer/destination.js';
import type { TransferEngine } from '../transfer/engine.js';
import { Receiver } from '../transfer/receiver.js';
import { createSelector, type SelectOptions } from '../transfer/select.js';
import { Sender } from '../transfer/sender.js';
import { localSourceRoot, type SourceRoot } from '../transfer/source-spec.js';
import type { TransferStats } from '../transfer/stats.js';
import { ROOT_ENTRY } from '../transfer/wire-path.js';

export interface Endpoint {
  host: string;
  port: number;
}

interface CommonOptions {
  endpoint: Endpoint;
  connections: number;
  checksum: boolean;
  select: SelectOptions;
  hasher: Hasher;
  stats: TransferStats;
  onWarning: (err: FcpError) => void;
  /** Called with the engine once it runs, so the caller can cancel it (SIGINT). */
  onEngine?: (engine: TransferEngine) => void;
  /** Recoverable events worth a line with -v (a connection replaced). */
  onNotice?: (text: string) => void;
}

export interface PushOptions extends CommonOptions {
  sources: readonly string[];
  /** The remote destination path as typed (trailing '/' matters). */
  dest: string;
}

export interface PullOptions extends CommonOptions {
  /** The remote source path or glob as typed. */
  source: string;
  /** The local destination as typed. */
  dest: string;
}

export async function push(opts: PushOptions): Promise<void> {
  const roots = await checkSources(opts.sources);
  const single = roots.length === 1 && roots[0]!.root.topRel !== ROOT_ENTRY && !roots[0]!.isDir;
  const selector = createSelector(opts.select);
  const { conn, inbox } = await openConnection(opts.endpoint, opts.hasher);
  let flags = single ? TransferFlag.SingleFile : 0;
  if (opts.checksum) flags |= TransferFlag.Checksum;
  conn.send({ type: MsgType.Push, flags, connections: opts.connections, dest: opts.dest });
  const session = await expectSession(conn, inbox);
  const replace = replacer(opts, session);
  const sender = new Sender({
    hasher: opts.hasher,
    control: conn,
    stats: opts.stats,
    onWarning: opts.onWarning,
    onConnectionLost: replace.lost,
    sources: roots.map((r) => r.root),
    selector,
    checksum: opts.checksum,
  });
  inbox.handOver(sender);
  replace.engine = sender;
  opts.onEngine?.(sender);
  sender.start();
  attachExtra(opts, session, sender);
  await finish(sender);
}

export async function pull(opts: PullOptions): Promise<void> {
  // Checked before connecting, so a bad pattern is a usage error. The regexes stay here: the receiver
  // applies them to the announced list (the daemon never runs a client's regex).
  createSelector(opts.select);
  for (const [name, list] of [
    ['include', opts.select.include],
    ['exclude', opts.select.exclude],
  ] as const) {
    if ((list?.length ?? 0) > MAX_PATTERNS) {
      throw new FcpError(
        'FCP_ERR_USAGE',
        `at most ${MAX_PATTERNS} --${name} patterns can be sent to the daemon`,
      );
    }
  }
  const regexOnly = createSelector({ regex: opts.select.regex ?? [] });
  const { conn, inbox } = await openConnection(opts.endpoint, opts.hasher);
  let flags = 0;
  if (opts.checksum) flags |= TransferFlag.Checksum;
  conn.send({
    type: MsgType.Pull,
    flags,
    connections: opts.connections,
    source: opts.source,
    include: [...(opts.select.include ?? [])],
    exclude: [...(opts.select.exclude ?? [])],
  });
  const session = await expectSession(conn, inbox);
  let dest: Awaited<ReturnType<typeof resolveLocalDestination>>;
  try {
    dest = await resolveLocalDestination(opts.dest, (session.flags & TransferFlag.SingleFile) !== 0);
  } catch (err) {
    conn.abort(new FcpError('FCP_ERR_SESSION_ABORTED', 'client cannot write to its destination'));
    throw err;
  }
  const replace = replacer(opts, session);
  const receiver = new Receiver({
    hasher: opts.hasher,
    control: conn,
    stats: opts.stats,
    onWarning: opts.onWarning,
    onConnectionLost: replace.lost,
    root: dest.root,
    singleName: dest.singleName,
    checksum: opts.checksum,
    wantsFile: (path) => regexOnly.wantsFile(path),
  });
  inbox.handOver(receiver);
  replace.engine = receiver;
  opts.onEngine?.(receiver);
  attachExtra(opts, session, receiver);
  await finish(receiver);
}

interface CheckedSource {
  root: SourceRoot;
  isDir: boolean;
}

/** Every source must exist before anything connects: a typo is a clear local error, not a remote one. */
async function checkSources(sources: readonly string[]): Promise<CheckedSource[]> {
  const out: CheckedSource[] = [];
  for (const source of sources) {
    const root = localSourceRoot(source);
    try {
      const st = await lstat(root.abs);
      out.push({ root, isDir: st.isDirectory() });
    } catch (err) {
      const e = toFcpError(err, source);
      throw new FcpError(e.code, `${source}: ${e.message}`, { path: source, fatal: true, cause: err });
    }
  }
  return out;
}

async function openConnection(
  endpoint: Endpoint,
  hasher: Hasher,
): Promise<{ conn: FramedConn; inbox: Inbox }> {
  const socket = await dial(endpoint.host, endpoint.port);
  const conn = new FramedConn(socket, hasher);
  const inbox = new Inbox(conn);
  conn.send(ourHello());
  try {
    const hello = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'HELLO');
    if (hello.type !== MsgType.Hello)
      throw new FcpError('FCP_ERR_PROTO_NOT_FCP', 'the server did not answer HELLO');
    negotiateVersion(hello);
  } catch (err) {
    conn.destroy();
    throw err;
  }
  return { conn, inbox };
}

async function expectSession(conn: FramedConn, inbox: Inbox): Promise<SessionMsg> {
  try {
    const msg = await inbox.next(HANDSHAKE_TIMEOUT_MS * 3, 'SESSION');
    if (msg.type !== MsgType.Session) throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'expected SESSION');
    return msg;
  } catch (err) {
    conn.destroy();
    throw err;
  }
}

/**
 * Opens the other connections in parallel. A connection that cannot be attached is reported and the
 * transfer goes on with fewer: the control connection carries data too.
 */
function attachExtra(opts: CommonOptions, session: SessionMsg, engine: TransferEngine): void {
  const extra = Math.min(opts.connections, session.maxConnections) - 1;
  let reported = false;
  for (let i = 0; i < extra; i++) {
    attachOne(opts.endpoint, opts.hasher, session.sessionId).then(
      ({ conn, inbox }) => {
        engine.addConnection(conn);
        inbox.handOver(engine);
      },
      (err) => {
        if (engine.finished || reported) return;
        reported = true;
        opts.onWarning(
          new FcpError(
            toFcpError(err).code,
            `could not open an extra connection: ${toFcpError(err).message}`,
          ),
        );
      },
    );
  }
}

/**
 * When a data connection dies mid-session its pieces are re-sent over the others (the engine does that);
 * here a replacement is attached so the transfer keeps its width. Bounded, so a link that kills every new
 * connection cannot make us reconnect forever.
 */
function replacer(opts: CommonOptions, session: SessionMsg) {
  const state = {
    engine: undefined as TransferEngine | undefined,
    budget: 2 * Math.min(opts.connections, session.maxConnections),
    lost: (err: FcpError) => {
      const engine = state.engine;
      if (engine === undefined || engine.finished || state.budget <= 0) return;
      state.budget--;
      opts.onNotice?.(
        `a connection failed (${err.message}); its pieces go over the others, attaching a replacement`,
      );
      attachOne(opts.endpoint, opts.hasher, session.sessionId).then(
        ({ conn, inbox }) => {
          engine.addConnection(conn);
          inbox.handOver(engine);
        },
        () => {},
      );
    },
  };
  return state;
}

async function attachOne(
  endpoint: Endpoint,
  hasher: Hasher,
  sessionId: Uint8Array,
): Promise<{ conn: FramedConn; inbox: Inbox }> {
  const { conn, inbox } = await openConnection(endpoint, hasher);
  conn.send({ type: MsgType.Attach, sessionId });
  try {
    const msg = await inbox.next(HANDSHAKE_TIMEOUT_MS, 'ATTACH');
    if (msg.type !== MsgType.Attach) throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'expected ATTACH');
  } catch (err) {
    conn.destroy();
    throw err;
  }
  // On a pull the daemon may start sending DATA right behind its ATTACH: the inbox keeps it for the engine.
  return { conn, inbox };
}

async function finish(engine: TransferEngine): Promise<void> {
  try {
    await engine.done;
  } finally {
    engine.closeAll();
  }
}
