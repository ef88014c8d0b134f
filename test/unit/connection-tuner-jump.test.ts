import * as assert from 'uvu/assert';
import { AUTO_MAX, ConnectionTuner, type TunerAction } from '../../src/client/connection-tuner.js';
import { describeTuning } from '../../src/client/tuning-line.js';
import { test } from '../helpers/test.js';

// --connections auto's first step on a path that holds each connection (src/client/connection-tuner.ts
// #jump), fed synthetic samples every 100 ms as auto-connections.ts takes them, with the jump's
// connections taking OPENING_MS to attach (a TLS start and two round trips through a 41 ms path).

const MS = 100;
const RTT_MS = 41;
const OPENING_MS = 300;

/** A per-flow shaper: 10 MB/s per connection, 250 MB/s for the link. */
const shaped = (n: number): number => Math.min(n * 10e6, 250e6);

/**
 * Runs a tuner against `link` (bytes/s for n attached connections), the event loop 5 % busy per 20 MB/s
 * (the emulator's shaped row read 2-6 % at 2 x 10 MB/s). Returns the actions that were not a wait, each
 * with the sampled time it was taken at, and the tuner.
 */
function run(link: (n: number) => number): { tuner: ConnectionTuner; actions: [number, TunerAction][] } {
  const tuner = new ConnectionTuner(AUTO_MAX);
  const actions: [number, TunerAction][] = [];
  let open = tuner.target;
  let wanted = open;
  let attachAt = 0;
  for (let t = MS; t <= 10_000 && tuner.stopped === undefined; t += MS) {
    if (wanted !== open && t >= attachAt) open = wanted;
    const rate = link(open);
    const bytes = (rate * MS) / 1000;
    const a = tuner.sample({
      ms: MS,
      bytes,
      connections: open,
      opening: wanted - open,
      elu: Math.min(1, (0.05 * rate) / 20e6),
      cpuMs: bytes * 2e-6,
      remainingBytes: Infinity,
      rttMs: RTT_MS,
      quietMs: 0,
    });
    if (a.kind === 'wait') continue;
    actions.push([t, a]);
    if (a.kind === 'shrink') open = wanted = a.to;
    if (a.kind === 'grow') {
      wanted = a.to;
      attachAt = t + OPENING_MS;
    }
  }
  return { tuner, actions };
}

/**
 * Feeds a tuner 2 connections moving `bytes` per interval, `elu` busy, over `rttMs`, until it grows (for
 * at most 3 s of samples); returns it and the sampled time it grew at (0: it did not).
 */
function steadyTwo(at: { bytes: number; elu: number; rttMs: number }): {
  tuner: ConnectionTuner;
  grewAt: number;
} {
  const tuner = new ConnectionTuner(AUTO_MAX);
  let grewAt = 0;
  for (let t = MS; t <= 3000 && grewAt === 0; t += MS) {
    const s = {
      ms: MS,
      connections: 2,
      opening: 0,
      cpuMs: at.bytes * 2e-6,
      remainingBytes: Infinity,
      quietMs: 0,
    };
    if (tuner.sample({ ...s, ...at }).kind === 'grow') grewAt = t;
  }
  return { tuner, grewAt };
}

test('a per-flow shaper: the jump is taken once the warm-up shows it, its yardstick measured while the jump opens', () => {
  // Measured first, over 8 pieces and 400 ms, the yardstick kept the copy at 2 x 10 MB/s until 0.8 s.
  const { tuner, actions } = run(shaped);
  assert.equal(
    actions.map(([, a]) => a),
    [{ kind: 'grow', to: 32 }, { kind: 'stop' }],
  );
  const jumpAt = actions[0]?.[0] ?? Infinity;
  assert.ok(jumpAt <= 500, `the jump taken at ${jumpAt} ms`);
  assert.is(tuner.stopped, 'cap');
  // The yardstick spans the warm-up's last two intervals and those the new connections took to attach.
  assert.is(tuner.steps[0]?.connections, 2);
  assert.is(tuner.steps[0]?.rate, 20e6);
  assert.match(
    describeTuning(tuner, true),
    /^connections: 2 \(20 MB\/s, CPU 5 % 2\.0 s\/GB, at 0\.\d s\) -> 32 /,
  );
});

