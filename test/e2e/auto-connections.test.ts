// --connections auto end to end (src/client/connection-tuner.ts, README "Connections"): the real client and
// daemon through the bench's WAN emulator. A per-flow shaper (each connection capped) makes every added
// connection pay; a link cap shared by all makes none pay. The assertions are on the tuner's decisions
// (its -v line, --json's summary, the connections the emulator accepted), never on times.
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { startWanProxy, type WanProxy } from '../../bench/wan-proxy.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { describeRun, runFcp, type RunResult } from '../helpers/cli.js';
import { HOST } from '../helpers/daemon.js';
import { eventually } from '../helpers/detached.js';
import { eventsNamed, type JsonEvent, parseEvents, readEventSchema } from '../helpers/json-events.js';
import { sha256File, writeRandomFile } from '../helpers/reliability.js';
import { test } from '../helpers/test.js';
import { servedTree } from '../helpers/transfers.js';

const MiB = 1024 * 1024;
/**
 * Large enough that a step at 2 and one at 8 are measured well before the end. With the first step waiting
 * out slow start it may take 2.4 s at 2 x 4 MB/s; 80 MiB then once ended (clean-clone CI, 4.8 s) before the
 * step to 8 was judged, and the tuning line named only 2.
 */
const SHAPED_SIZE = 144 * MiB;
/** The pull asserts that no step failed to pay: at 144 MiB it reaches a third step, 8 -> 32 on a 32 MB/s link. */
const PULL_SHAPED_SIZE = 80 * MiB;
const SHARED_SIZE = 128 * MiB;
/**
 * A DETACHed connection closes once the pieces in flight on it are acknowledged: 8-10 MiB each, once 19
 * (the emulator's 4 MiB window, the loopback socket buffers, the daemon's queued writes), drained at its
 * share of the shared link, 3-6 s after the decision on a loaded box. The pull must outlast that for the
 * daemon, not the session's end, to close them: 2 -> 8 -> 16 undone at 16 was judged at 6-12 s of a 10-16 s
 * pull there.
 */
const PULL_SHARED_SIZE = 192 * MiB;

const { tmp, served, daemon } = servedTree('fcp-e2e-auto-conns-', async (t) => {
  await writeRandomFile(join(t.tmp, 'shaped.bin'), SHAPED_SIZE);
  await writeRandomFile(join(t.tmp, 'shared.bin'), SHARED_SIZE);
  await writeRandomFile(join(t.served, 'pull-me.bin'), PULL_SHAPED_SIZE);
  await writeRandomFile(join(t.served, 'pull-shared.bin'), PULL_SHARED_SIZE);
});

const proxies: WanProxy[] = [];
test.after.each(async () => {
  for (const p of proxies.splice(0)) await p.close();
});

/** The emulator in front of the daemon: 2 ms RTT, 4 MiB windows, and the caps given. */
async function emulator(caps: { perConnRateBps?: number; linkRateBps?: number }): Promise<WanProxy> {
  const proxy = await startWanProxy({
    listenPort: 0,
    target: { host: HOST, port: daemon().port },
    rttMs: 2,
    windowBytes: 4 * MiB,
    ...caps,
  });
  proxies.push(proxy);
  return proxy;
}

async function fcp(args: readonly string[]): Promise<{ r: RunResult; events: JsonEvent[]; tuning: string }> {
  const r = await runFcp(['--json', '-v', '--retries', '0', ...args], { timeoutMs: 120_000 });
  assert.is(r.code, EXIT.OK, describeRun(r));
  const events = parseEvents(readEventSchema(), r.stdout);
  const tuning = r.stderr.split('\n').find((l) => l.startsWith('fcp: connections: ')) ?? '';
  assert.ok(tuning !== '', `no connections line\n${describeRun(r)}`);
  return { r, events, tuning };
}

function summaryConnections(events: readonly JsonEvent[]): unknown {
  return eventsNamed(events, 'summary')[0]?.['connections'];
}

