/**
 * Starting a one-session fcpd over ssh: `ssh HOST <script>` runs `fcpd --serve-once` (or fcp's cached
 * bundle), and fcp reads the bootstrap line it prints (port, host key fingerprint, one-time secret, relay
 * socket) out of ssh's stdout, past whatever login scripts print first. A remote with node but no fcpd
 * gets the bundle installed (remote-install.ts), then a second bootstrap. The ssh stays running for the
 * whole session: ending its stdin is what tells the remote fcpd to go.
 */
import {
  BOOTSTRAP_SCAN_MAX_BYTES,
  BOOTSTRAP_SCAN_MAX_LINES,
  BOOTSTRAP_TIMEOUT_MS,
  type BootstrapInfo,
  parseBootstrapLine,
} from '../transport/bootstrap-line.js';
import { FcpError } from '../protocol/index.js';
import { bootstrapArgv, type SshCommand } from '../transport/ssh-command.js';
import { NEED_INSTALL_TAG, remoteCommandFor } from '../transport/remote-script.js';
import { takeEarlyBootstrap } from './early-bootstrap.js';
import { cannotInstall, findLocalBundle, installBundle, type LocalBundle } from './remote-install.js';
import { abortSsh, endSsh, onLines, type SshChild, spawnSsh, sshEnded } from './ssh-process.js';

export interface BootstrapOptions {
  readonly ssh: SshCommand;
  /** ssh's destination, `[user@]alias` as the user typed it. */
  readonly dest: string;
  /** --remote-fcpd: the remote command line that starts fcpd; undefined to search for one. */
  readonly remoteFcpd: string | undefined;
  /** false for --no-remote-install. */
  readonly remoteInstall: boolean;
  /** Each line ssh (or the remote fcpd) writes on stderr, for the user. */
  readonly onStderr: (line: string) => void;
  /** What -v shows. */
  readonly onNotice?: ((text: string) => void) | undefined;
}

/** The remote fcpd of one session, and the ssh that keeps it alive. */
export interface RemoteFcpd {
  readonly info: BootstrapInfo;
  /** The fcpd found by the bootstrap, as its data connections (carried) must run it again. */
  readonly cachedName: string | undefined;
  /** Ends the ssh's stdin (the remote fcpd exits), and makes sure the ssh is gone. */
  close(): Promise<void>;
  /**
   * After a session that ended well: ends the ssh's stdin and does not wait. The remote fcpd ends with its
   * session anyway, and its ssh then exits by itself; waiting for that costs the remote's exit and at least
   * one round trip at the end of every run (spec/PROTOCOL.md §8.1).
   */
  release(): void;
  /** The same at once, for a process about to exit (SIGINT): the ssh is told to go and not waited for. */
  abort(): void;
}

/** What one bootstrap ssh said: the line, or that the remote needs fcp's bundle first. */
type Outcome = { kind: 'line'; info: BootstrapInfo } | { kind: 'need-install'; node: string | null };

/** Starts the remote fcpd, installing the bundle first if the remote asks for it and may have it. */
export async function startRemoteFcpd(opts: BootstrapOptions): Promise<RemoteFcpd> {
  const bundle = opts.remoteFcpd === undefined ? await findLocalBundle() : undefined;
  const cachedName = bundle?.name;
  const first = await bootstrapOnce(opts, cachedName);
  if (first.outcome.kind === 'line') return running(first.ssh, first.outcome.info, cachedName);
  await endSsh(first.ssh);
  await install(opts, first.outcome.node, bundle);
  const second = await bootstrapOnce(opts, cachedName);
  if (second.outcome.kind === 'line') return running(second.ssh, second.outcome.info, cachedName);
  throw new FcpError(
    'FCP_ERR_NET_CONNECT',
    `fcp installed fcpd in ~/.cache/fcp on ${opts.dest}, but the remote does not find it there`,
  );
}

async function install(opts: BootstrapOptions, node: string | null, bundle: LocalBundle | undefined) {
  const refused = cannotInstall(opts.dest, node, bundle, opts.remoteInstall);
  if (refused !== undefined) throw refused;
  await installBundle(opts.ssh, opts.dest, bundle!, opts.onStderr);
}

