#!/usr/bin/env node
/**
 * fcp: the command line. Parses argv, prints for the user, and owns the exit code; everything else lives in
 * src/client/ and below (STYLE: only src/cli/ parses argv, prints and calls process.exit).
 */
// More threadpool workers than the default 4 keep small-file I/O (open/write/close/rename) overlapping.
process.env['UV_THREADPOOL_SIZE'] ??= '16';

import path from 'node:path';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { FCP_VERSION, FcpError, toFcpError } from '../protocol/index.js';
import { loadHasher } from '../transfer/checksum.js';
import type { TransferEngine } from '../transfer/engine.js';
import { EXIT, exitCodeFor, exitCodesHelp } from './exit-codes.js';
import { printable, printableStack } from './printable.js';
import { createStats, RunTotals } from '../transfer/stats.js';
import { pinYoungGeneration } from './young-generation.js';
import { parseRate } from './rate-option.js';
import { RateLimit } from '../transport/rate-limit.js';
import { cancelCommand, statusCommand } from './status-command.js';
import {
  isBackgroundChild,
  onCancel,
  registerTransfer,
  startInBackground,
  transferId,
} from './transfer-control.js';
import { optionTable, type OptionTable } from './config-apply.js';
import { commonOptions, MAX_CONNECTIONS, parseConnections } from './fcp-options.js';
import { requestedConnections } from '../client/auto-connections.js';
import { clientSettings, formatClientConfig } from './config-client.js';
import { formatDryRunSummary, formatSummary, monotonicMs, ProgressReporter } from './progress.js';
import { parseRemoteSpec } from '../client/remote-spec.js';
import { withRetries } from '../client/retry.js';
import { pull, push } from '../client/transfer-client.js';
import { endpointFor, splitOperands } from './fcp-operands.js';
import { jsonWriter, type RunArgs, runArgsProblem, runListeners } from './run-options.js';
import { StdoutQueue } from './stdout-queue.js';
import { helpColumns, wantsHelp, withoutHelpCache, withoutTypeColumn } from './yargs-setup.js';
import { TransportChooser } from '../client/transport-choice.js';
import { type SshArgs, sshOptions, TRANSPORT_HELP, transportChoice, withDefaultSsh } from './ssh-options.js';

interface CommonArgs extends RunArgs, SshArgs {
  connections: number | string;
  retries: number;
  'retry-wait': number;
  checksum: boolean;
  fsync: boolean;
  include: string[] | undefined;
  exclude: string[] | undefined;
  regex: string[] | undefined;
  quiet: boolean;
  verbose: boolean;
  identity: string | undefined;
  encryption: boolean;
  'accept-host-key': string | undefined;
  bwlimit: string | undefined;
  background: boolean;
}

let verbose = process.argv.includes('-v') || process.argv.includes('--verbose');
/** Set by a running transfer: reports the error that ends it (--json's error and summary events). */
let beforeFatalExit: ((err: FcpError, exitCode: number) => void) | undefined;

function fail(err: unknown): never {
  const e = toFcpError(err);
  beforeFatalExit?.(e, exitCodeFor(e));
  const where = e.path !== undefined && !e.message.includes(e.path) ? `${e.path}: ` : '';
  const code = verbose && e.code !== e.message ? ` [${e.code}]` : '';
  process.stderr.write(`fcp: ${printable(`${where}${e.message}`)}${code}\n`);
  // The stack holds the message, which may be a peer's ABORT text: escaped like every other line we print.
  if (verbose && e.code === 'FCP_ERR_INTERNAL')
    process.stderr.write(`${printableStack(e.cause instanceof Error ? e.cause : e)}\n`);
  process.exit(exitCodeFor(e));
}

function usage(message: string): never {
  fail(new FcpError('FCP_ERR_USAGE', message));
}

