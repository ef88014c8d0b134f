/** A granted PULL: the Sender that announces and sends the served files the client asked for. */
import { lstat } from 'node:fs/promises';
import { FcpError } from '../protocol/errors.js';
import { type PullMsg, TransferFlag } from '../protocol/index.js';
import { createSelector } from '../transfer/select.js';
import { Sender } from '../transfer/sender.js';
import { ROOT_ENTRY } from '../transfer/wire-path.js';
import type { HandlerContext, SessionEngine } from './session-engine.js';

export async function openPull(request: PullMsg, ctx: HandlerContext): Promise<SessionEngine> {
  // --regex never crosses the wire: a client-chosen regex could backtrack for hours on the daemon's
  // event loop, so the pulling client applies it to the announced list instead (spec/SECURITY.md).
  const selector = createSelector({ include: request.include, exclude: request.exclude });
  const sources = await ctx.served.sources(request.source, ctx.onWarning, closedSignal(ctx, request.source));
  const single = sources.length === 1 && sources[0]!.topRel !== ROOT_ENTRY && !(await isDir(sources[0]!.abs));
  const sender = new Sender({
    hasher: ctx.hasher,
    control: ctx.control,
    stats: ctx.stats,
    listeners: ctx.listeners,
    sources,
    selector,
    checksum: (request.flags & TransferFlag.Checksum) !== 0,
    dryRun: (request.flags & TransferFlag.DryRun) !== 0,
    idleTimeoutMs: ctx.idleTimeoutMs,
    rateLimit: ctx.rateLimit,
  });
  return {
    engine: sender,
    // Echoed: the client checks a dry run was understood before it reads any answer (PROTOCOL.md §5.6).
    flags:
      (request.flags & (TransferFlag.Checksum | TransferFlag.DryRun)) |
      (single ? TransferFlag.SingleFile : 0),
    start: () => sender.start(),
  };
}

/**
 * Aborted when the requesting connection closes: a client that gave up on a long glob expansion must not
 * leave the daemon working for nobody (spec/SECURITY.md §10). The log's "session refused" line says so.
 */
function closedSignal(ctx: HandlerContext, spec: string): AbortSignal {
  const controller = new AbortController();
  ctx.control.onceClosed(() =>
    controller.abort(
      new FcpError('FCP_ERR_NET_CLOSED', `the client left; stopped expanding ${JSON.stringify(spec)}`, {
        path: spec,
      }),
    ),
  );
  return controller.signal;
}

async function isDir(abs: string): Promise<boolean> {
  try {
    return (await lstat(abs)).isDirectory();
  } catch {
    return false;
  }
}
