import * as assert from 'uvu/assert';
import {
  AUTO_MAX,
  AUTO_START,
  ConnectionTuner,
  type TunerAction,
  type TunerSample,
} from '../../src/client/connection-tuner.js';
import { describeTuning } from '../../src/client/tuning-line.js';
import { SAMPLE_MS } from '../../src/client/auto-connections.js';
import { test } from '../helpers/test.js';

// --connections auto's decisions (src/client/connection-tuner.ts), fed synthetic samples: no sockets, no
// clock. A "link" here is a function from open connections to bytes per second.

/** The interval auto-connections.ts samples at (SAMPLE_MS). */
const MS = 100;
/** The client's CPU per byte unless a test says otherwise: 2 CPU-seconds per GB, the same at any count. */
const CPU_MS_PER_BYTE = 2e-6;

/** One interval at `connections` open, moving `rate` bytes/s, with the event loop `elu` busy. */
function sample(connections: number, rate: number, elu = 0.2, remainingBytes = Infinity): TunerSample {
  const bytes = (rate * MS) / 1000;
  const cpuMs = bytes * CPU_MS_PER_BYTE;
  return { ms: MS, bytes, connections, opening: 0, elu, cpuMs, remainingBytes, rttMs: 0, quietMs: 0 };
}

/** One interval at `connections` attached and `opening` more on their way, moving `rate` bytes/s. */
function whileOpening(connections: number, opening: number, rate: number): TunerSample {
  return { ...sample(connections, rate), opening };
}

/**
 * Runs the tuner against `link` (bytes/s for n connections), opening what it asks for at once, for at most
 * `limit` intervals; returns every action that was not a wait.
 */
function drive(
  tuner: ConnectionTuner,
  link: (n: number) => number,
  elu: (n: number) => number = () => 0.2,
  limit = 100,
): TunerAction[] {
  const actions: TunerAction[] = [];
  let open = tuner.target;
  for (let i = 0; i < limit && tuner.stopped === undefined; i++) {
    const a = tuner.sample(sample(open, link(open), elu(open)));
    if (a.kind === 'wait') continue;
    actions.push(a);
    if (a.kind === 'grow' || a.kind === 'shrink') open = a.to;
  }
  return actions;
}

/** Samples at 2 connections until the first step grows to 8. */
function toEight(tuner: ConnectionTuner): void {
  for (let i = 0; i < 50 && tuner.target !== 8; i++) tuner.sample(sample(2, shaped(2)));
  assert.is(tuner.target, 8);
}

/** A per-flow shaper: 10 MB/s per connection, 250 MB/s for the link. */
const shaped = (n: number): number => Math.min(n * 10e6, 250e6);

test('grows while it pays: 2 -> 8 -> 32 on a per-flow shaper, stopping at the cap', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  assert.is(tuner.target, AUTO_START);
  const actions = drive(tuner, shaped);
  assert.equal(actions, [{ kind: 'grow', to: 8 }, { kind: 'grow', to: 32 }, { kind: 'stop' }]);
  assert.is(tuner.stopped, 'cap');
  assert.is(tuner.target, 32);
  assert.equal(
    tuner.steps.map((s) => s.connections),
    [2, 8, 32],
  );
});

test('a step that scaled less than linearly grows twofold next, one that scaled linearly goes to the cap, and a step that did not pay is undone', () => {
  // 2: 20, 8: 45 (+125 %, under half the +300 % linear), 16: 100 (+122 %: linear, to the cap), 32: 105
  // (+5 %: back to 16).
  const link = (n: number): number => ({ 2: 20e6, 8: 45e6, 16: 100e6, 32: 105e6 })[n] ?? 0;
  const tuner = new ConnectionTuner(AUTO_MAX);
  const actions = drive(tuner, link);
  assert.equal(actions, [
    { kind: 'grow', to: 8 },
    { kind: 'grow', to: 16 },
    { kind: 'grow', to: 32 },
    { kind: 'shrink', to: 16 },
  ]);
  assert.is(tuner.stopped, 'no-gain');
  assert.is(tuner.target, 16);
});

test('a step that scaled linearly goes straight to the cap: 2 -> 8 -> 64 when the daemon allows 64', () => {
  const tuner = new ConnectionTuner(64);
  const actions = drive(tuner, (n) => Math.min(n * 10e6, 1e9));
  assert.equal(actions, [{ kind: 'grow', to: 8 }, { kind: 'grow', to: 64 }, { kind: 'stop' }]);
  assert.is(tuner.stopped, 'cap');
});

