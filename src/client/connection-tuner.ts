/**
 * How many connections `--connections auto` uses: the decisions alone, fed one sample of what the client
 * sees per interval, no sockets and no clock (extra-connections.ts feeds it and carries its answers out).
 * The algorithm and why its numbers are what they are: README "Connections".
 *
 * A session starts with AUTO_START connections. Each step measures the session's goodput (bytes the
 * receiver acknowledged on a push, bytes received on a pull) once none of the step's connections is still
 * on its way (each attached, or failed) and a warm-up has passed (400 ms for the first, 200 ms later,
 * longer while the goodput still climbs or is still in the dip new connections cause), over at least 16
 * pieces and 4 per connection, or 2 s, then:
 *   - the first step grows fourfold at once unless the client's event loop is already saturated
 *     (CPU-bound: more connections only cost CPU there, the case of loopback); on a path (10 ms or more)
 *     whose connections are not window-bound, to as many as the event loop could carry (step-payoff.ts firstGrowth),
 *     and where that is more than fourfold, or where each connection is window-bound, as soon as its
 *     warm-up shows it, the step it is judged against measured while the new connections open (#jump);
 *   - a later step that paid (step-payoff.ts: it raised the goodput by 15 %, or by 5 % where its
 *     connections were window-bound and their CPU per byte did not rise more) is kept, and the next grows:
 *     straight to the cap after a step that scaled nearly linearly (each connection held its own rate: a
 *     per-flow limit, not a shared bottleneck, so every connection more adds as much), twofold otherwise;
 *   - a step that did not pay is undone (its connections retired) and the count is final, unless it read
 *     lower than the window-bound step before while the event loop was saturated: measured once more first;
 *   - a step that paid but gained far less than its connections would add at the rate of window-bound ones
 *     (step-payoff.ts `saturated`: the link behind them is full) is kept, and the count is final;
 *   - the count is final too at the cap, when the event loop is saturated, or when what is left to send
 *     would be gone before another step could be measured.
 */

import {
  CPU_BOUND_ELU,
  eachHeldByPath,
  eachWindowBound,
  earlyGrowth,
  firstGrowth,
  paid,
  saturated,
  windowBound,
} from './step-payoff.js';
import {
  type Measured,
  measure,
  PIECE_BYTES,
  rateOf,
  totalBytes,
  type TunerSample,
  type Yardstick,
} from './tuner-measure.js';

export type { TunerSample } from './tuner-measure.js';

/** Connections in all (the control one included) an auto session starts with. */
export const AUTO_START = 2;
/** The most an auto session opens (the daemon may allow fewer: SESSION's max_connections). */
export const AUTO_MAX = 32;
/**
 * A step that scaled at least this share of linearly goes straight to the cap next. A per-flow shaper
 * scales fully (x4 connections, x4 goodput); a shared bottleneck much less (2 -> 8 on the unshaped
 * emulated WAN: +13-30 %, where linear is +300 %). Half, for the noise of a loaded box: there 2 x 10 MB/s
 * read 25 MB/s and 8 x 10 read +191 %. A wrong jump is undone by the next step's measurement, as any step
 * that does not pay.
 */
const LINEAR_SHARE = 0.5;
/**
 * Time thrown away after a step's connections are open (TLS start, TCP windows opening): at 40 ms RTT a
 * 10 MB/s flow needs ~400 KB of window, 4-5 round trips of slow start.
 */
const WARMUP_MS = 200;
/**
 * The first step's: the session itself is starting (list, answers, read-ahead, every socket buffer and
 * emulated window filling), and a yardstick read low makes the next step look as if it paid: measured after
 * 200 ms, 2 connections on a 24 MB/s shared link read 15-20 MB/s and the step to 8 +17-32 %.
 */
