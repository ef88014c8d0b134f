/**
 * Whether a step of `--connections auto` paid for its connections: the rule connection-tuner.ts applies once
 * a step is measured, and why (README "Connections").
 *
 * A gain of MIN_GAIN pays anywhere. Below it, the goodput alone cannot tell a path where more connections
 * add a little from one where they add nothing and the reading is noise: on the emulated WAN (40 ms, 4 MiB
 * windows, a 250 MB/s link) 2 -> 8 read +3 to +26 % against a true +20 % (2 windows of 4 MiB per 40 ms
 * are 200 MB/s), and on pinned loopback, where it adds nothing, up to +10 % and once +30 %. The client's
 * CPU per byte does not tell them apart either: 2 -> 8 changed it by x0.8 to x1.1 on both. What does is
 * the path: a connection can only be held back by its TCP window where it has about a window in flight,
 * its share of the goodput over one round trip. Through the emulator that is ~4.5 MB per connection at 2
 * (100 MB/s each, 42-64 ms measured); on loopback 0.2-1.1 MB (225 MB/s each, 0.7-4.9 ms measured at a
 * load of 7-11: the round trip of an ATTACH waits for two busy event loops; a box starved of CPU reads
 * more, up to 77 ms at a load of 18, and can pass for window-bound). So where the step before had
 * WINDOW_BOUND_BYTES in flight per connection, a smaller gain pays too, unless it cost more CPU per byte
 * than it gained.
 */
import { rateOf, type TunerSample } from './tuner-measure.js';

/** Event-loop utilisation (0..1) at or above which the client counts as CPU-bound. */
export const CPU_BOUND_ELU = 0.9;
/**
 * A round trip from which the first step may grow past fourfold (connection-tuner.ts): a path's, not
 * loopback's or a LAN's (0.7-4.9 ms measured on loopback at a load of 7-11: there connections far from their
 * windows are held by the CPU of one end, and more only cost CPU).
 */
const PATH_RTT_MS = 10;
/** A step must raise the goodput by this fraction to be kept, wherever it was taken. */
export const MIN_GAIN = 0.15;
/** Enough where the connections were window-bound (see above), and their CPU per byte did not rise more. */
export const WINDOW_MIN_GAIN = 0.05;
/**
 * In flight per connection from which its TCP window may be what holds it back: half of Linux's default
 * largest send buffer (tcp_wmem, 4 MiB), for a window still opening; twice what loopback read.
 */
export const WINDOW_BOUND_BYTES = 2 * 1024 * 1024;

/** What a step measured that the rule needs. */
export interface StepFigures {
  readonly connections: number;
  /** Goodput, bytes per second. */
  readonly rate: number;
  /**
   * The goodput with a whole piece per connection counted against it: what the reading is sure of, each
   * connection having had a piece partly across at either end of the measurement.
   */
  readonly sureRate: number;
  /** The goodput with a whole piece per connection counted for it: the most the reading may have missed. */
  readonly ceilRate: number;
  /** The client's CPU time per byte moved (any unit, the same for every step). */
  readonly cpuPerByte: number;
}

/**
 * Of what a step's connections would add if each kept the rate the step before had per connection (its
 * linear gain), the share below which a step that paid is the last: see `saturated`.
 */
export const SATURATED_SHARE = 0.25;

/** Bytes each of the step's connections had in flight over one round trip of `rttMs`. */
export function inFlightPerConnection(
  step: Pick<StepFigures, 'connections' | 'rate'>,
  rttMs: number,
): number {
  return ((step.rate / step.connections) * rttMs) / 1000;
}

/** Each of the step's connections had WINDOW_BOUND_BYTES or more in flight (false while `rttMs` is 0). */
export function windowBound(step: Pick<StepFigures, 'connections' | 'rate'>, rttMs: number): boolean {
  return inFlightPerConnection(step, rttMs) >= WINDOW_BOUND_BYTES;
}

/**
 * A step that more than quadrupled the connections (connection-tuner.ts: the first, on a path that held each
 * connection) must raise the goodput by this much, counted from its sureRate to its yardstick's ceilRate:
 * its many connections each have a piece in progress at either end of its measurement, and the yardstick
 * was measured over a few pieces only (0.2-0.4 s, while the jump's connections opened), each of its own
 * connections with one partly across too. On a 24 MB/s link all share, 2 -> 32 read 33 MB/s (+40 %) over
 * 2 s: 48 MB, of which 32 MiB were those pieces. Behind a per-flow shaper (2 x 10 MB/s -> 32 on a 250 MB/s
 * link) the gain so counted is +400 % and more.
 */
export const JUMP_MIN_GAIN = 0.3;

/** Whether `now`'s step (taken after `prev`) paid, on a path whose round trip is `rttMs` (0: unknown). */
export function paid(prev: StepFigures, now: StepFigures, rttMs: number): boolean {
  const gain = now.rate / prev.rate - 1;
  if (now.connections > 4 * prev.connections) return now.sureRate / prev.ceilRate - 1 >= JUMP_MIN_GAIN;
  if (gain >= MIN_GAIN) return true;
  if (gain < WINDOW_MIN_GAIN || !windowBound(prev, rttMs)) return false;
  return cpuRise(prev, now) <= gain;
}

