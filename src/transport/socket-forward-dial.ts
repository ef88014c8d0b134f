/**
 * A transport whose channels are local unix sockets that a child process forwards: each open() runs a
 * command told to listen on a fresh socket in a private directory (fcp over ssh: `ssh -N -L LOCAL:RELAY`,
 * spec/PROTOCOL.md §8.3), waits until it listens, and connects to it once. The child lives as long as that
 * one connection. Like command-dial.ts it knows nothing of ssh, and the channel is `encrypted: true` with an
 * empty binding and an unproven identity: the handshake's pinned host proof does that (spec/SECURITY.md §14.4).
 */
import { type ChildProcess } from 'node:child_process';
import { type FSWatcher, mkdtempSync, rmSync, unlinkSync, watch } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FcpError } from '../protocol/index.js';
import {
  type CommandDialer,
  dialerOfChildren,
  endThenTerminate,
  type Ending,
  spawnChild,
  UNPROVEN,
  watchChild,
} from './command-dial.js';
import type { DialedChannel } from './dialer.js';

/** How long the command may take to listen: an ssh login through a jump host is slow (as the bootstrap's). */
export const FORWARD_LISTEN_TIMEOUT_MS = 30_000;
/** A socket that exists but does not listen yet (bind, then listen) is tried again this often... */
const NOT_YET_RETRY_MS = 10;
/** ...this many times at most. */
const NOT_YET_RETRIES = 500;

const NO_BINDING = new Uint8Array(0);

export interface SocketForwardDialerOptions {
  /** The daemon as messages name it. */
  readonly peerName: string;
  /** The command of one channel, listening on `local`: [file, ...args]. No shell is run. */
  readonly argv: (local: string) => readonly string[];
  /** The children's whole environment; default this process's. */
  readonly env?: NodeJS.ProcessEnv;
  /** Each line a child writes on stderr. */
  readonly onStderr?: (line: string) => void;
  /**
   * What makes a started child listen on `local` when its command could not say where to forward yet (an
   * ssh master logged in ahead: ssh-prelogin.ts); run by open() before it connects.
   */
  readonly arm?: (local: string, child: ChildProcess, signal?: AbortSignal) => Promise<void>;
}

/** A forwarding dialer that can also start children ahead of need (ForwardDialer.prestart). */
export interface ForwardDialer extends CommandDialer {
  /**
   * Starts `n` children now, without connecting to them: each logs in and listens meanwhile, and the next
   * open()s take them in turn. A child's socket is only connected by open(), so the daemon sees nothing of
   * a spare until then; close() ends the ones never taken.
   */
  prestart(n: number): void;
}

/** One child and the socket it listens on once ready. */
interface Forwarding {
  readonly child: ChildProcess;
  readonly local: string;
}

