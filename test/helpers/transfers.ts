// For e2e files that share one served tree and daemon (servedTree, servedByFcpd), and tests of fcp status /
// cancel / --background: a private registry per test (XDG_STATE_HOME), and waits on what the registry says
// (a transfer listed, moving, ended) rather than on time.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { listTransfers, registryDir, type TransferStatus } from '../../src/client/transfer-registry.js';
import type { TransferDescription } from '../../src/client/transfer-status.js';
import { type ChildDaemon, type InProcessDaemon, spawnDaemon, startInProcessDaemon } from './daemon.js';
import { eventually } from './detached.js';
import { test } from './test.js';
import { removeTree } from './tree.js';

const stateHomes: string[] = [];

/** A push of /src to 127.0.0.1:7523:dst/ over one connection, as the registry's tests describe one. */
export function samplePush(id: string): TransferDescription {
  return {
    id,
    direction: 'push',
    host: '127.0.0.1',
    port: 7523,
    sources: ['/src'],
    destination: 'dst/',
    connections: 1,
    bwlimit: null,
    log: null,
  };
}

/** A fresh XDG_STATE_HOME, and the registry directory fcp uses under it; removed when the test process exits. */
export function privateState(): { env: Record<string, string>; dir: string } {
  const home = mkdtempSync(path.join(tmpdir(), 'fcp-e2e-xdg-'));
  // Tests take one per case and never removed them (22 left in TMPDIR per full run): they go at exit.
  if (stateHomes.length === 0)
    process.once('exit', () => {
      for (const dir of stateHomes) rmSync(dir, { recursive: true, force: true });
    });
  stateHomes.push(home);
  return { env: { XDG_STATE_HOME: home }, dir: registryDir({ XDG_STATE_HOME: home }) };
}

/** Waits until the registry lists a transfer `check` accepts, and returns it. */
export async function transferWhere(
  dir: string,
  what: string,
  check: (t: TransferStatus) => boolean,
  ms = 20_000,
): Promise<TransferStatus> {
  let found: TransferStatus | undefined;
  await eventually(ms, what, () => {
    found = listTransfers(dir).find(check);
    return found !== undefined;
  });
  return found!;
}

/** A transfer to `destination` that has moved at least `bytes`. */
export function movingTo(destination: string, bytes = 1): (t: TransferStatus) => boolean {
  return (t) => t.state === 'running' && t.destination === destination && t.bytes_done >= bytes;
}

/** What a test file needs of its daemon: where it is (remote paths) and how to stop it. */
interface ServingDaemon {
  remote(p: string): string;
  stop(): Promise<unknown>;
}

/** A temp directory with a daemon serving `served` inside it, for the whole test file. */
export interface ServedTree<D extends ServingDaemon = InProcessDaemon> {
  tmp: string;
  served: string;
  daemon(): D;
  /** `127.0.0.1:port:p`. */
  remote(p: string): string;
}

/**
 * Registers `test.before` (a temp dir, `served` in it, `setup`, the daemon `start` returns) and `test.after`
 * (daemon stopped, temp dir removed) on the default suite: the one place of that pair for every e2e file.
 */
function servedBy<D extends ServingDaemon>(
  prefix: string,
  start: (served: string) => Promise<D>,
  setup: (tree: ServedTree<D>) => Promise<unknown>,
): ServedTree<D> {
  const tmp = mkdtempSync(path.join(tmpdir(), prefix));
  let running: D | undefined;
  const daemon = (): D => {
    if (running === undefined) throw new Error('daemon not started');
    return running;
  };
  const tree: ServedTree<D> = {
    tmp,
    served: path.join(tmp, 'served'),
    daemon,
    remote: (p) => daemon().remote(p),
  };
  test.before(async () => {
    mkdirSync(tree.served);
    await setup(tree);
    running = await start(tree.served);
  });
  test.after(async () => {
    try {
      await running?.stop();
    } finally {
      await removeTree(tmp);
    }
  });
  return tree;
}

/** servedBy with an in-process daemon (fast to start; its logs readable). */
export function servedTree(prefix: string, setup: (tree: ServedTree) => Promise<unknown>): ServedTree {
  return servedBy(prefix, (served) => startInProcessDaemon({ root: served }), setup);
}

/** servedBy with fcpd as a child process: the daemon users run, its own process and exit. */
export function servedByFcpd(
  prefix: string,
  setup: (tree: ServedTree<ChildDaemon>) => Promise<unknown> = async () => {},
): ServedTree<ChildDaemon> {
  return servedBy(prefix, (served) => spawnDaemon({ root: served }), setup);
}
