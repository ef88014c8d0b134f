/**
 * A transport whose channels are child processes: each open() runs a command and speaks the protocol over
 * its stdin and stdout. fcp over ssh runs `ssh HOST fcpd --stdio SOCKET` this way (one ssh, so one TCP
 * connection and one ssh window, per channel: spec/PROTOCOL.md §8.3); this file knows nothing of ssh and
 * runs whatever argv it is given (tests run fcpd --stdio directly).
 *
 * The channel is `encrypted: true` with an empty binding: the command is trusted to carry the bytes
 * privately (ssh encrypts and authenticates them), and it proves nothing about the daemon, so the
 * handshake's host proof against a pinned fingerprint does that (spec/SECURITY.md §14.4).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Duplex, type Readable, type Writable } from 'node:stream';
import { FcpError, toFcpError } from '../protocol/index.js';
import type { Channel } from './channel.js';
import type { DaemonIdentity, DialedChannel, Dialer } from './dialer.js';
import { HANDSHAKE_TIMEOUT_MS } from './hello.js';

/**
 * How long a child whose stdin close() ended gets to exit on its own before SIGTERM, and then before
 * SIGKILL (a cancelled channel's child gets SIGTERM at once).
 */
export const CHILD_KILL_GRACE_MS = 2_000;
/** A stderr line longer than this is cut: it is for a message, not a log. */
const MAX_STDERR_LINE = 1000;

export interface CommandDialerOptions {
  /** The daemon as messages name it: `the daemon at example.org (through ssh)`. */
  readonly peerName: string;
  /** The command of one channel, called at each open(): [file, ...args]. No shell is run. */
  readonly argv: () => readonly string[];
  /** The children's whole environment; default this process's. */
  readonly env?: NodeJS.ProcessEnv;
  /** Each line a child writes on stderr (ssh's warnings and errors). */
  readonly onStderr?: (line: string) => void;
}

/** A Dialer that also ends the children it started. */
export interface CommandDialer extends Dialer {
  /**
   * Ends every running child's stdin; one still running CHILD_KILL_GRACE_MS later gets SIGTERM, and SIGKILL
   * as long again after that. The grace lets a child relay what was written last (ssh, fcpd --stdio): its
   * pipe still holds it when our side is done.
   */
  close(): void;
}

/** How the last child that ended before its channel answered went: for unanswered()'s message. */
export interface Ending {
  readonly status: string;
  readonly lastStderr: string | undefined;
}

/** The command proves nothing about the daemon: the host proof and the pinned fingerprint do it all. */
export const UNPROVEN: DaemonIdentity = {
  hostKey: () => undefined,
  checkSameDaemon: () => {},
};

const NO_BINDING = new Uint8Array(0);

/** Channels made of child processes running `opts.argv()`. */
export function commandDialer(opts: CommandDialerOptions): CommandDialer {
  const children = new Set<ChildProcess>();
  let lastEnding: Ending | undefined;
  const open = async (_resume: Buffer | undefined, signal?: AbortSignal): Promise<DialedChannel> => {
    const child = await spawnChild(opts, signal);
    children.add(child);
    const channel = childChannel(child, opts, (ending) => {
      children.delete(child);
      lastEnding = ending;
    });
    if (signal !== undefined) cancelOnAbort(child, signal);
    return { channel, identity: UNPROVEN, resumption: () => undefined };
  };
  return dialerOfChildren(opts.peerName, open, children, () => lastEnding);
}

/**
 * The CommandDialer of `open`, whose channels are `children`' (each removed as it ends): close() ends them
 * all, then runs `also`; unanswered() tells `lastEnding()`.
 */
export function dialerOfChildren(
  peerName: string,
  open: Dialer['open'],
  children: ReadonlySet<ChildProcess>,
  lastEnding: () => Ending | undefined,
  also?: () => void,
): CommandDialer {
  return {
    peerName,
    open,
    unanswered: (err) => unanswered(peerName, err, lastEnding()),
    close: () => {
      for (const child of children) endThenTerminate(child);
      also?.();
    },
  };
}

/** Passes the child's stderr lines on, and once it has ended and its pipes closed, says how, with the last. */
export function watchChild(
  child: ChildProcess,
  onStderr: ((line: string) => void) | undefined,
  onEnded: (e: Ending) => void,
): void {
  let lastStderr: string | undefined;
  readLines(child, (line) => {
    lastStderr = line;
    onStderr?.(line);
  });
  child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
    onEnded({ status: code !== null ? `exit status ${code}` : `signal ${signal ?? '?'}`, lastStderr });
  });
}

/** Resolves once the child runs; a command that cannot start is FCP_ERR_NET_CONNECT naming it. */
export function spawnChild(opts: CommandDialerOptions, signal?: AbortSignal): Promise<ChildProcess> {
  const [file, ...args] = opts.argv();
  if (file === undefined) return Promise.reject(new FcpError('FCP_ERR_USAGE', 'empty command'));
  if (signal?.aborted === true) {
    return Promise.reject(new FcpError('FCP_ERR_NET_CLOSED', `connection to ${opts.peerName} cancelled`));
  }
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    child.once('spawn', () => {
      child.removeAllListeners('error');
      // Errors of a running child (a kill that fails) only matter through its channel.
      child.on('error', () => {});
      resolve(child);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        new FcpError('FCP_ERR_NET_CONNECT', `cannot run ${file} to reach ${opts.peerName}: ${err.message}`, {
          cause: err,
        }),
      );
    });
  });
}

/**
 * The child's stdout and stdin as one Duplex (ChildDuplex). Ending or destroying the channel ends the
 * child's stdin, which ends fcpd --stdio (and ssh) in good order; the child's exit ends the channel.
 */