const FIRST_WARMUP_MS = 400;
/**
 * Then the warm-up goes on, up to this long, while the goodput is below RECOVERED of the step before: new
 * connections first fill their socket buffers and the emulated 4 MiB windows (24 of them at once is ~100
 * MiB written before one more byte is acknowledged), and a busy client does that at the expense of the
 * connections it had. Measured inside that dip, a step that pays read as -60 to -70 %.
 */
const MAX_WARMUP_MS = 1200;
const RECOVERED = 0.9;
/**
 * Goodput still rising this fast is slow start, not the path's rate. Above the rounding of a few whole
 * pieces per interval (3 where 2 were is x1.5 already), well below slow start's doubling per round trip.
 */
const RISING = 1.6;
/**
 * Time averaged into a step's goodput, at least: acknowledgements come in bursts (a step's new
 * connections move in step), and 200 ms read 341 MB/s on a 250 MB/s link.
 */
const STEP_MS = 400;
/**
 * Bytes a step's measurement spans, at least, unless it has taken MAX_STEP_MS: goodput is counted in
 * whole pieces (1 MiB, acknowledged or received whole), so 16 of them keep the rounding under 7 %, well
 * inside the 15 % bar (step-payoff.ts). The 5 % one applies only on window-bound paths, which move 76
 * pieces in 400 ms at 200 MB/s; a slow one (2 windows per 300 ms) moves only the 16.
 */
const MIN_STEP_BYTES = 16 * 1024 * 1024;
/**
 * And at least this many pieces per connection: each connection has a piece partly across at either end
 * of the measurement, so with 2 per connection a step of 8 read 10 MB/s on an 8 MB/s link (+25 %).
 */
const MIN_STEP_PIECES_PER_CONN = 4;
const MAX_STEP_MS = 2000;
/**
 * How long a step waits for connections still on their way before it is measured with those that did open.
 * A carried connection is an ssh login (several round trips and a key exchange on each side): eight at
 * once on a busy client took 1.2-1.8 s, and a step judged at the former 1.6 s, with the logins' CPU still
 * slowing the others and connections arriving during the measurement, read as "-33 %" or "-52 %". One that
 * never attaches fails on its own (its handshake or login timeout) and stops being on its way.
 */
const MAX_WAIT_MS = 10_000;
/** What a next step takes at least (open, warm up, measure): too little left for it, and tuning stops. */
const NEXT_STEP_MS = 1000;

export type TunerAction =
  | { readonly kind: 'wait' }
  | { readonly kind: 'grow'; readonly to: number }
  | { readonly kind: 'shrink'; readonly to: number }
  | { readonly kind: 'stop' };

/** One measured step, for the -v line and the summary. */
export interface TunerStep extends Measured {
  /** Its gain over the step before, a fraction; undefined for the first. */
  readonly gain: number | undefined;
  /** The path's round trip when it was judged, in ms (0: not measured). */
  readonly rttMs: number;
  /** When it was judged, in ms of sampling since the tuner started. */
  readonly atMs: number;
}

export type StopReason = 'no-gain' | 'saturated' | 'cpu' | 'cap' | 'end' | 'fixed';

export class ConnectionTuner {
  readonly #max: number;
  #target: number;
  #stopped: StopReason | undefined;
  readonly #steps: TunerStep[] = [];
  /** Sampled time since the start, in ms. */
  #elapsedMs = 0;
  /** The current step: time spent waiting for its connections, warm-up samples, samples counted. */
  #opening = true;
  #waitedMs = 0;
  /** Each with the quietMs of the interval before it (#quietBefore), where a yardstick from it starts. */
  #warmup: (TunerSample & { readonly quietBefore: number })[] = [];
  /** Intervals the current measurement takes: fixed when it starts (see #measureLength). */
  #measureFor = 0;
  #counted: TunerSample[] = [];
  /** quietMs of the interval before the one being sampled: where a measurement's first burst began. */
  #quietBefore = 0;
  #quietAtStart = 0;
  /** The current step was measured once already, on a starved client (#starved). */
  #remeasured = false;
  /** The first step's measurement, still taken while the jump's connections open (#jump). */
  #yardstick: Yardstick | undefined;

