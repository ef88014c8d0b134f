/**
 * The client's push: check the local sources, open the session with the list already on its way, and run
 * the Sender until the daemon confirms the end (spec/PROTOCOL.md §5).
 */
import { lstat } from 'node:fs/promises';
import { errorArea, FcpError, MsgType, type PushMsg, TransferFlag, toFcpError } from '../protocol/index.js';
import { problemsTo } from '../transfer/events.js';
import { createSelector } from '../transfer/select.js';
import { Sender } from '../transfer/sender.js';
import { localSourceRoot, type SourceRoot } from '../transfer/store/source-spec.js';
import { ROOT_ENTRY } from '../transfer/wire-path.js';
import type { FramedConn } from '../transport/framed-conn.js';
import { requestedConnections } from './auto-connections.js';
import { ExtraConnections } from './extra-connections.js';
import { finish } from './finish.js';
import type { PushOptions } from './options.js';
import { type OpenedSession, openSession } from './session.js';

export async function push(opts: PushOptions): Promise<void> {
  const roots = await checkSources(opts.sources);
  const single = roots.length === 1 && roots[0]!.root.topRel !== ROOT_ENTRY && !roots[0]!.isDir;
  const selector = createSelector(opts.select);
  let flags = single ? TransferFlag.SingleFile : 0;
  if (opts.checksum) flags |= TransferFlag.Checksum;
  if (opts.dryRun === true) flags |= TransferFlag.DryRun;
  if (opts.fsync === true) flags |= TransferFlag.Fsync;
  const request: PushMsg = {
    type: MsgType.Push,
    flags,
    connections: requestedConnections(opts.connections),
    dest: opts.dest,
  };
  const extra = new ExtraConnections(opts);
  let started: Sender | undefined;
  // The list starts right behind the first proof (when the daemon allows it), so its first answers come
  // back with SESSION instead of a round trip after it.
  const startList = (control: FramedConn, preSessionEntries: number): void => {
    started = new Sender({
      hasher: opts.hasher,
      control,
      stats: opts.stats,
      rateLimit: opts.rateLimit,
      listeners: [problemsTo(opts.onWarning), extra.listener, ...(opts.listeners ?? [])],
      sources: roots.map((r) => r.root),
      selector,
      checksum: opts.checksum,
      preSessionEntries,
      limit: opts.limit,
      dryRun: opts.dryRun,
    });
    started.start();
  };
  let opened: OpenedSession;
  try {
    opened = await openSession(opts, request, startList);
  } catch (err) {
    throw await handshakeFailed(started, err);
  }
  const sender = started!;
  const { conn, inbox, session, link } = opened;
  extra.granted(session, link, sender);
  inbox.handOver(sender);
  sender.sessionGranted();
  opts.onEngine?.(sender);
  await finish(sender, conn, extra);
}

/**
 * The error to report when the handshake failed after the list had started. Usually the handshake's own
 * (a refused key, the daemon's ABORT), which also cut the Sender off (FCP_ERR_NET_*); but a Sender that
 * failed by itself (an unreadable source) closed the connection, and then its error is the real one.
 */
async function handshakeFailed(sender: Sender | undefined, err: unknown): Promise<unknown> {
  if (sender === undefined) return err;
  const own = sender.finished
    ? await sender.done.then(
        () => undefined,
        (e: unknown) => toFcpError(e),
      )
    : undefined;
  sender.fail(err, false);
  return own !== undefined && errorArea(own.code) !== 'NET' ? own : err;
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