/** Channels made of `argv(local)` children and one connection to each one's `local` socket. */
export function socketForwardDialer(opts: SocketForwardDialerOptions): ForwardDialer {
  const children = new Set<ChildProcess>();
  const spares: Array<Promise<Forwarding>> = [];
  let dir: string | undefined;
  let count = 0;
  let lastEnding: Ending | undefined;
  let closed = false;
  const start = async (signal?: AbortSignal): Promise<Forwarding> => {
    // mkdtemp makes it 0700: only this user (and root) can reach the sockets in it.
    dir ??= mkdtempSync(path.join(tmpdir(), 'fcp-fwd-'));
    const local = path.join(dir, `${++count}.sock`);
    const child = await spawnChild(
      {
        peerName: opts.peerName,
        argv: () => opts.argv(local),
        ...(opts.env === undefined ? {} : { env: opts.env }),
      },
      signal,
    );
    if (closed) {
      // A spare whose spawn close() overtook: end it at once, or nothing would.
      endThenTerminate(child);
      throw new FcpError('FCP_ERR_NET_CLOSED', `connection to ${opts.peerName} cancelled`);
    }
    children.add(child);
    child.once('exit', () => child.stdin?.end());
    watchChild(child, opts.onStderr, (ending) => {
      children.delete(child);
      lastEnding = ending;
      unlinkQuietly(local);
    });
    return { child, local };
  };
  const open = async (_resume: Buffer | undefined, signal?: AbortSignal): Promise<DialedChannel> => {
    const { child, local } = await (spares.shift() ?? start(signal));
    try {
      await opts.arm?.(local, child, signal);
      const socket = await connectOnceListening(local, child, opts.peerName, signal);
      // One connection per child: once it closed, the child has nothing left to forward. Its stdin's end
      // is what ends it (a wrapper that a signal would leave its command behind).
      socket.once('close', () => endThenTerminate(child));
      socket.on('error', () => {});
      if (signal !== undefined) destroyOnAbort(socket, signal);
      const channel = { stream: socket, encrypted: true, binding: NO_BINDING, peer: opts.peerName };
      return { channel, identity: UNPROVEN, resumption: () => undefined };
    } catch (err) {
      endThenTerminate(child);
      throw err;
    }
  };
  const prestart = (n: number) => {
    for (let i = 0; i < n; i++) {
      const spare = start();
      // A spare that cannot start fails the open() that takes it, not now.
      spare.catch(() => {});
      spares.push(spare);
    }
  };
  const dialer = dialerOfChildren(
    opts.peerName,
    open,
    children,
    () => lastEnding,
    () => {
      closed = true;
      spares.length = 0;
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
  );
  return { ...dialer, prestart };
}

/** Resolves once `child` listens on `file` (see connectOnceListening; the probe connection is closed). */
export async function untilListening(
  file: string,
  child: ChildProcess,
  peerName: string,
  signal?: AbortSignal,
): Promise<void> {
  (await connectOnceListening(file, child, peerName, signal)).destroy();
}

/**
 * Connects to `local` as soon as the child listens there: the directory is watched for the socket to
 * appear (no polling while a login runs), and a socket bound but not yet listening is tried again a few
 * times. Rejects when the child exits first (its last stderr line says why), on abort, and after
 * FORWARD_LISTEN_TIMEOUT_MS.
 */
function connectOnceListening(
  local: string,
  child: ChildProcess,
  peerName: string,
  signal?: AbortSignal,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let trying = false;
    let retries = 0;
    let retry: NodeJS.Timeout | undefined;
    const timer = setTimeout(
      () => fail(`${peerName}: not listening after ${FORWARD_LISTEN_TIMEOUT_MS / 1000} s`),
      FORWARD_LISTEN_TIMEOUT_MS,
    );
    const done = () => {
      clearTimeout(timer);
      clearTimeout(retry);
      watcher.close();
      child.off('exit', childOnExit);
      signal?.removeEventListener('abort', signalOnAbort);
    };
    const fail = (
      message: string,
      code: 'FCP_ERR_NET_CONNECT' | 'FCP_ERR_NET_CLOSED' = 'FCP_ERR_NET_CONNECT',
    ) => {
      done();
      reject(new FcpError(code, message));
    };
    const childOnExit = () =>
      fail(`cannot reach ${peerName}: the forwarding command ended before it listened`);
    const signalOnAbort = () => fail(`connection to ${peerName} cancelled`, 'FCP_ERR_NET_CLOSED');
    const attempt = () => {
      if (trying) return;
      trying = true;
      const socket = net.connect({ path: local });
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        done();
        resolve(socket);
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        trying = false;
        // ENOENT: not there yet (the watcher calls again); ECONNREFUSED: bound, not listening yet.
        if (err.code === 'ECONNREFUSED' && retries++ < NOT_YET_RETRIES)
          retry = setTimeout(attempt, NOT_YET_RETRY_MS);
        else if (err.code !== 'ENOENT' && err.code !== 'ECONNREFUSED')
          fail(`cannot reach ${peerName} through ${local}: ${err.code ?? err.message}`);
      });
    };
    const watcher: FSWatcher = watch(path.dirname(local), (_event, name) => {
      if (name === null || name === path.basename(local)) attempt();
    });
    watcher.on('error', () => {});
    child.once('exit', childOnExit);
    signal?.addEventListener('abort', signalOnAbort, { once: true });
    // It may have appeared before the watcher started.
    attempt();
  });
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Gone with its directory already.
  }
}

/** Aborting `signal` closes the channel at once, which ends its child (see open()). */
function destroyOnAbort(socket: net.Socket, signal: AbortSignal): void {
  const signalOnAbort = () => socket.destroy();
  signal.addEventListener('abort', signalOnAbort, { once: true });
  socket.once('close', () => signal.removeEventListener('abort', signalOnAbort));
}