/** How much the CPU per byte rose from `prev` to `now`, a fraction (0 when `prev` has no figure). */
function cpuRise(prev: StepFigures, now: StepFigures): number {
  return prev.cpuPerByte > 0 ? now.cpuPerByte / prev.cpuPerByte - 1 : 0;
}

/**
 * Whether `now`'s step, which paid, filled what its connections share, so that growing again cannot pay:
 * the step before was window-bound (each connection carried a window per round trip, so each more would
 * carry as much again on a path with room), yet this one gained less than SATURATED_SHARE of that. Through
 * the emulator (40 ms, 4 MiB windows, 250 MB/s) 2 -> 8 reads +3 to +51 %, at most a sixth of the linear
 * +300 %: the link is full, and the step to 16 that followed read -18 to +5 % and was undone, after a
 * second and more at 16 connections (their TLS starts, the dip while they fill their windows, the CPU
 * per byte of twice the sockets). A per-flow limit scales nearly linearly (x4 connections read x3-x4); on a
 * path where the step before was not window-bound (loopback, a per-flow shaper) a stall of a loaded box
 * can read a yardstick low, and the next step's own measurement decides as before.
 */
export function saturated(prev: StepFigures, now: StepFigures, rttMs: number): boolean {
  if (!windowBound(prev, rttMs)) return false;
  const linear = now.connections / prev.connections - 1;
  return now.rate / prev.rate - 1 < SATURATED_SHARE * linear;
}

/**
 * On a path (PATH_RTT_MS or more), each connection carried less than its TCP window allows and the client's
 * event loop had room: what holds them is the path, per flow or shared (connection-tuner.ts grows its first
 * step past fourfold there).
 */
export function heldByPath(step: { connections: number; rate: number; elu: number }, rttMs: number): boolean {
  return rttMs >= PATH_RTT_MS && !windowBound(step, rttMs) && step.elu > 0 && step.elu < CPU_BOUND_ELU;
}

/**
 * The first step's growth: fourfold; but on a path (heldByPath: a round trip of 10 ms or more) whose
 * connections are not window-bound, as many as the client's event loop could carry at the rate each has
 * now, up to CPU_BOUND_ELU busy. There each connection is held by neither its TCP window nor this client,
 * so by the path: a per-flow shaper, where every connection more adds as much (2 x 10 MB/s read 5 %
 * busy: 32 at once, where 2 -> 8 -> 32 spent 2.4-2.8 s below 80 MB/s of a 250 MB/s link), or a
 * bottleneck they share, where the next step reads no gain and is undone, as any step that did not pay.
 */
export function firstGrowth(m: { connections: number; rate: number; elu: number }, rttMs: number): number {
  const fourfold = m.connections * 4;
  if (!heldByPath(m, rttMs)) return fourfold;
  return Math.max(fourfold, Math.floor((m.connections * CPU_BOUND_ELU) / m.elu));
}

/** What the first step's warm-up rules read of an interval. */
type WarmupInterval = Pick<TunerSample, 'connections' | 'bytes' | 'ms' | 'elu' | 'rttMs'>;

/**
 * Two intervals (the first step's last two of its warm-up), each with a window's worth in flight per
 * connection: they already carry what their windows allow, no slow start or start-up left to wait out.
 * Through the emulator 2 connections read so 200-300 ms after both attached.
 */
export function eachWindowBound(last: readonly WarmupInterval[]): boolean {
  return last.length === 2 && last.every((w) => windowBound({ ...w, rate: rateOf([w]) }, w.rttMs));
}

/** Two intervals, each with its connections held by the path (heldByPath). */
export function eachHeldByPath(last: readonly WarmupInterval[]): boolean {
  return last.length === 2 && last.every((w) => heldByPath({ ...w, rate: rateOf([w]) }, w.rttMs));
}

/**
 * Where the first step grows as soon as its warm-up ends (its own figure then measured while the new
 * connections open, connection-tuner.ts #jump), or undefined where it is measured first. Judged by its
 * last two intervals, `enough` when they hold a measurement's pieces:
 *   - held by the path: firstGrowth (the cap behind a per-flow shaper), where that is past fourfold; the
 *     event loop's room read from the quieter interval (on a loaded box one with a stall read 8-12 % busy
 *     at 2 x 10 MB/s, where 400 ms measured 1-3 %, and the jump went to 22 instead of 32);
 *   - window-bound, the event loop not saturated: fourfold. Each connection already carries a window per
 *     round trip, so a connection more loses nothing on the path and the step is judged as any; measured
 *     first (400 ms) it kept the emulated WAN at 2 connections (~200 of 250 MB/s) that much longer.
 */
export function earlyGrowth(
  last: readonly WarmupInterval[],
  max: number,
  enough: boolean,
): number | undefined {
  const connections = last.at(-1)?.connections ?? 0;
  const fourfold = Math.min(4 * connections, max);
  if (eachHeldByPath(last)) {
    const elu = Math.min(...last.map((w) => w.elu));
    const to = Math.min(firstGrowth({ connections, rate: rateOf(last), elu }, last.at(-1)?.rttMs ?? 0), max);
    // Fourfold or less is an ordinary step, judged against a figure measured first, as any.
    return to > 4 * connections ? to : undefined;
  }
  if (!enough || !eachWindowBound(last) || last.some((w) => w.elu >= CPU_BOUND_ELU)) return undefined;
  return fourfold;
}