test('on a per-flow shaper, sampled as auto-connections does, the cap is reached within 2.4 s', () => {
  // 2 x 10 MB/s: 16 pieces after a 0.4 s warm-up; 8 x 10 MB/s: 32 pieces after 0.2 s; each step first
  // waits one interval for its connections. Sampled every 200 ms, as before, that took 2.8 s.
  const tuner = new ConnectionTuner(AUTO_MAX);
  let open = tuner.target;
  for (let i = 0; i < 100 && tuner.stopped === undefined; i++) {
    const a = tuner.sample({
      ...sample(open, shaped(open)),
      ms: SAMPLE_MS,
      bytes: (shaped(open) * SAMPLE_MS) / 1000,
    });
    if (a.kind === 'grow') open = a.to;
  }
  assert.equal(
    tuner.steps.map((s) => s.connections),
    [2, 8, 32],
  );
  const second = tuner.steps[1]?.atMs ?? Infinity;
  assert.ok(second <= 2400, `the step to 32 taken at ${second} ms`);
  assert.match(
    describeTuning(tuner, true),
    /^connections: 2 \(20 MB\/s, CPU 20 % 2\.0 s\/GB, at 1\.\d s\) -> 8 /,
  );
});

test('the first step is not measured while its goodput still climbs (slow start)', () => {
  // Unshaped, 40 ms RTT: the two connections double per round trip before they settle at 200 MB/s.
  const tuner = new ConnectionTuner(AUTO_MAX);
  const rates = [0, 10e6, 25e6, 50e6, 100e6, 160e6, ...Array<number>(20).fill(200e6)];
  for (const r of rates) if (tuner.steps.length === 0) tuner.sample(sample(2, r));
  assert.is(tuner.steps[0]?.rate, 200e6);
});

test('window-bound connections still in slow start: the first step waits until the goodput settles', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  const rates = [0, 10e6, 25e6, 50e6, 100e6, 170e6, ...Array<number>(20).fill(200e6)];
  for (const r of rates) if (tuner.steps.length === 0) tuner.sample({ ...sample(2, r), rttMs: 45 });
  assert.is(tuner.steps[0]?.rate, 200e6);
});

test('shrinks back when the first step does not pay (a shared bottleneck, loopback)', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  const actions = drive(tuner, (n) => (n === 2 ? 200e6 : 190e6));
  assert.equal(actions, [
    { kind: 'grow', to: 8 },
    { kind: 'shrink', to: 2 },
  ]);
  assert.is(tuner.target, 2);
  assert.match(
    describeTuning(tuner, true),
    /^connections: 2 \(200 MB\/s, CPU 20 % 2\.0 s\/GB, at [\d.]+ s\) -> 8 \(190 MB\/s, CPU 20 % 2\.0 s\/GB, at [\d.]+ s, -5 %\)/,
  );
  assert.match(describeTuning(tuner, true), /did not pay, back to 2$/);
  assert.match(describeTuning(tuner, false), /stay/);
});

/**
 * A push on a link all connections share, acknowledged as a push is: each connection's pieces (1 MiB)
 * complete whole, and the step's connections in step, so `n` MiB arrive at once every n MiB / rate, the
 * first burst `phaseMs` after the step's connections opened. Sampled every MS as auto-connections does,
 * with quietMs the time since the last burst. Returns the tuner's steps once it stopped.
 */
function burstyPush(rate: number, phaseMs: number): ConnectionTuner {
  const tuner = new ConnectionTuner(AUTO_MAX);
  const piece = 1024 * 1024;
  let open = tuner.target;
  let nextBurst = phaseMs;
  let lastBurst = 0;
  for (let t = MS; t <= 20_000 && tuner.stopped === undefined; t += MS) {
    let bytes = 0;
    for (let i = 0; i < 1000 && nextBurst <= t; i++) {
      bytes += open * piece;
      lastBurst = nextBurst;
      nextBurst += (open * piece * 1000) / rate;
    }
    const a = tuner.sample({ ...sample(open, 0), bytes, quietMs: t - lastBurst });
    if (a.kind === 'grow' || a.kind === 'shrink') {
      open = a.to;
      nextBurst = t + phaseMs;
    }
  }
  return tuner;
}

