/** A granted PUSH: the Receiver that writes the client's files into the served tree. */
import { type PushMsg, TransferFlag } from '../protocol/index.js';
import { Receiver } from '../transfer/receiver.js';
import type { PartialRegistry } from './partials.js';
import type { HandlerContext, SessionEngine } from './session-engine.js';

/** `partials` records the partial files the receiver keeps, so that stale ones can be swept. */
export async function openPush(
  request: PushMsg,
  ctx: HandlerContext,
  partials: PartialRegistry | undefined,
): Promise<SessionEngine> {
  const singleFile = (request.flags & TransferFlag.SingleFile) !== 0;
  const dryRun = (request.flags & TransferFlag.DryRun) !== 0;
  // A dry run writes nothing, so there is nothing to sync.
  const fsync = !dryRun && (ctx.fsync || (request.flags & TransferFlag.Fsync) !== 0);
  // A dry run makes no directory, the destination included (PROTOCOL.md §5.6).
  const dest = dryRun
    ? await ctx.served.plannedDestination(request.dest, singleFile)
    : await ctx.served.destination(request.dest, singleFile);
  const engine = new Receiver({
    hasher: ctx.hasher,
    control: ctx.control,
    stats: ctx.stats,
    listeners: ctx.listeners,
    root: dest.root,
    madeIn: dest.madeIn,
    singleName: dest.singleName,
    singleFile,
    dryRun,
    checksum: (request.flags & TransferFlag.Checksum) !== 0,
    idleTimeoutMs: ctx.idleTimeoutMs,
    rateLimit: ctx.rateLimit,
    onPartialKept: (temp, sidecar) => partials?.record(temp, sidecar),
    fsync,
  });
  // Only what the client asked is echoed: a client that did not ask may not know the bit (§3).
  return {
    engine,
    flags: request.flags & (TransferFlag.Checksum | TransferFlag.DryRun | TransferFlag.Fsync),
  };
}