  /** `max`: the most this session may open (AUTO_MAX, or fewer when the daemon allows fewer). */
  constructor(max: number, start = AUTO_START) {
    this.#max = Math.max(1, max);
    this.#target = Math.min(start, this.#max);
  }

  /** The connections the tuner wants open now. */
  get target(): number {
    return this.#target;
  }

  /** Why the count is final; undefined while it is still being tuned. */
  get stopped(): StopReason | undefined {
    return this.#stopped;
  }

  get steps(): readonly TunerStep[] {
    return this.#steps;
  }

  /** Stops tuning where it is (the session ends, or its connections cannot be opened). */
  stop(reason: StopReason): void {
    // Ended while the jump's connections were still opening: the first step is what was measured so far.
    this.#endYardstick(this.#yardstick?.counted.at(-1)?.rttMs ?? 0);
    this.#stopped ??= reason;
  }

  /** One interval's figures; returns what to do now. */
  sample(s: TunerSample): TunerAction {
    if (this.#stopped !== undefined) return { kind: 'wait' };
    const quietBefore = this.#quietBefore;
    this.#quietBefore = s.quietMs;
    this.#elapsedMs += s.ms;
    if (this.#opening) {
      // The interval in which the last of them opened had fewer for part of it: not counted either. Those
      // that failed are not waited for (the step is measured with what opened).
      this.#waitedMs += s.ms;
      this.#measureYardstick(s);
      if (s.opening > 0 && this.#waitedMs <= MAX_WAIT_MS) return { kind: 'wait' };
      this.#opening = false;
      this.#endYardstick(s.rttMs);
      return { kind: 'wait' };
    }
    if (this.#measureFor === 0) {
      this.#warmup.push({ ...s, quietBefore });
      if (this.#warming()) return this.#nearEnd(s) ? this.#stop('end') : { kind: 'wait' };
      const jump = this.#jumpTo();
      if (jump !== undefined) return this.#nearEnd(s) ? this.#stop('end') : this.#jump(jump);
      this.#measureFor = this.#measureLength(s.ms);
      return { kind: 'wait' };
    }
    if (this.#counted.length === 0) this.#quietAtStart = quietBefore;
    this.#counted.push(s);
    if (!this.#measuredEnough()) return { kind: 'wait' };
    const m = this.#measured(s.connections);
    this.#counted = [];
    this.#measureFor = 0;
    // Nothing crossed (the list still being answered, the source not read yet): nothing to judge by yet.
    if (m.rate <= 0) return { kind: 'wait' };
    return this.#decide(m, s);
  }

  #measuredEnough(): boolean {
    return this.#counted.length >= this.#measureFor;
  }

  /**
   * How many intervals to measure for: enough for MIN_STEP_BYTES and MIN_STEP_PIECES_PER_CONN at the rate
   * the warm-up saw, fixed before the first counted one. Stopping once the bytes were reached instead
   * would always stop on a burst of acknowledgements (a step's new connections move in step, so their
   * pieces complete together: 8 in one interval, none in the next) and read high.
   */
  #measureLength(ms: number): number {
    const wanted = Math.max(MIN_STEP_BYTES, MIN_STEP_PIECES_PER_CONN * PIECE_BYTES * this.#target);
    const perSample = (Math.max(rateOf(this.#warmup.slice(-2)), this.#steps.at(-1)?.rate ?? 0) * ms) / 1000;
    const most = Math.max(1, Math.floor(MAX_STEP_MS / ms));
    const n = perSample > 0 ? Math.ceil(wanted / perSample) : most;
    return Math.min(most, Math.max(Math.ceil(STEP_MS / ms), n));
  }

  /**
   * Still warming up: the first FIRST_WARMUP_MS or WARMUP_MS; then, for the first step, while the goodput
   * is still climbing (TCP slow start: at 40 ms RTT an unshaped 100 MB/s flow needs ~8 round trips, a 10
   * MB/s one ~5, and a yardstick read low makes the next step look linear); for a later one until one
   * interval after the goodput (of two) came back from the step's dip: the acknowledgements the dip held
   * up land in that one, and read as a rate the link does not have (298 and 353 MB/s on a 250 MB/s link).
   */
  #warming(): boolean {
    const warmedMs = this.#warmup.reduce((sum, w) => sum + w.ms, 0);
    const prev = this.#steps.at(-1);
    if (prev === undefined && warmedMs >= WARMUP_MS && this.#steadyEarly()) return this.#climbing();
    if (warmedMs < (prev === undefined ? FIRST_WARMUP_MS : WARMUP_MS)) return true;
    if (warmedMs >= MAX_WARMUP_MS) return false;
    if (prev === undefined) return this.#climbing();
    return rateOf(this.#warmup.slice(-3, -1)) < RECOVERED * prev.rate;
  }

  /**
   * The first step's last two warm-up intervals each had a window's worth in flight per connection, or each
   * had its connections held by the path (step-payoff.ts): its warm-up may end once the goodput stops
   * climbing, before FIRST_WARMUP_MS.
   */
  #steadyEarly(): boolean {
    const last = this.#warmup.slice(-2);
    return eachWindowBound(last) || eachHeldByPath(last);
  }

  /**
   * Where the first step grows as soon as its warm-up ends, if it does (step-payoff.ts earlyGrowth): past
   * fourfold on a path that holds each connection, fourfold where each carries a window per round trip.
   * The last two intervals must hold a step's pieces per connection, the yardstick's start (#jump).
   */
  #jumpTo(): number | undefined {
    if (this.#steps.length > 0) return undefined;
    const last = this.#warmup.slice(-2);
    const connections = last.at(-1)?.connections ?? this.#target;
    const enough = totalBytes(last) >= MIN_STEP_PIECES_PER_CONN * PIECE_BYTES * connections;
    const to = earlyGrowth(last, this.#max, enough);
    return to !== undefined && to > connections ? to : undefined;
  }

  /**
   * The jump is taken now, and the step it is judged against (the yardstick) is measured while its
   * connections open: from the last two intervals of the warm-up on, for as long as none of the new ones
   * has attached (a TLS start and two round trips at least, 3-4 intervals over 40 ms). Measuring it first,
   * over 8 pieces, kept a per-flow shaper's copy at 2 x 10 MB/s for 0.4-0.5 s more of its 0.8-1.0 s
   * there. The yardstick is shorter, so a jump past fourfold is judged against its ceilRate (step-payoff.ts
   * `paid`); a window-bound fourfold one moved 40 pieces or more in its two intervals alone (2 x 100 MB/s).
   */
  #jump(to: number): TunerAction {
    const counted = this.#warmup.slice(-2);
    const quietAtStart = counted[0]?.quietBefore ?? 0;
    const connections = counted[0]?.connections ?? 0;
    // The client's figures are the warm-up's: the jump's TLS starts would count against 2 connections.
    const { elu, cpuPerByte } = measure(counted, quietAtStart, connections);
    const yardstick = { counted, quietAtStart, connections, elu, cpuPerByte, atMs: this.#elapsedMs };
    const action = this.#grow(to);
    this.#yardstick = yardstick;
    return action;
  }

  /** While the jump's connections open: `s` counts towards the yardstick if none of them had attached. */
  #measureYardstick(s: TunerSample): void {
    const y = this.#yardstick;
    if (y === undefined) return;
    if (s.connections === y.connections) y.counted.push(s);
    else this.#endYardstick(s.rttMs);
  }

  #endYardstick(rttMs: number): void {
    const y = this.#yardstick;
    if (y === undefined) return;
    this.#yardstick = undefined;
    const m = measure(y.counted, y.quietAtStart, y.connections);
    this.#steps.push({ ...m, elu: y.elu, cpuPerByte: y.cpuPerByte, gain: undefined, rttMs, atMs: y.atMs });
  }

  /** The last two intervals moved RISING times what the two before them did (or the first two, one). */
  #climbing(): boolean {
    const w = this.#warmup;
    const span = w.length >= 4 ? 2 : 1;
    return rateOf(w.slice(-span)) > RISING * rateOf(w.slice(-2 * span, -span));
  }

  #measured(connections: number): Measured {
    return measure(this.#counted, this.#quietAtStart, connections);
  }

  #decide(m: Measured, last: TunerSample): TunerAction {
    const prev = this.#steps.at(-1);
    if (prev !== undefined && this.#starved(prev, m, last.rttMs)) return this.#measureAgain();
    const gain = prev === undefined ? undefined : m.rate / prev.rate - 1;
    this.#steps.push({ ...m, gain, rttMs: last.rttMs, atMs: this.#elapsedMs });
    if (prev !== undefined && !paid(prev, m, last.rttMs)) {
      this.#target = prev.connections;
      this.#stopped = 'no-gain';
      return { kind: 'shrink', to: prev.connections };
    }
    if (m.elu >= CPU_BOUND_ELU) return this.#stop('cpu');
    if (prev !== undefined && saturated(prev, m, last.rttMs)) return this.#stop('saturated');
    if (m.connections >= this.#max) return this.#stop('cap');
    if (this.#nearEnd(last)) return this.#stop('end');
    return this.#grow(Math.min(this.#next(m, prev, gain, last.rttMs), this.#max));
  }

  /**
   * Fourfold after the first step (nothing to compare it with yet); the cap after one that scaled nearly
   * linearly (on a per-flow-limited path a x2 then x2 again only spends a step per doubling: 2 -> 8 -> 16 ->
   * 32 took ~3 s of a 1 GiB copy at 10 MB/s per flow); twofold otherwise.
   */
  #next(m: Measured, prev: TunerStep | undefined, gain: number | undefined, rttMs: number): number {
    if (prev === undefined || gain === undefined) return firstGrowth(m, rttMs);
    const linear = gain >= LINEAR_SHARE * (m.connections / prev.connections - 1);
    return linear ? this.#max : m.connections * 2;
  }

  /**
   * The step read lower than the window-bound one before it while the client's event loop was saturated:
   * a reading of a starved client, not of the path (connections that each carried a window per round trip
   * lose nothing to new ones beside them on the path: at worst the total stays where it was). On a box at a
   * load of 11 on 2 cores, 2 -> 8 through the emulator read -32 % and -49 % at 94-100 % busy, and went back
   * to 2 (200 of 250 MB/s) for the rest of a 2 GiB copy: 14-15 s against 10.5. Measured once more, from a
   * new warm-up; a second such reading is judged as it is.
   */
  #starved(prev: TunerStep, m: Measured, rttMs: number): boolean {
    if (this.#remeasured || m.rate >= prev.rate || m.elu < CPU_BOUND_ELU) return false;
    return windowBound(prev, rttMs);
  }

  #measureAgain(): TunerAction {
    this.#remeasured = true;
    this.#warmup = [];
    return { kind: 'wait' };
  }

  #grow(to: number): TunerAction {
    this.#target = to;
    this.#opening = true;
    this.#waitedMs = 0;
    this.#warmup = [];
    this.#remeasured = false;
    return { kind: 'grow', to };
  }

  #stop(reason: StopReason): TunerAction {
    this.#stopped = reason;
    return { kind: 'stop' };
  }

  /**
   * What is left would cross within another step at the current rate: a rate taken while the transfer
   * drains would read as a step that did not pay, and connections opened that late carry little.
   */
  #nearEnd(s: TunerSample): boolean {
    const perMs = s.ms > 0 ? s.bytes / s.ms : 0;
    return s.remainingBytes < perMs * NEXT_STEP_MS;
  }
}
