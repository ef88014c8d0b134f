/**
 * `fcpd --serve-once` up to its bootstrap line, shared by the launcher (fcpd-launch.ts), which runs it before
 * the rest of fcpd is loaded, and by fcpd-serve-once.ts when the launcher did not. Imports only what the line
 * needs (daemon/serve-once-open.ts): whatever this file pulls in is compiled before the line can leave.
 */
import { FCP_VERSION } from '../protocol/constants.js';
import { ANY_ADDRESSES } from '../daemon/listen-address.js';
import { type OpenedServeOnce, openServeOnce } from '../daemon/serve-once-open.js';
import { formatBootstrapLine } from '../transport/bootstrap-line.js';

/** What the launcher hands to the rest of fcpd once the line is out. */
export interface EarlyServeOnce {
  readonly stopping: StopWiring;
  readonly opened: OpenedServeOnce;
}

/** The options `--serve-once` reads before its line (fcpd-serve-once.ts's OverSshArgs has them all). */
export interface OpenArgs {
  readonly port: number;
  readonly bind: string | undefined;
  readonly root: string | undefined;
}

/**
 * A signal, or a stdout nobody reads any more (ssh gone, the same news as stdin's end), that comes before the
 * line or right after it must stop the daemon, not kill it or crash it: wired before anything is bound.
 */
export class StopWiring {
  readonly #controller = new AbortController();
  readonly #stop = () => this.#controller.abort();

  constructor() {
    for (const signal of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) process.once(signal, this.#stop);
    process.stdout.on('error', this.#stop);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Unwires it (a launcher's start that failed: fcpd's own start wires its own). */
  undo(): void {
    for (const signal of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) process.off(signal, this.#stop);
    process.stdout.off('error', this.#stop);
  }
}

/** Binds, checks the root, writes the bootstrap line on stdout. */
export function openAndAnnounce(args: OpenArgs, stopping: StopWiring): Promise<OpenedServeOnce> {
  return openServeOnce({
    binds: args.bind === undefined ? ANY_ADDRESSES : [args.bind],
    port: args.port,
    ...(args.root === undefined ? {} : { root: args.root }),
    version: FCP_VERSION,
    stop: stopping.signal,
    announce: (info) => process.stdout.write(`${formatBootstrapLine(info)}\n`),
  });
}