test('a bottleneck all connections share: the early jump is undone, however soon it was taken', () => {
  for (const at32 of [20e6, 25e6, 33e6]) {
    const { tuner, actions } = run((n) => (n <= 2 ? 20e6 : at32));
    assert.equal(
      actions.map(([, a]) => a),
      [
        { kind: 'grow', to: 32 },
        { kind: 'shrink', to: 2 },
      ],
    );
    assert.is(tuner.stopped, 'no-gain');
  }
});

test("a jump no more than fourfold (the event loop's room) is an ordinary step: its yardstick measured first", () => {
  // 2 x 10 MB/s at 45 % busy: 4 would fill the event loop; fourfold is 8, taken after a full measurement.
  const { tuner, grewAt } = steadyTwo({ bytes: 2e6, elu: 0.45, rttMs: RTT_MS });
  assert.is(tuner.target, 8);
  assert.ok(grewAt >= 800, `grew at ${grewAt} ms`);
});

test("the event loop's room for the jump is read from the quieter warm-up interval: one stall does not shrink it", () => {
  // 2 x 10 MB/s, the intervals 3 % and 12 % busy in turn (a loaded box): the mean, 7.5 %, allowed 24.
  const tuner = new ConnectionTuner(AUTO_MAX);
  let grew = 0;
  for (let i = 0; i < 30 && grew === 0; i++) {
    const s = { ms: MS, bytes: 2e6, connections: 2, opening: 0, cpuMs: 4, remainingBytes: Infinity };
    const a = tuner.sample({ ...s, elu: i % 2 === 0 ? 0.03 : 0.12, rttMs: RTT_MS, quietMs: 0 });
    if (a.kind === 'grow') grew = a.to;
  }
  assert.is(grew, 32);
});

test('a session that ends while the jump opens still reports the first step', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  for (let i = 0; i < 30 && tuner.target === 2; i++) {
    const s = {
      ms: MS,
      bytes: 2e6,
      connections: 2,
      opening: 0,
      elu: 0.05,
      cpuMs: 4,
      remainingBytes: Infinity,
    };
    tuner.sample({ ...s, rttMs: RTT_MS, quietMs: 0 });
  }
  assert.is(tuner.target, 32);
  tuner.sample({
    ms: MS,
    bytes: 2e6,
    connections: 2,
    opening: 30,
    elu: 0.3,
    cpuMs: 4,
    remainingBytes: 0,
    rttMs: RTT_MS,
    quietMs: 0,
  });
  tuner.stop('end');
  assert.equal(
    tuner.steps.map((s) => [s.connections, s.rate]),
    [[2, 20e6]],
  );
});

test('window-bound connections (a WAN): the first step grows fourfold once the warm-up shows it, judged against a figure taken while the 6 open', () => {
  // 2 connections at 100 MB/s each over 41 ms: 4.1 MB in flight each, a window's worth. Measured first
  // (400 ms more), the step kept the emulated WAN at 2 connections, ~200 of 250 MB/s, until 0.7 s.
  const { tuner, actions } = run((n) => (n <= 2 ? 200e6 : 240e6));
  assert.equal(
    actions.map(([, a]) => a),
    [{ kind: 'grow', to: 8 }, { kind: 'stop' }],
  );
  const grewAt = actions[0]?.[0] ?? Infinity;
  assert.ok(grewAt <= 400, `grew at ${grewAt} ms`);
  // +20 % where 6 more window-bound connections would add +300 %: the link is full, no step to 16.
  assert.is(tuner.stopped, 'saturated');
  assert.equal(
    tuner.steps.map((s) => [s.connections, s.rate]),
    [
      [2, 200e6],
      [8, 240e6],
    ],
  );
});

test('window-bound connections too slow to fill a measurement in two intervals: the first step is measured first', () => {
  // 2 x 7 MB/s over 300 ms (a satellite hop): 2.1 MB in flight each, but 1.4 MB per interval, a piece or
  // two per connection: too few to judge a step by.
  const { tuner, grewAt } = steadyTwo({ bytes: 1.4e6, elu: 0.05, rttMs: 300 });
  assert.is(tuner.target, 8);
  assert.ok(grewAt >= 800, `grew at ${grewAt} ms`);
});

test.run();