/**
 * A run on a shared link whose tuning ended on a step that did not pay: the most connections it opened
 * (that step's) and the count it went back to. Which step that is depends on the yardstick: 2 fill the
 * link, so 2 -> 8 does not pay, unless the 2-connection step was measured through a stall of the loaded box
 * (once 11 MB/s of 24), when 8 reads as a gain and 8 -> 16 is the step that does not pay. Either way the
 * point here is a step undone cleanly.
 */
function undoneStep(tuning: string, r: RunResult): { most: number; backTo: number } {
  const m = /: the last step did not pay, back to (\d+)$/.exec(tuning);
  assert.ok(m !== null, describeRun(r));
  const counts = [...tuning.matchAll(/(?:: |-> )(\d+) \(/g)].map((c) => Number(c[1]));
  const most = Math.max(...counts);
  const backTo = Number(m[1]);
  assert.ok(counts.length >= 2 && most > backTo && counts.at(-1) === most, describeRun(r));
  return { most, backTo };
}

/**
 * The -v line of a run on a per-flow shaper: it starts at 2 and grows. The first step grows fourfold, or
 * (where the round trip read 10 ms or more, on a loaded box even through this 2 ms emulator, once 89 ms)
 * straight to what the event loop could carry, a step the transfer may end before judging.
 */
function assertGrewFromTwo(tuning: string, r: RunResult): void {
  const grew = /^fcp: connections: 2 \([^)]*\) -> (\d+) \(/.exec(tuning);
  const ended = /^fcp: connections: 2 \([^)]*\) over [^:]*: the transfer ended before another step$/;
  assert.ok(grew !== null ? Number(grew[1]) >= 8 : ended.test(tuning), describeRun(r));
}

test('push, each connection capped at 4 MB/s: auto grows from 2 mid-file and the file arrives intact', async () => {
  const proxy = await emulator({ perConnRateBps: 4e6 });
  const { r, events, tuning } = await fcp(['push', join(tmp, 'shaped.bin'), `${HOST}:${proxy.port}:grow/`]);
  assertGrewFromTwo(tuning, r);
  // The round trip the tuner judges window-bound paths by is the path's: at least the emulator's 2 ms.
  const rtt = / over a ([\d.]+) ms round trip: /.exec(tuning);
  assert.ok(rtt !== null && Number(rtt[1]) >= 2, describeRun(r));
  assert.ok((summaryConnections(events) as number) >= 8, describeRun(r));
  assert.ok(proxy.stats.connections >= 8, `${proxy.stats.connections} connections through the emulator`);
  assert.equal(eventsNamed(events, 'connection_lost'), []);
  assert.is(await sha256File(join(served, 'grow', 'shaped.bin')), await sha256File(join(tmp, 'shaped.bin')));
});

test('pull, each connection capped: auto grows, so the daemon sends on the new connections as they attach', async () => {
  const proxy = await emulator({ perConnRateBps: 4e6 });
  const dest = join(tmp, 'pulled');
  const { r, events, tuning } = await fcp(['pull', `${HOST}:${proxy.port}:pull-me.bin`, `${dest}/`]);
  assertGrewFromTwo(tuning, r);
  assert.not.match(tuning, /did not pay, back to 2$/, describeRun(r));
  assert.ok((summaryConnections(events) as number) >= 8, describeRun(r));
  // The daemon sent on them: 8 connections or more each carried a piece or more to the client.
  const carried = proxy.delivered().filter((d) => d.down >= MiB).length;
  assert.ok(carried >= 8, `${carried} connections carried file data: ${JSON.stringify(proxy.delivered())}`);
  assert.is(await sha256File(join(dest, 'pull-me.bin')), await sha256File(join(served, 'pull-me.bin')));
});

/**
 * Retired, not lost: no connection_lost, no replacement attached (`most` through the emulator in all), nothing
 * in the daemon's log it calls a problem, and the session done with the file sent.
 */