async function run(
  direction: 'push' | 'pull',
  operands: string[],
  flags: CommonArgs,
  table: OptionTable,
): Promise<void> {
  verbose = flags.verbose;
  // Everything this run writes to stdout goes through it: the file lines, --dry-run -v's plan and the
  // summary reach a slow reader before process.exit, and a reader that stops reading holds the transfer
  // rather than fcp's event loop (stdout-queue.ts).
  let holdForOutput = (_held: boolean): void => {};
  let outputClosed = (_code: string): void => {};
  const output = new StdoutQueue({
    onHeld: (held) => holdForOutput(held),
    onClosed: (code) => outputClosed(code),
  });
  // Every normal end calls process.exit with its code. If the event loop ever empties without one (a
  // transfer that neither finished nor failed), that is a bug, and it must not look like success.
  process.exitCode = EXIT.INTERNAL;
  const { remote, local } = splitOperands(direction, operands);
  // The config file's section for the host as typed (README "Configuration"); flags win over it.
  const args = clientSettings(flags, table, hideBin(process.argv), remote.host).args;
  verbose = args.verbose;
  const connections = parseConnections(args.connections);
  if (connections === undefined)
    usage(
      `--connections must be auto or an integer from 1 to ${MAX_CONNECTIONS}, not "${String(args.connections)}"`,
    );
  if (!Number.isInteger(args.retries) || args.retries < 0) usage('--retries must be a whole number');
  if (!(args['retry-wait'] >= 0)) usage('--retry-wait must be a number of seconds');
  const runProblem = runArgsProblem(args);
  if (runProblem !== undefined) fail(runProblem);
  const { endpoint, security } = endpointFor(remote, args);
  const chooser = new TransportChooser(
    transportChoice(args, remote, (line) => {
      progress.finish();
      process.stderr.write(`${printable(line)}\n`);
    }),
  );
  const rateLimit = args.bwlimit === undefined ? undefined : new RateLimit(parseRate(args.bwlimit));
  const requested = requestedConnections(connections);
  const description = {
    direction,
    host: endpoint.host,
    port: endpoint.port,
    sources: direction === 'push' ? local.map((p) => path.resolve(p)) : [remote.path],
    destination: direction === 'push' ? remote.path : path.resolve(local[0]!),
    connections: requested,
    bwlimit: rateLimit?.rateBps ?? null,
  };
  if (args.background && !isBackgroundChild()) {
    // The id and nothing else: `id=$(fcp push --background ...)`.
    output.write(`${startInBackground(description)}\n`);
    process.exit(EXIT.OK);
  }
  const id = transferId();
  const hasher = await loadHasher();
  const startedMs = monotonicMs();
  let stats = createStats(startedMs);
  const progress = new ProgressReporter({
    stream: process.stdout,
    enabled: process.stdout.isTTY === true && !args.quiet && !args.json,
    capBps: rateLimit?.rateBps,
  });
  const json = jsonWriter(
    { ...args, connections: requested },
    {
      direction,
      host: endpoint.host,
      port: endpoint.port,
      sources: direction === 'push' ? local : [remote.path],
      destination: direction === 'push' ? remote.path : local[0]!,
    },
    (text) => output.write(text),
  );
  // Not unref'd: it also keeps the process alive while the transfer waits on a peer. Were every socket idle
  // and every engine timer unref'd, node would otherwise end the run with status 0, a silent "success".
  const ticker = setInterval(() => {
    progress.update(stats);
    // A snapshot: while the reader is behind, the next one says more.
    if (!output.held) json?.progress(stats);
  }, 200);
  const say = (line: string) => {
    progress.finish();
    // Names and messages may come from the peer: never let them forge lines or send terminal escapes.
    process.stderr.write(`fcp: ${printable(line)}\n`);
  };
  const onWarning = (err: FcpError) => {
    say(`${err.path !== undefined && !err.message.includes(err.path) ? `${err.path}: ` : ''}${err.message}`);
  };
  let engine: TransferEngine | undefined;
  /** The most connections an earlier attempt's engine had open at once (--json's summary). */
  let peakConnections = 0;
  const totals = new RunTotals();
  const jsonSummary = (exitCode: number) =>
    json?.summary({
      stats: args['dry-run'] ? stats : totals.summary(stats),
      elapsedSec: (monotonicMs() - startedMs) / 1000,
      dryRun: args['dry-run'],
      exitCode,
      connections: Math.max(peakConnections, engine?.peakConnections ?? 0),
    });
  /** The attempt whose figures totals already holds: a failed attempt is added as it fails. */
  let counted: typeof stats | undefined;
  beforeFatalExit = (err, exitCode) => {
    json?.error(err);
    if (counted !== stats) totals.add(stats);
    jsonSummary(exitCode);
  };
  /** Ends the run now, as Ctrl-C does: the engine fails its session (partial files kept for a re-run). */
  const stopNow = (reason: string, stdoutUsable: boolean) => {
    if (stdoutUsable) progress.finish();
    const err = new FcpError('FCP_ERR_SESSION_ABORTED', reason);
    engine?.fail(err);
    chooser.close();
    process.stderr.write(`fcp: ${reason}\n`);
    if (stdoutUsable) beforeFatalExit?.(err, EXIT.INTERRUPTED);
    process.exit(EXIT.INTERRUPTED);
  };
  const interrupt = () => stopNow('interrupted', true);
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  // The reader of stdout went away (`fcp --json ... | head -1`): where a C program would die of SIGPIPE,
  // node gets EPIPE, and without a listener that was a stack trace. Stopped as on Ctrl-C, and nothing more
  // goes to stdout.
  outputClosed = (code) => stopNow(`standard output closed (${code}); transfer stopped`, false);
  process.stdout.on('error', (err: NodeJS.ErrnoException) => outputClosed(err.code ?? err.message));
  let toldHeld = false;
  holdForOutput = (held) => {
    engine?.holdReading(held);
    if (held && args.verbose && !toldHeld) {
      toldHeld = true;
      say(`standard output is not being read: the transfer waits for its reader`);
    }
  };
  const statusListener = registerTransfer(
    { ...description, id },
    { stats: () => stats, connections: () => engine?.connectionCount ?? 0, route: () => chooser.route() },
    (err) => {
      if (args.verbose) say(`fcp status will not list this transfer: ${err.message}`);
    },
  );
  onCancel(id, () => engine, fail);
  try {
    await withRetries(
      async () => {
        stats = createStats(startedMs);
        const common = {
          endpoint,
          security,
          connections,
          rateLimit,
          checksum: args.checksum,
          fsync: args.fsync,
          select: { include: args.include ?? [], exclude: args.exclude ?? [], regex: args.regex ?? [] },
          hasher,
          stats,
          onWarning,
          onNotice: (text: string) => {
            if (args.verbose) say(text);
          },
          onInfo: (text: string) => {
            if (!args.quiet) say(text);
          },
          onEngine: (e: TransferEngine) => {
            peakConnections = Math.max(peakConnections, engine?.peakConnections ?? 0);
            engine = e;
            if (output.held) e.holdReading(true);
          },
          listeners: [statusListener, ...runListeners(args, json, (text) => output.write(text))],
          dryRun: args['dry-run'],
          // A retry finds what earlier attempts sent already in place: they spent that much of the limit.
          limit: args.limit === undefined ? undefined : Math.max(0, args.limit - totals.filesSent),
          onSession: json?.sessionStarted,
        };
        try {
          await chooser.run(common, (opts) =>
            direction === 'push'
              ? push({ ...opts, sources: local, dest: remote.path })
              : pull({ ...opts, source: remote.path, dest: local[0]! }),
          );
        } catch (err) {
          totals.add(stats);
          counted = stats;
          throw err;
        }
      },
      {
        retries: args.retries,
        retryWaitMs: args['retry-wait'] * 1000,
        onRetry: (err, next, waitMs) =>
          say(
            `${err.message}; retrying in ${(waitMs / 1000).toFixed(1)} s (attempt ${next} of ${args.retries + 1})`,
          ),
      },
    );
  } finally {
    clearInterval(ticker);
    progress.finish();
  }
  totals.add(stats);
  // A dry run sent nothing: its last attempt's plan is the whole answer.
  const summary = args['dry-run'] ? stats : totals.summary(stats);
  const exitCode = summary.filesFailed > 0 ? EXIT.PARTIAL : EXIT.OK;
  beforeFatalExit = undefined;
  if (!args.quiet && !args.json)
    output.write(
      `${args['dry-run'] ? formatDryRunSummary(summary) : formatSummary(summary, (monotonicMs() - summary.startedMs) / 1000)}\n`,
    );
  jsonSummary(exitCode);
  process.exit(exitCode);
}