test('on a shared link acknowledged in whole-piece bursts, 2 -> 8 reads as no gain whatever the phase', () => {
  // 8 MiB every 350 ms on a 24 MB/s link: a fixed window holds one burst more or less by phase alone,
  // and read +15 % and more where 2 connections already filled the link. Measured burst to burst: exact.
  for (let phase = 0; phase < 350; phase += 10) {
    const tuner = burstyPush(24e6, phase);
    const line = describeTuning(tuner, true);
    assert.is(tuner.stopped, 'no-gain', `phase ${phase} ms: ${line}`);
    assert.is(tuner.target, 2, `phase ${phase} ms: ${line}`);
    const gain = tuner.steps[1]?.gain ?? Infinity;
    assert.ok(Math.abs(gain) < 0.05, `phase ${phase} ms: ${line}`);
  }
});

test('the dip while new connections fill their windows is waited out, not judged', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  toEight(tuner);
  // Open, then three intervals far below the 20 MB/s of the step before, then the real rate.
  const rates = [0, 5e6, 5e6, 5e6, ...Array<number>(10).fill(80e6)];
  const actions = rates.map((r) => tuner.sample(sample(8, r))).filter((a) => a.kind !== 'wait');
  assert.equal(actions, [{ kind: 'grow', to: 32 }]);
  assert.is(tuner.steps.at(-1)?.rate, 80e6);
});

/** A path for drivePath: goodput and the client's CPU per byte (ms) at n connections, and its round trip. */
interface Path {
  rate(n: number): number;
  cpuMsPerByte(n: number): number;
  rttMs: number;
}

/** As drive, on `path`: each interval's CPU time and the round trip as auto-connections measures them. */
function drivePath(tuner: ConnectionTuner, path: Path): TunerAction[] {
  const actions: TunerAction[] = [];
  let open = tuner.target;
  for (let i = 0; i < 100 && tuner.stopped === undefined; i++) {
    const s = sample(open, path.rate(open));
    const a = tuner.sample({ ...s, cpuMs: s.bytes * path.cpuMsPerByte(open), rttMs: path.rttMs });
    if (a.kind === 'wait') continue;
    actions.push(a);
    if (a.kind === 'grow' || a.kind === 'shrink') open = a.to;
  }
  return actions;
}

/** The emulated WAN: 4 MiB windows at 40 ms (45 measured), a 250 MB/s link; 8 connections add 10 %. */
const wan = (n: number): number => (n <= 2 ? 200e6 : 220e6);
const flatCpu = (): number => CPU_MS_PER_BYTE;

test('window-bound connections (a WAN): a step that adds 10 % at the same CPU per byte is kept, and is the last', () => {
  // 2 connections at 100 MB/s each over 45 ms: 4.5 MB in flight each, their windows' worth. Before, any
  // step under +15 % was undone, and half the runs through the emulator went back to 2 (~200 MB/s). And
  // +10 % where 6 more window-bound connections would add +300 %: the link is full, so no step to 16 (it
  // read -18 to +5 % through the emulator and was undone, after a second and more at 16).
  const tuner = new ConnectionTuner(AUTO_MAX);
  const actions = drivePath(tuner, { rate: wan, cpuMsPerByte: flatCpu, rttMs: 45 });
  assert.equal(actions, [{ kind: 'grow', to: 8 }, { kind: 'stop' }]);
  assert.is(tuner.stopped, 'saturated');
  assert.is(tuner.target, 8);
  assert.match(
    describeTuning(tuner, true),
    / -> 8 \([^)]*, \+10 %\) over a 45 ms round trip: the path is full/,
  );
});

test('window-bound connections: a step that adds a good share of linear grows on, and one that does not pay is undone', () => {
  // 4 MiB windows at 45 ms and a 400 MB/s link: 2 -> 8 adds +100 %, a third of linear: 16 is tried.
  const tuner = new ConnectionTuner(AUTO_MAX);
  const rate = (n: number): number => Math.min(n * 100e6, 400e6);
  const actions = drivePath(tuner, { rate, cpuMsPerByte: flatCpu, rttMs: 45 });
  assert.equal(actions, [
    { kind: 'grow', to: 8 },
    { kind: 'grow', to: 16 },
    { kind: 'shrink', to: 8 },
  ]);
});

