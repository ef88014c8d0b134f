/**
 * `fcp status [ID] [--json]` and `fcp cancel ID [--discard]`: this user's transfers on this machine, read
 * from the registry (client/transfer-registry.ts), as a table or as a JSON array (the fields of
 * TransferStatus, as scow-sync-query gives them); and the request that stops one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import {
  cancelTransfer,
  findTransfer,
  isLive,
  listTransfers,
  registryDir,
  type TransferStatus,
} from '../client/transfer-registry.js';
import { registryDirProblem } from '../client/registry-trust.js';
import type { TransportKind } from '../client/transfer-route.js';
import { FcpError } from '../protocol/index.js';
import { EXIT } from './exit-codes.js';
import { formatBytes, formatDuration, formatRate } from './progress.js';
import { printable } from './printable.js';
import { formatColumns } from './text-table.js';
import { jsonLine } from './json-line.js';

interface StatusArgs {
  id: string | undefined;
  json: boolean;
  verbose: boolean;
}

interface CancelArgs {
  id: string;
  discard: boolean;
}

/**
 * Where the bytes go: `a b -> host:7523:dst`, `host:7523:src -> dst` for a standing daemon; without the
 * port over ssh (ssh chose how to reach the host) or while that is not known yet.
 */
function endpoints(t: TransferStatus): string {
  const host = t.transport === 'daemon' ? `${t.host}:${t.port}` : t.host;
  const remote = (p: string) => `${host}:${p}`;
  return t.direction === 'push'
    ? `${t.sources.join(' ')} -> ${remote(t.destination)}`
    : `${t.sources.map(remote).join(' ')} -> ${t.destination}`;
}

const VIA: Record<TransportKind, string> = {
  daemon: 'daemon',
  'ssh-direct': 'ssh, direct',
  'ssh-carried': 'ssh, carried',
};

/** How the transfer reaches the remote fcpd; `-` before its first session (auto may still go either way). */
function via(t: TransferStatus): string {
  return t.transport === null ? '-' : VIA[t.transport];
}

function stateOf(t: TransferStatus): string {
  return t.state === 'running' ? 'running' : `exited ${t.exit_code ?? '?'}`;
}

/** The table's cells for one transfer, in HEADER's order. */
function row(t: TransferStatus): string[] {
  return [
    t.id,
    stateOf(t),
    t.direction,
    `${formatBytes(t.bytes_done)} / ${formatBytes(t.bytes_total)}`,
    t.rate === null ? '-' : formatRate(t.rate),
    t.eta_sec === null ? '-' : formatDuration(t.eta_sec),
    String(t.connections),
    t.started_at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    via(t),
    endpoints(t),
    t.current_file ?? '-',
  ];
}

const HEADER = ['ID', 'STATE', 'DIR', 'BYTES', 'RATE', 'ETA', 'CONNS', 'STARTED', 'VIA', 'ENDPOINTS', 'FILE'];

function showStatus(args: ArgumentsCamelCase<StatusArgs>): void {
  const dir = registryDir();
  const ignored = registryDirProblem(dir);
  if (args.verbose && ignored !== undefined) process.stderr.write(`fcp: ${printable(ignored)}\n`);
  const transfers = args.id === undefined ? listTransfers(dir) : [findTransfer(dir, args.id)];
  if (args.json) process.stdout.write(jsonLine(transfers));
  else if (transfers.length > 0) process.stdout.write(formatColumns([HEADER, ...transfers.map(row)]));
  process.exit(EXIT.OK);
}

/** How long `fcp cancel` waits for the transfer's process to end before it says so and gives up. */
const CANCEL_WAIT_MS = 15_000;
const CANCEL_POLL_MS = 50;

/** Asks the transfer to stop and waits until its process is gone, so a script may go on at once. */
async function cancel(args: ArgumentsCamelCase<CancelArgs>): Promise<void> {
  const status = cancelTransfer(registryDir(), args.id, args.discard ? 'discard' : 'keep');
  for (let waited = 0; waited < CANCEL_WAIT_MS; waited += CANCEL_POLL_MS) {
    if (!isLive(status)) process.exit(EXIT.OK);
    await sleep(CANCEL_POLL_MS);
  }
  throw new FcpError('FCP_ERR_INTERNAL', `transfer ${args.id} (pid ${status.pid}) did not stop within 15 s`);
}

export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status [id]',
  describe: "list this user's running transfers (or one), from any shell",
  builder: (y: Argv) =>
    y
      .positional('id', { type: 'string', describe: 'a transfer id (fcp status lists them)' })
      .option('json', { type: 'boolean', default: false, describe: 'a JSON array instead of a table' })
      .option('verbose', {
        alias: 'v',
        type: 'boolean',
        default: false,
        describe: 'say why the registry is ignored (a link, or not yours)',
      }) as Argv<StatusArgs>,
  handler: showStatus,
};

export const cancelCommand: CommandModule<object, CancelArgs> = {
  command: 'cancel <id>',
  describe: 'stop a running transfer; the receiver keeps verified pieces for a resume',
  builder: (y: Argv) =>
    y
      .positional('id', { type: 'string', demandOption: true, describe: 'the transfer id' })
      .option('discard', {
        type: 'boolean',
        default: false,
        describe: 'remove the partial files on the receiving end instead',
      }) as Argv<CancelArgs>,
  handler: cancel,
};