/** `fcp --print-config HOST` (or HOST:PATH): the settings a transfer to HOST would use, and whence. */
function printConfig(operand: string, flags: CommonArgs, table: OptionTable): never {
  const alias = (parseRemoteSpec(operand) ?? parseRemoteSpec(`${operand}:`))?.host ?? operand;
  const config = clientSettings(flags, table, hideBin(process.argv), alias);
  process.stdout.write(formatClientConfig(config, alias));
  process.exit(EXIT.OK);
}

async function main(): Promise<void> {
  pinYoungGeneration();
  const cli: Argv = sshOptions(commonOptions(withoutTypeColumn(yargs(withDefaultSsh(hideBin(process.argv))))))
    .scriptName('fcp')
    .usage(
      'fcp [options] push SRC... [user@]host[:port]:DST\nfcp [options] pull [user@]host[:port]:SRC DST\n' +
        'fcp status [ID] [--json]\nfcp cancel ID [--discard]',
    )
    .command(
      'push <operands..>',
      'upload local files and directories to a daemon',
      (y) => y.positional('operands', { type: 'string', describe: 'SRC... HOST:DST' }),
      (argv) =>
        run(
          'push',
          [argv.operands ?? []].flat().map(String),
          argv as unknown as CommonArgs,
          optionTable(cli),
        ),
    )
    .command(
      'pull <operands..>',
      'download a remote path or glob from a daemon',
      (y) => y.positional('operands', { type: 'string', describe: 'HOST:SRC DST' }),
      (argv) =>
        run(
          'pull',
          [argv.operands ?? []].flat().map(String),
          argv as unknown as CommonArgs,
          optionTable(cli),
        ),
    )
    .command(statusCommand)
    .command(cancelCommand)
    .option('print-config', {
      type: 'string',
      describe: 'HOST: print the settings a transfer to HOST would use, and where each comes from',
    })
    .middleware((argv) => {
      const host = argv['print-config'];
      if (host === '') usage('--print-config needs a HOST: fcp --print-config HOST');
      if (typeof host === 'string') printConfig(host, argv as unknown as CommonArgs, optionTable(cli));
    }, true)
    .demandCommand(1, 'name a command: push, pull, status or cancel')
    .completion('completion', 'print a completion script: bash, or zsh when $SHELL is zsh')
    .strict()
    .epilogue(
      `Trailing slash: "dir" copies the directory itself, "dir/" its contents (like rsync).\n\n${TRANSPORT_HELP}\n\n${exitCodesHelp(helpColumns())}`,
    )
    .help()
    .alias('h', 'help')
    .version(FCP_VERSION)
    // Laying out the help text costs ~80 ms (string widths of every line), and yargs does it on every run to
    // cache it: only when help is asked for.
    .wrap(wantsHelp() ? helpColumns() : null)
    .fail((msg, err) => {
      if (err) fail(err);
      usage(msg);
    });
  withoutHelpCache(cli);
  await cli.parseAsync();
}

main().catch(fail);