/**
 * Through the emulator (2 window-bound connections at 200 MB/s over 45 ms) on a starved client: at 8
 * connections the first `starved` intervals move 130 MB/s with the event loop 95 % busy, then 240 at 40 %.
 */
function starvedEight(starved: number): { tuner: ConnectionTuner; actions: TunerAction[] } {
  const tuner = new ConnectionTuner(AUTO_MAX);
  const actions: TunerAction[] = [];
  let open = tuner.target;
  let atEight = 0;
  for (let i = 0; i < 200 && tuner.stopped === undefined; i++) {
    const slow = open === 8 && atEight++ < starved;
    const s = open === 2 ? sample(2, 200e6) : slow ? sample(8, 130e6, 0.95) : sample(8, 240e6, 0.4);
    const a = tuner.sample({ ...s, rttMs: 45 });
    if (a.kind === 'wait') continue;
    actions.push(a);
    if (a.kind === 'grow' || a.kind === 'shrink') open = a.to;
  }
  return { tuner, actions };
}

test('window-bound connections: a step read lower on a saturated event loop is measured again, not undone', () => {
  // Judged on the starved intervals, 2 -> 8 read -35 % and went back to 2 for the rest of the copy.
  const { tuner, actions } = starvedEight(20);
  assert.equal(actions, [{ kind: 'grow', to: 8 }, { kind: 'stop' }]);
  assert.is(tuner.target, 8);
  assert.is(tuner.steps.at(-1)?.rate, 240e6);
});

test('window-bound connections: a step that reads lower, starved, twice in a row is undone', () => {
  const { tuner, actions } = starvedEight(Infinity);
  assert.equal(actions, [
    { kind: 'grow', to: 8 },
    { kind: 'shrink', to: 2 },
  ]);
  assert.is(tuner.stopped, 'no-gain');
});

test('window-bound from the start (a WAN), the first step is judged without the rest of its warm-up', () => {
  // The same 2 connections at 200 MB/s: over 45 ms each has 4.5 MB in flight, over 4.9 ms (loopback) 0.5.
  const firstAt = (rttMs: number): number => {
    const tuner = new ConnectionTuner(AUTO_MAX);
    drivePath(tuner, { rate: wan, cpuMsPerByte: flatCpu, rttMs });
    return tuner.steps[0]?.atMs ?? Infinity;
  };
  assert.ok(firstAt(45) <= 700, `judged at ${firstAt(45)} ms`);
  assert.ok(firstAt(4.9) >= 900, `judged at ${firstAt(4.9)} ms`);
});

/**
 * As drivePath, with the event loop's busy share growing with the goodput as it does on a client that has
 * CPU to spare: `eluPerByte` of it per byte/s (the emulator's shaped row: 2 x 10 MB/s read 5-6 % busy).
 * Returns the actions and the tuner.
 */
function driveBusy(path: Path, eluPerByte: number): { tuner: ConnectionTuner; actions: TunerAction[] } {
  const tuner = new ConnectionTuner(AUTO_MAX);
  const actions: TunerAction[] = [];
  let open = tuner.target;
  for (let i = 0; i < 100 && tuner.stopped === undefined; i++) {
    const rate = path.rate(open);
    const s = sample(open, rate, Math.min(1, rate * eluPerByte));
    const a = tuner.sample({ ...s, cpuMs: s.bytes * path.cpuMsPerByte(open), rttMs: path.rttMs });
    if (a.kind === 'wait') continue;
    actions.push(a);
    if (a.kind === 'grow' || a.kind === 'shrink') open = a.to;
  }
  return { tuner, actions };
}

/** 5 % of the event loop per 20 MB/s. */
const SHAPED_ELU_PER_BYTE = 0.05 / 20e6;

test('a per-flow shaper on a 41 ms path: the first step goes straight to the cap, judged within 0.9 s', () => {
  // 2 x 10 MB/s over 41 ms: 0.4 MB in flight each, a fifth of a window, with the event loop 5 % busy.
  // Each connection is held by the path, and 2 -> 8 -> 32 spent 2.4-2.8 s of the copy below 80 MB/s.
  const { tuner, actions } = driveBusy(
    { rate: shaped, cpuMsPerByte: flatCpu, rttMs: 41 },
    SHAPED_ELU_PER_BYTE,
  );
  assert.equal(actions, [{ kind: 'grow', to: 32 }, { kind: 'stop' }]);
  assert.is(tuner.stopped, 'cap');
  assert.equal(
    tuner.steps.map((s) => s.connections),
    [2, 32],
  );
  const first = tuner.steps[0]?.atMs ?? Infinity;
  assert.ok(first <= 900, `the first step judged at ${first} ms`);
});