function childChannel(
  child: ChildProcess,
  opts: CommandDialerOptions,
  onEnded: (e: Ending) => void,
): Channel {
  const stream = new ChildDuplex(child, opts.peerName);
  watchChild(child, opts.onStderr, (ending) => {
    onEnded(ending);
    stream.childClosed();
  });
  // FramedConn reports errors; this keeps one that comes before it listens from being uncaught.
  stream.on('error', () => {});
  return { stream, encrypted: true, binding: NO_BINDING, peer: opts.peerName };
}

/**
 * Reads the child's stdout, writes its stdin, with backpressure both ways (stdout is paused while our
 * reader is behind; a write completes when stdin took it). The readable side ends only once the child has
 * exited and its pipes closed ('close'), so whoever sees the channel end can already learn how the child
 * ended; a child that exits while we write ends the channel the same way, not with a pipe error.
 */
class ChildDuplex extends Duplex {
  readonly #stdin: Writable;
  readonly #stdout: Readable;
  #childClosed = false;
  #finished: (() => void) | undefined;

  constructor(child: ChildProcess, peerName: string) {
    super({ allowHalfOpen: false });
    this.#stdin = child.stdin!;
    this.#stdout = child.stdout!;
    this.#stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) this.#stdout.pause();
    });
    // EPIPE once the child is gone: its exit ends the channel, which says so better than the pipe.
    this.#stdin.on('error', () => {});
    this.#stdout.on('error', (err) => this.destroy(new Error(`${peerName}: ${err.message}`)));
  }

  /** The child exited and its pipes are closed: nothing more will come, and all we wrote was taken. */
  childClosed(): void {
    this.#childClosed = true;
    this.#finished?.();
    if (!this.destroyed) this.push(null);
  }

  override _read(): void {
    this.#stdout.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.#stdin.destroyed) {
      callback();
      return;
    }
    this.#stdin.write(chunk, () => callback());
  }

  /** What FramedConn writes under cork() leaves as one batch. */
  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (err?: Error | null) => void,
  ): void {
    if (this.#stdin.destroyed || chunks.length === 0) {
      callback();
      return;
    }
    this.#stdin.cork();
    for (let i = 0; i < chunks.length - 1; i++) this.#stdin.write(chunks[i]!.chunk);
    this.#stdin.write(chunks[chunks.length - 1]!.chunk, () => callback());
    this.#stdin.uncork();
  }

  /**
   * Our side is done once the child has exited: only then has it surely read what we wrote last (a pipe
   * holds it until then), so 'finish' means what FramedConn.flushed() needs from it.
   */
  override _final(callback: (err?: Error | null) => void): void {
    this.#stdin.end();
    if (this.#childClosed) callback();
    else this.#finished = () => callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#stdin.destroy();
    // Nobody reads the channel any more: drain the child's stdout, so a child still writing is never
    // stuck on a full pipe and sees its stdin end.
    this.#stdout.resume();
    callback(err);
  }
}

/** Calls `online` for each line of the child's stderr (cut at MAX_STDERR_LINE, the rest dropped). */
function readLines(child: ChildProcess, online: (line: string) => void): void {
  let pending = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    const parts = (pending + chunk).split('\n');
    pending = parts.pop()!.slice(0, MAX_STDERR_LINE);
    for (const line of parts) if (line !== '') online(line.replace(/\r$/, '').slice(0, MAX_STDERR_LINE));
  });
  child.stderr!.on('end', () => {
    if (pending !== '') online(pending);
  });
}

/** Aborting `signal` ends the child's stdin at once and kills it if it does not exit on its own. */
function cancelOnAbort(child: ChildProcess, signal: AbortSignal): void {
  const signalOnAbort = () => {
    child.stdin?.end();
    terminate(child);
  };
  signal.addEventListener('abort', signalOnAbort, { once: true });
  child.once('close', () => signal.removeEventListener('abort', signalOnAbort));
}

/** Ends the child's stdin, and terminates it if it has not exited within CHILD_KILL_GRACE_MS. */
export function endThenTerminate(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.stdin?.end();
  const timer = setTimeout(() => terminate(child), CHILD_KILL_GRACE_MS);
  child.once('exit', () => clearTimeout(timer));
}

/** SIGTERM, then SIGKILL if the child has not exited within CHILD_KILL_GRACE_MS. */
export function terminate(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_KILL_GRACE_MS);
  child.once('exit', () => clearTimeout(timer));
}

/**
 * A command that ends (or says nothing) before the daemon's first answer did not reach a daemon: the same
 * failure as a refused connection (exit 4), told with the child's last stderr line, which names the cause.
 */
function unanswered(peerName: string, err: unknown, ending: Ending | undefined): unknown {
  const e = toFcpError(err);
  if (e.code === 'FCP_ERR_NET_TIMEOUT') {
    return new FcpError(
      'FCP_ERR_NET_CONNECT',
      `cannot reach ${peerName}: no answer within ${HANDSHAKE_TIMEOUT_MS / 1000} s`,
      { cause: err },
    );
  }
  if ((e.code !== 'FCP_ERR_NET_CLOSED' && e.code !== 'FCP_ERR_PROTO_TRUNCATED') || ending === undefined)
    return err;
  const why = ending.lastStderr === undefined ? '' : `: ${ending.lastStderr}`;
  return new FcpError(
    'FCP_ERR_NET_CONNECT',
    `cannot reach ${peerName}: the command ended (${ending.status}) before the daemon answered${why}`,
    { cause: err },
  );
}
