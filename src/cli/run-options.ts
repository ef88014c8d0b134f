/**
 * The options that shape how a push or pull runs and reports rather than what it connects to: --json,
 * --dry-run, --limit. Declared here so cli/fcp.ts only chains them (README "Options").
 */
import type { Argv } from 'yargs';
import { FcpError } from '../protocol/index.js';
import type { TransferListener } from '../transfer/events.js';
import { dryRunPlan } from './dry-run-plan.js';
import { JsonEvents, type JsonRun } from './json-events.js';
import { monotonicMs } from './progress.js';

export interface RunArgs {
  verbose: boolean;
  json: boolean;
  'dry-run': boolean;
  limit: number | undefined;
}

export function runOptions<T>(y: Argv<T>) {
  return y
    .option('json', {
      type: 'boolean',
      default: false,
      describe: 'one JSON object per line on stdout, for scripts (spec/EVENTS.md); errors stay on stderr',
    })
    .option('dry-run', {
      type: 'boolean',
      default: false,
      describe: 'compare as a real run and report what would be sent; write nothing on either end',
    })
    .option('limit', {
      type: 'number',
      describe: 'send at most N files (the first that need sending, in walk order); the rest are not sent',
    });
}

/** The usage error in these options, if any. */
export function runArgsProblem(args: RunArgs): FcpError | undefined {
  const limit = args.limit;
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0))
    return new FcpError('FCP_ERR_USAGE', `--limit wants a whole number of files, not "${String(limit)}"`);
  return undefined;
}

/** The engine subscribers these options add: --json's writer, or --dry-run -v's plan on stdout. */
export function runListeners(
  args: RunArgs,
  json: JsonEvents | undefined,
  write: (text: string) => void,
): TransferListener[] {
  if (json !== undefined) return [json.listener];
  if (args['dry-run'] && args.verbose) return [dryRunPlan(write)];
  return [];
}

/** --json's writer on stdout for this run, or undefined without --json. */
export function jsonWriter(
  args: RunArgs & { connections: number },
  run: Omit<JsonRun, 'connections' | 'dryRun' | 'limit'>,
  write: (text: string | Uint8Array) => void,
): JsonEvents | undefined {
  if (!args.json) return undefined;
  const all = { ...run, connections: args.connections, dryRun: args['dry-run'], limit: args.limit };
  return new JsonEvents(all, write, monotonicMs);
}
