/**
 * `fcpd status [--json]`: the sessions a running fcpd serves now, asked through its control socket
 * (daemon/control-socket.ts) in its state directory: a table, or the JSON array of SessionStatus.
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { DEFAULT_PORT } from '../protocol/index.js';
import {
  checkSocketOwner,
  controlSocketPath,
  querySessions,
  type SessionStatus,
} from '../daemon/control-socket.js';
import { daemonPaths } from '../daemon/daemon-paths.js';
import { lookupAccount } from '../security/privileges.js';
import { EXIT } from './exit-codes.js';
import { formatBytes, formatRate } from './progress.js';
import { formatColumns } from './text-table.js';
import { jsonLine } from './json-line.js';

interface DaemonStatusArgs {
  port: number;
  user: string | undefined;
  json: boolean;
}

const HEADER = ['FROM', 'WHO', 'DIR', 'BYTES', 'RATE', 'CONNS', 'SINCE'];

function row(s: SessionStatus): string[] {
  return [
    s.from,
    s.who,
    s.direction,
    `${formatBytes(s.bytes_done)} / ${formatBytes(s.bytes_total)}`,
    formatRate(s.rate),
    String(s.connections),
    s.started_at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
  ];
}

async function showSessions(args: ArgumentsCamelCase<DaemonStatusArgs>): Promise<void> {
  // --user NAME: the daemon started with --user NAME keeps its socket in NAME's state directory.
  const account = args.user === undefined ? undefined : lookupAccount(args.user);
  const { stateDir } = daemonPaths(account, args.port, undefined, undefined);
  const socketPath = controlSocketPath(stateDir, args.port);
  if (account !== undefined) checkSocketOwner(socketPath, account.uid);
  const sessions = await querySessions(socketPath);
  if (args.json) process.stdout.write(jsonLine(sessions));
  else if (sessions.length > 0) process.stdout.write(formatColumns([HEADER, ...sessions.map(row)]));
  process.exit(EXIT.OK);
}

export const daemonStatusCommand: CommandModule<object, DaemonStatusArgs> = {
  command: 'status',
  describe: 'the sessions a running fcpd serves now (through its control socket in STATE)',
  builder: (y: Argv) =>
    y
      .option('port', {
        alias: 'p',
        type: 'number',
        default: DEFAULT_PORT,
        describe: 'port of the daemon to ask',
      })
      .option('user', { type: 'string', describe: 'ask the daemon started with --user NAME (its STATE)' })
      .option('json', {
        type: 'boolean',
        default: false,
        describe: 'a JSON array instead of a table',
      }) as Argv<DaemonStatusArgs>,
  handler: showSessions,
};