function assertRetiredQuietly(
  r: RunResult,
  events: readonly JsonEvent[],
  proxy: WanProxy,
  log: readonly string[],
  direction: 'push' | 'pull',
  most: number,
): void {
  assert.equal(eventsNamed(events, 'connection_lost'), [], describeRun(r));
  assert.is(summaryConnections(events), most, describeRun(r));
  assert.is(proxy.stats.connections, most, 'no replacement was attached');
  assert.equal(
    log.filter((l) => /FCP_ERR|error|lost|closed|reset/i.test(l)),
    [],
    log.join('\n'),
  );
  const done = new RegExp(` ${direction}: session done \\(1 sent, 0 skipped, 0 failed`);
  assert.ok(
    log.some((l) => done.test(l)),
    log.join('\n'),
  );
}

test('push over a link shared by all connections: a step that does not pay is retired cleanly', async () => {
  const proxy = await emulator({ linkRateBps: 24e6 });
  const mark = daemon().logs.length;
  const { r, events, tuning } = await fcp(['push', join(tmp, 'shared.bin'), `${HOST}:${proxy.port}:shrink/`]);
  const { most } = undoneStep(tuning, r);
  assertRetiredQuietly(r, events, proxy, daemon().logs.slice(mark), 'push', most);
  assert.is(
    await sha256File(join(served, 'shrink', 'shared.bin')),
    await sha256File(join(tmp, 'shared.bin')),
  );
});

test('pull over a shared link: a step that does not pay has its connections DETACHed mid-file', async () => {
  const proxy = await emulator({ linkRateBps: 24e6 });
  const mark = daemon().logs.length;
  const dest = join(tmp, 'pulled-shared');
  const { r, events, tuning } = await fcp(['pull', `${HOST}:${proxy.port}:pull-shared.bin`, `${dest}/`]);
  const { most, backTo } = undoneStep(tuning, r);
  // Closed by the daemon while the session went on: the daemon ends a data connection of its own accord
  // only to retire it (DETACH, spec/PROTOCOL.md §3.2); at the session's end the client closes first
  // (src/daemon/sessions.ts waits for it). So the emulator saw the daemon's FIN first on exactly the
  // retired ones, and the client's on the ones kept. Said by who closed first, not by how much of the file
  // had crossed by then: that depends on the tuner's path, which the load of the machine decides.
  await eventually(10_000, 'every connection through the emulator closed', () => proxy.stats.active === 0);
  // One retired connection may still carry a late piece when the file's last byte arrives: the session
  // then ends and the client closes it first (seen in 1 run in 4-5 since session 17; the daemon logs no
  // problem and nothing is lost, which assertRetiredQuietly holds). All the others the daemon closed.
  const closers = proxy.closed.map((c) => c.firstEnd);
  const byDaemon = closers.filter((c) => c === 'target').length;
  assert.ok(byDaemon >= most - backTo - 1 && byDaemon <= most - backTo, JSON.stringify(proxy.closed));
  assert.is(closers.length, most, JSON.stringify(proxy.closed));
  assertRetiredQuietly(r, events, proxy, daemon().logs.slice(mark), 'pull', most);
  assert.is(
    await sha256File(join(dest, 'pull-shared.bin')),
    await sha256File(join(served, 'pull-shared.bin')),
  );
});

test('-n 3 still opens exactly 3 connections: no tuning', async () => {
  const proxy = await emulator({ perConnRateBps: 4e6 });
  const { r, events, tuning } = await fcp([
    'push',
    '-n',
    '3',
    join(tmp, 'shaped.bin'),
    `${HOST}:${proxy.port}:fixed/`,
  ]);
  assert.is(tuning, 'fcp: connections: 3 (--connections 3)', describeRun(r));
  assert.is(proxy.stats.connections, 3);
  assert.is(summaryConnections(events), 3);
  assert.is(await sha256File(join(served, 'fixed', 'shaped.bin')), await sha256File(join(tmp, 'shaped.bin')));
});

test.run();