test('held by the path, the first step grows only as far as the event loop could carry', () => {
  // 2 x 10 MB/s at 20 % busy: 9 fill the event loop (90 %), and that is where growth stops.
  const { tuner, actions } = driveBusy({ rate: shaped, cpuMsPerByte: flatCpu, rttMs: 41 }, 0.2 / 20e6);
  assert.equal(actions, [{ kind: 'grow', to: 9 }, { kind: 'stop' }]);
  assert.is(tuner.stopped, 'cpu');
});

test('a bottleneck shared on a 41 ms path: the jump to the cap is undone, and a gain under 30 % does not keep it', () => {
  // 33 MB/s on a 20 MB/s link: 32 connections' pieces in progress, acknowledged in a burst (read so over 2 s
  // in CI on a 24 MB/s link); counted against the reading, what is left is no gain.
  for (const at32 of [20e6, 25e6, 33e6]) {
    const rate = (n: number): number => (n <= 2 ? 20e6 : at32);
    const { tuner, actions } = driveBusy({ rate, cpuMsPerByte: flatCpu, rttMs: 41 }, SHAPED_ELU_PER_BYTE);
    assert.equal(actions, [
      { kind: 'grow', to: 32 },
      { kind: 'shrink', to: 2 },
    ]);
    assert.is(tuner.stopped, 'no-gain');
  }
});

test('connections far from their windows over a few ms (loopback, a LAN) still grow only fourfold', () => {
  const { actions } = driveBusy({ rate: shaped, cpuMsPerByte: flatCpu, rttMs: 4.9 }, SHAPED_ELU_PER_BYTE);
  assert.equal(actions, [{ kind: 'grow', to: 8 }, { kind: 'grow', to: 32 }, { kind: 'stop' }]);
});

test('loopback (round trip of a few ms): a step that adds 10 % is undone, CPU per byte flat or not', () => {
  // 2 connections at 225 MB/s each over 4.9 ms (two busy event loops): 1.1 MB in flight each, no window.
  for (const cpuMsPerByte of [flatCpu, (n: number) => (n <= 2 ? 1 : 1.3) * CPU_MS_PER_BYTE]) {
    const tuner = new ConnectionTuner(AUTO_MAX);
    const rate = (n: number): number => (n <= 2 ? 450e6 : 495e6);
    const actions = drivePath(tuner, { rate, cpuMsPerByte, rttMs: 4.9 });
    assert.equal(actions, [
      { kind: 'grow', to: 8 },
      { kind: 'shrink', to: 2 },
    ]);
  }
});

test('window-bound connections: a small gain that costs more CPU per byte than it adds is undone', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  const cpuMsPerByte = (n: number): number => (n <= 2 ? 1 : 1.3) * CPU_MS_PER_BYTE;
  const actions = drivePath(tuner, { rate: wan, cpuMsPerByte, rttMs: 45 });
  assert.equal(actions, [
    { kind: 'grow', to: 8 },
    { kind: 'shrink', to: 2 },
  ]);
});

test('window-bound connections: a step under +5 % is noise, and undone', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  const rate = (n: number): number => (n <= 2 ? 200e6 : 206e6);
  const actions = drivePath(tuner, { rate, cpuMsPerByte: flatCpu, rttMs: 45 });
  assert.equal(actions, [
    { kind: 'grow', to: 8 },
    { kind: 'shrink', to: 2 },
  ]);
});

test('a step that stays below the one before is judged after the longest warm-up, and retired', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  const actions = drive(tuner, (n) => (n === 2 ? 100e6 : 40e6));
  assert.equal(actions, [
    { kind: 'grow', to: 8 },
    { kind: 'shrink', to: 2 },
  ]);
  assert.is(tuner.steps.at(-1)?.rate, 40e6);
});

test('a CPU-bound client stays small: more connections would only cost CPU', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  const actions = drive(
    tuner,
    () => 300e6,
    () => 0.97,
  );
  assert.equal(actions, [{ kind: 'stop' }]);
  assert.is(tuner.stopped, 'cpu');
  assert.is(tuner.target, AUTO_START);
  assert.match(describeTuning(tuner, true), /CPU-bound \(event loop 97 % busy\)/);
});

