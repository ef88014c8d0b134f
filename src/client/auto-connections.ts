/**
 * `--connections auto` at run time: every SAMPLE_MS it feeds the tuner (connection-tuner.ts) what the
 * client sees (file data that crossed, connections open, how busy its event loop was) and carries out the
 * answer through the hooks of ExtraConnections: attach more, or retire the newest.
 */
import { type EventLoopUtilization, performance } from 'node:perf_hooks';
import type { TransferStats } from '../transfer/stats.js';
import { AUTO_MAX, ConnectionTuner } from './connection-tuner.js';
import { describeTuning } from './tuning-line.js';

/**
 * Two round trips of the emulated WAN (40 ms) and many of the receiver's ack batches (a few ms): a step's
 * measurement spans several of these anyway (connection-tuner.ts counts bytes and time, not intervals).
 * 200 ms made every step wait a whole interval more for its connections and its warm-up: 2 -> 8 -> 32
 * took ~3 s of a 1 GiB copy through the per-flow shaper.
 */
export const SAMPLE_MS = 100;

/** What PUSH/PULL ask of the daemon: room for auto to grow to AUTO_MAX, or the count given. */
export function requestedConnections(connections: number | 'auto'): number {
  return connections === 'auto' ? AUTO_MAX : connections;
}

export interface AutoHooks {
  /** Attach until `to` are open (the control one included). */
  grow(to: number): void;
  /** Retire the newest until `to` are left; false if the engine cannot (a pull). */
  shrink(to: number): boolean;
  /** Connections attached now, the control one included. */
  open(): number;
  /** Connections on their way now (dialling, an ssh login, the ATTACH exchange): not carrying data yet. */
  opening(): number;
  /** The shortest round trip measured on the session's connections, in ms; 0 while none was. */
  rttMs(): number;
  /** The -v line, once the count is final. */
  notice(text: string): void;
}

export class AutoConnections {
  readonly #tuner: ConnectionTuner;
  readonly #stats: TransferStats;
  readonly #hooks: AutoHooks;
  #timer: NodeJS.Timeout | undefined;
  #lastMs = 0;
  #lastBytes = 0;
  #lastElu: EventLoopUtilization | undefined;
  #lastCpu: NodeJS.CpuUsage | undefined;
  #reported = false;

  constructor(max: number, start: number | undefined, stats: TransferStats, hooks: AutoHooks) {
    this.#tuner = new ConnectionTuner(max, start);
    this.#stats = stats;
    this.#hooks = hooks;
  }

  get target(): number {
    return this.#tuner.target;
  }

  /** The first connections are on their way: sampling starts. */
  start(): void {
    if (this.#timer !== undefined || this.#reported) return;
    this.#lastMs = performance.now();
    this.#lastBytes = this.#stats.bytesDone;
    this.#lastElu = performance.eventLoopUtilization();
    this.#lastCpu = process.cpuUsage();
    this.#timer = setInterval(() => this.#tick(), SAMPLE_MS);
    this.#timer.unref();
  }

  /** The session is over: the count is what it is. */
  end(): void {
    if (this.#timer === undefined) return;
    this.#tuner.stop('end');
    this.#report(true);
  }

  #tick(): void {
    const now = performance.now();
    const elu = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(elu, this.#lastElu).utilization;
    const cpu = process.cpuUsage();
    const last = this.#lastCpu ?? cpu;
    const bytes = this.#stats.bytesDone;
    const remaining = this.#stats.listComplete ? this.#stats.bytesTotal - bytes : Number.POSITIVE_INFINITY;
    const action = this.#tuner.sample({
      ms: now - this.#lastMs,
      bytes: bytes - this.#lastBytes,
      connections: this.#hooks.open(),
      opening: this.#hooks.opening(),
      elu: busy,
      cpuMs: (cpu.user + cpu.system - last.user - last.system) / 1000,
      remainingBytes: remaining,
      rttMs: this.#hooks.rttMs(),
      quietMs: Math.max(0, now - this.#stats.lastDataMs),
    });
    this.#lastMs = now;
    this.#lastBytes = bytes;
    this.#lastElu = elu;
    this.#lastCpu = cpu;
    if (action.kind === 'grow') this.#hooks.grow(action.to);
    else if (action.kind === 'shrink') this.#report(this.#hooks.shrink(action.to));
    else if (action.kind === 'stop') this.#report(true);
  }

  #report(retired: boolean): void {
    clearInterval(this.#timer);
    if (this.#reported) return;
    this.#reported = true;
    this.#hooks.notice(describeTuning(this.#tuner, retired));
  }
}
