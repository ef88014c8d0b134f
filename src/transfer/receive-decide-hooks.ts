/**
 * What --limit and --dry-run change in the receiver's decisions, kept beside the Decider rather than in it:
 * the limit decides regular files in turn and leaves out those past it (receive-limit.ts); a dry run
 * settles a needed file at once, with no data (spec/PROTOCOL.md §5.6).
 */
import { type FileInfoMsg, ReadyAction } from '../protocol/index.js';
import type { ReceiveContext, RecvFile } from './receive-files.js';
import { LimitedDecisions } from './receive-limit.js';
import type { SendLimit } from './send-limit.js';

/** --limit's turns, deciding each admitted file with `decide`; undefined without a limit. */
export function limitedDecisions(
  ctx: ReceiveContext,
  limit: SendLimit | undefined,
  decide: (info: FileInfoMsg) => void,
): LimitedDecisions | undefined {
  if (limit === undefined) return undefined;
  return new LimitedDecisions(limit, {
    decide,
    leaveOut: (info) => {
      ctx.emit({ type: 'not-sent', path: info.path, size: Number(info.size) });
      ctx.answers.ready(info.id, ReadyAction.Skip);
    },
  });
}

/** A dry run's needed file: what it would send is said (NEED or RESUME); it is settled with no data. */
export function settleRehearsed(ctx: ReceiveContext, file: RecvFile): void {
  ctx.reservations.releaseAll([file.rel, ...file.workNames]);
  ctx.emit({
    type: 'finished',
    path: file.info.path,
    kind: 'file',
    size: file.size,
    resumedBytes: file.resumedBytes,
  });
  ctx.answers.done(file.id, 0);
}