test('a step that paid but saturated the event loop is kept, and growth stops there', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  const actions = drive(tuner, shaped, (n) => (n >= 8 ? 0.95 : 0.3));
  assert.equal(actions, [{ kind: 'grow', to: 8 }, { kind: 'stop' }]);
  assert.is(tuner.stopped, 'cpu');
  assert.is(tuner.target, 8);
});

test("respects the daemon's cap: max 6 grows to 6 and stops", () => {
  const tuner = new ConnectionTuner(6);
  const actions = drive(tuner, shaped);
  assert.equal(actions, [{ kind: 'grow', to: 6 }, { kind: 'stop' }]);
  assert.is(tuner.stopped, 'cap');
  assert.is(new ConnectionTuner(1).target, 1, 'a daemon allowing one connection: auto starts and stays at 1');
});

test('waits for the step to open before measuring, and measures with those that opened once the others failed', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  toEight(tuner);
  // Now at 8; 5 of them open, 3 still on their way: nothing is judged while they may still come.
  const waits: TunerAction[] = [];
  for (let i = 0; i < 16; i++) waits.push(tuner.sample(whileOpening(5, 3, shaped(5))));
  assert.ok(waits.every((a) => a.kind === 'wait'));
  // The 3 failed: the step is measured with the 5 that did open (linear: on to the cap).
  let a: TunerAction = { kind: 'wait' };
  for (let i = 0; i < 30 && a.kind === 'wait'; i++) a = tuner.sample(sample(5, shaped(5)));
  assert.equal(a, { kind: 'grow', to: AUTO_MAX });
  assert.is(tuner.steps.at(-1)?.connections, 5);
});

test('a step is not judged while its connections still log in, even for seconds (carried over ssh)', () => {
  // Six ssh logins at once on a loaded client: 5 s before they attach, and their CPU slows the 2 that carry
  // data meanwhile. Judged then (with the 2, at 60 % of their rate) the step read "-40 %" and was undone.
  const tuner = new ConnectionTuner(AUTO_MAX);
  toEight(tuner);
  for (let i = 0; i < 50; i++) {
    assert.equal(tuner.sample(whileOpening(2, 6, 0.6 * shaped(2))), { kind: 'wait' }, `interval ${i}`);
  }
  assert.is(tuner.steps.length, 1, 'the step to 8 is not judged before its connections attach');
  let a: TunerAction = { kind: 'wait' };
  for (let i = 0; i < 30 && a.kind === 'wait'; i++) a = tuner.sample(sample(8, shaped(8)));
  assert.equal(a, { kind: 'grow', to: AUTO_MAX });
  assert.is(tuner.steps.at(-1)?.connections, 8);
});

test('a connection that stays on its way for good does not stop tuning: the step is measured in the end', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  toEight(tuner);
  let a: TunerAction = { kind: 'wait' };
  for (let i = 0; i < 200 && a.kind === 'wait'; i++) a = tuner.sample(whileOpening(7, 1, shaped(7)));
  assert.equal(a, { kind: 'grow', to: AUTO_MAX });
  assert.is(tuner.steps.at(-1)?.connections, 7);
});

test('near the end of the data it stops instead of judging a draining transfer', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  let a: TunerAction = { kind: 'wait' };
  // 20 MB/s; 1 MB left: less than one step's worth.
  for (let i = 0; i < 10 && a.kind === 'wait'; i++) a = tuner.sample(sample(2, 20e6, 0.2, 1e6));
  assert.equal(a, { kind: 'stop' });
  assert.is(tuner.stopped, 'end');
  assert.is(tuner.target, AUTO_START);
});

test('nothing crossed yet (the list still being answered): no judgement, no growth', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  for (let i = 0; i < 20; i++) assert.equal(tuner.sample(sample(2, 0)), { kind: 'wait' });
  assert.is(tuner.steps.length, 0);
  assert.is(tuner.target, AUTO_START);
});

test('once stopped it only waits', () => {
  const tuner = new ConnectionTuner(AUTO_MAX);
  tuner.stop('end');
  assert.equal(tuner.sample(sample(2, 1e9)), { kind: 'wait' });
  assert.is(tuner.stopped, 'end');
});

test.run();
