/**
 * The client's pull: check the patterns, open the session, resolve the local destination the daemon's
 * answer calls for, and run the Receiver until the end (spec/PROTOCOL.md §6).
 */
import { FcpError, MAX_PATTERNS, MsgType, type PullMsg, TransferFlag } from '../protocol/index.js';
import { problemsTo } from '../transfer/events.js';
import {
  type Destination,
  type PlannedDestination,
  planLocalDestination,
  resolveLocalDestination,
} from '../transfer/store/destination.js';
import { Receiver } from '../transfer/receiver.js';
import { createSelector } from '../transfer/select.js';
import { requestedConnections } from './auto-connections.js';
import { ExtraConnections } from './extra-connections.js';
import { finish } from './finish.js';
import type { PullOptions } from './options.js';
import { openSession } from './session.js';

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
  let flags = 0;
  if (opts.checksum) flags |= TransferFlag.Checksum;
  if (opts.dryRun === true) flags |= TransferFlag.DryRun;
  const request: PullMsg = {
    type: MsgType.Pull,
    flags,
    connections: requestedConnections(opts.connections),
    source: opts.source,
    include: [...(opts.select.include ?? [])],
    exclude: [...(opts.select.exclude ?? [])],
  };
  const { conn, inbox, session, link } = await openSession(opts, request);
  const single = (session.flags & TransferFlag.SingleFile) !== 0;
  let dest: Destination | PlannedDestination | undefined;
  try {
    // A dry run makes no directory, the destination included (PROTOCOL.md §5.6).
    dest =
      opts.dryRun === true
        ? await planLocalDestination(opts.dest, single)
        : await resolveLocalDestination(opts.dest, single);
  } catch (err) {
    conn.abort(new FcpError('FCP_ERR_SESSION_ABORTED', 'client cannot write to its destination'));
    throw err;
  }
  const extra = new ExtraConnections(opts);
  const receiver: Receiver = new Receiver({
    hasher: opts.hasher,
    control: conn,
    stats: opts.stats,
    rateLimit: opts.rateLimit,
    listeners: [problemsTo(opts.onWarning), extra.listener, ...(opts.listeners ?? [])],
    root: dest?.root,
    madeIn: dest?.madeIn,
    singleName: dest?.singleName,
    singleFile: single,
    dryRun: opts.dryRun,
    checksum: opts.checksum,
    wantsFile: (path) => regexOnly.wantsFile(path),
    limit: opts.limit,
    fsync: opts.fsync === true,
  });
  extra.granted(session, link, receiver);
  inbox.handOver(receiver);
  opts.onEngine?.(receiver);
  await finish(receiver, conn, extra);
}
