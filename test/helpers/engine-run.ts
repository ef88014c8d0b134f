// A Sender and a Receiver over loopback socket pairs, no daemon and no handshake: the engine tests'
// harness (test/engine/*). Every event of each engine is kept, and may be watched as it happens.
import { mkdir, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Socket } from 'node:net';
import type { FcpError } from '../../src/protocol/index.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import { problemsTo, type TransferEvent, type TransferListener } from '../../src/transfer/events.js';
import { ConfinedRoot } from '../../src/transfer/store/confined-root.js';
import { Receiver } from '../../src/transfer/receiver.js';
import { createSelector } from '../../src/transfer/select.js';
import { Sender } from '../../src/transfer/sender.js';
import { localSourceRoot } from '../../src/transfer/store/source-spec.js';
import { createStats, type TransferStats } from '../../src/transfer/stats.js';
import { FramedConn } from '../../src/transport/framed-conn.js';
import { channelOf, socketPair } from './socket-pair.js';

export const hasher = await loadHasher();

/** Two ends of one connection: [the sender's socket, the receiver's socket]. */
export type SocketPair = [Socket, Socket];

/** The paths of the non-directory entries reported as `type`, sorted. */
export function pathsOf(events: readonly TransferEvent[], type: 'finished' | 'skipped'): string[] {
  const paths: string[] = [];
  for (const e of events) if (e.type === type && e.kind !== 'dir') paths.push(e.path);
  return paths.sort();
}

/** A listener that keeps every lost data connection's error. */
function lostTo(lost: FcpError[]): TransferListener {
  return (event) => {
    if (event.type === 'connection-lost') lost.push(event.error);
  };
}

export interface RunOptions {
  src: string;
  dest: string;
  /** Extra data connections besides the control one. */
  extra?: number;
  /** The control connection's sockets (default: a plain pair). */
  control?: SocketPair;
  /** Called with the receiver's end of each extra data connection, numbered from 0. */
  onExtra?: (receiverSocket: Socket, index: number) => void;
  /** Told each event as the engine reports it, before the next step (to change the disk at that moment). */
  onSenderEvent?: TransferListener;
  onReceiverEvent?: TransferListener;
}

export interface Run {
  sender: Sender;
  receiver: Receiver;
  senderStats: TransferStats;
  receiverStats: TransferStats;
  warnings: FcpError[];
  lost: FcpError[];
  partialsKept: string[];
  /** Every event each engine reported, in order. */
  senderEvents: TransferEvent[];
  receiverEvents: TransferEvent[];
  /** Both engines' outcome: resolves when both succeeded. */
  done: Promise<void>;
}

async function conns(pair: SocketPair | Promise<SocketPair>): Promise<[FramedConn, FramedConn]> {
  const [a, b] = await pair;
  return [new FramedConn(channelOf(a), hasher), new FramedConn(channelOf(b), hasher)];
}

/** Pushes the contents of `src` into `dest` with a Sender and a Receiver, as a push or a pull would. */
export async function startRun(opts: RunOptions): Promise<Run> {
  const controlSockets = opts.control ?? (await socketPair());
  const [tx, rx] = await conns(controlSockets);
  const warnings: FcpError[] = [];
  const lost: FcpError[] = [];
  const partialsKept: string[] = [];
  const senderEvents: TransferEvent[] = [];
  const receiverEvents: TransferEvent[] = [];
  const senderStats = createStats(performance.now());
  const receiverStats = createStats(performance.now());
  const receiver = new Receiver({
    hasher,
    control: rx,
    stats: receiverStats,
    listeners: [
      problemsTo((e) => warnings.push(e)),
      lostTo(lost),
      (e) => receiverEvents.push(e),
      ...(opts.onReceiverEvent === undefined ? [] : [opts.onReceiverEvent]),
    ],
    root: await ConfinedRoot.open(opts.dest),
    singleName: undefined,
    checksum: false,
    onPartialKept: (temp) => partialsKept.push(temp),
  });
  rx.setHandler(receiver);
  const sender = new Sender({
    hasher,
    control: tx,
    stats: senderStats,
    listeners: [
      problemsTo((e) => warnings.push(e)),
      lostTo(lost),
      (e) => senderEvents.push(e),
      ...(opts.onSenderEvent === undefined ? [] : [opts.onSenderEvent]),
    ],
    sources: [localSourceRoot(`${opts.src}/`)],
    selector: createSelector({}),
    checksum: false,
  });
  tx.setHandler(sender);
  for (let i = 0; i < (opts.extra ?? 0); i++) {
    const sockets = await socketPair();
    opts.onExtra?.(sockets[1], i);
    const [etx, erx] = await conns(sockets);
    receiver.addConnection(erx);
    erx.setHandler(receiver);
    sender.addConnection(etx);
    etx.setHandler(sender);
  }
  sender.start();
  const done = Promise.all([sender.done, receiver.done]).then(() => {
    sender.closeAll();
    receiver.closeAll();
  });
  return {
    sender,
    receiver,
    senderStats,
    receiverStats,
    warnings,
    lost,
    partialsKept,
    senderEvents,
    receiverEvents,
    done,
  };
}

export async function leftovers(dir: string): Promise<string[]> {
  const names = await readdir(dir, { recursive: true });
  return names.filter((n) => n.includes('.fcp-part') || n.includes('.fcp-meta'));
}

/** A scratch directory for one test file, and a function that makes a new, empty directory in it each call. */
export async function scratchDirs(
  prefix: string,
): Promise<{ tmp: string; freshDir(name: string): Promise<string> }> {
  const tmp = await mkdtemp(path.join(tmpdir(), prefix));
  let count = 0;
  return {
    tmp,
    async freshDir(name: string): Promise<string> {
      const dir = path.join(tmp, `${name}-${count++}`);
      await mkdir(dir);
      return dir;
    },
  };
}