function running(ssh: SshChild, info: BootstrapInfo, cachedName: string | undefined): RemoteFcpd {
  return {
    info,
    cachedName,
    close: () => endSsh(ssh),
    release: () => ssh.child.stdin?.end(),
    abort: () => abortSsh(ssh),
  };
}

/**
 * Runs the bootstrap ssh and reads its stdout until the line (the ssh keeps running) or NEED_INSTALL_TAG
 * (the remote script ends by itself). Bounded: BOOTSTRAP_SCAN_MAX_BYTES / _LINES of other output, and
 * BOOTSTRAP_TIMEOUT_MS from the start (a login through a jump host is slow: not less).
 */
async function bootstrapOnce(
  opts: BootstrapOptions,
  cachedName: string | undefined,
): Promise<{ ssh: SshChild; outcome: Outcome }> {
  const argv = bootstrapArgv(opts.ssh, opts.dest, remoteCommandFor(opts.remoteFcpd, cachedName));
  const ssh = adoptOrSpawn(argv, opts);
  let timer: NodeJS.Timeout | undefined;
  try {
    const outcome = await new Promise<Outcome>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new FcpError('FCP_ERR_NET_CONNECT', notStarted(opts.dest))),
        BOOTSTRAP_TIMEOUT_MS,
      );
      scanStdout(ssh, opts.dest, resolve, reject);
      void ssh.closed.then((how) => reject(sshEnded(opts.dest, how, ssh.lastStderr())));
    });
    return { ssh, outcome };
  } catch (err) {
    await endSsh(ssh);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** The bootstrap ssh the launcher started early when it guessed `argv` right (-v says which), else a new one. */
function adoptOrSpawn(argv: readonly string[], opts: BootstrapOptions): SshChild {
  const early = takeEarlyBootstrap(argv, opts.onStderr);
  if (early.kind === 'adopted') {
    opts.onNotice?.('ssh login started at launch, before the rest of fcp loaded');
    return early.ssh;
  }
  if (early.kind === 'wrong')
    opts.onNotice?.('the ssh started at launch did not match the options and config; ssh again');
  return spawnSsh(argv, opts.onStderr);
}

function notStarted(dest: string): string {
  return `ssh ${dest} did not start fcpd within ${BOOTSTRAP_TIMEOUT_MS / 1000} s`;
}

/** Feeds ssh's stdout lines to the parsers until one of them answers or the bounds are passed. */
function scanStdout(
  ssh: SshChild,
  dest: string,
  resolve: (o: Outcome) => void,
  reject: (err: unknown) => void,
): void {
  let bytes = 0;
  let lines = 0;
  let done = false;
  const finish = (settle: () => void) => {
    done = true;
    settle();
  };
  const tooMuch = () =>
    new FcpError(
      'FCP_ERR_PROTO_NOT_FCP',
      `ssh ${dest} printed ${lines} lines (${bytes} bytes) and not the line of fcpd --serve-once ` +
        `(do login scripts print on stdout?)`,
    );
  onLines(ssh.child.stdout!, (line) => {
    if (done) return;
    lines++;
    try {
      const outcome = parseOutcome(line);
      if (outcome !== undefined) finish(() => resolve(outcome));
      else if (lines >= BOOTSTRAP_SCAN_MAX_LINES) finish(() => reject(tooMuch()));
    } catch (err) {
      finish(() => reject(err));
    }
  });
  // Counted as it arrives: a login script printing without newlines is bounded too.
  ssh.child.stdout!.on('data', (chunk: string) => {
    bytes += chunk.length;
    if (!done && bytes > BOOTSTRAP_SCAN_MAX_BYTES) finish(() => reject(tooMuch()));
  });
}

/** The bootstrap line, the remote's NEED_INSTALL_TAG line, or undefined for any other output. */
export function parseOutcome(line: string): Outcome | undefined {
  const info = parseBootstrapLine(line);
  if (info !== undefined) return { kind: 'line', info };
  if (!line.startsWith(`${NEED_INSTALL_TAG} `)) return undefined;
  let node: unknown;
  try {
    node = (JSON.parse(line.slice(NEED_INSTALL_TAG.length + 1)) as { node?: unknown }).node;
  } catch {
    node = undefined;
  }
  if (node !== null && typeof node !== 'string')
    throw new FcpError('FCP_ERR_PROTO_MALFORMED', `the remote's ${NEED_INSTALL_TAG} line is malformed`);
  return { kind: 'need-install', node };
}
