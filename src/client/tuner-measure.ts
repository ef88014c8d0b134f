/**
 * What `--connections auto`'s tuner (connection-tuner.ts) is fed every interval, and how it turns a run of
 * those samples into a step's figures.
 */

/** Goodput is counted in whole pieces: acknowledged (a push) or received (a pull) whole. */
export const PIECE_BYTES = 1024 * 1024;

/** What the client saw over one interval. */
export interface TunerSample {
  /** The interval's length. */
  readonly ms: number;
  /** File data that crossed in it (acknowledged on a push, received on a pull). */
  readonly bytes: number;
  /** Data connections open at its end (the control one included): attached, so carrying data. */
  readonly connections: number;
  /** Connections on their way at its end (dialling, logging in through ssh, attaching). */
  readonly opening: number;
  /** Event-loop utilisation over it, 0..1 (performance.eventLoopUtilization). */
  readonly elu: number;
  /** The client's CPU time over it (user + system, all its threads), in ms (process.cpuUsage). */
  readonly cpuMs: number;
  /** File data known to be still to cross (what was asked for minus what crossed). */
  readonly remainingBytes: number;
  /** The shortest round trip measured on the session's connections so far, in ms; 0 while none was. */
  readonly rttMs: number;
  /**
   * Time since file data last crossed, at the interval's end (0 for a steady stream). On a push data
   * crosses in bursts, a whole piece per acknowledgement; this lets a measurement span whole bursts.
   */
  readonly quietMs: number;
}

/** A step's figures, as measured over its samples. */
export interface Measured {
  readonly connections: number;
  /** Bytes per second. */
  readonly rate: number;
  /** Bytes per second with a whole piece per connection counted against it (step-payoff.ts). */
  readonly sureRate: number;
  /**
   * Bytes per second with a whole piece per connection counted for it: the most the reading may have
   * missed, what a jump is judged against (step-payoff.ts `paid`).
   */
  readonly ceilRate: number;
  /** The client's event-loop utilisation over it, 0..1. */
  readonly elu: number;
  /** The client's CPU time per byte moved over it, in ns (CPU-seconds per GB). */
  readonly cpuPerByte: number;
}

/**
 * The goodput of `counted` over whole bursts: from the last data before the measurement began (`quietAtStart`
 * before its first interval) to the last data in it. On a push every connection's acknowledgement brings a
 * whole piece at once, and a step's connections move in step: 8 connections on a 24 MB/s link acknowledge
 * 8 MiB together every 0.35 s, so a fixed window of 2 s holds 5 or 6 of those bursts by phase alone, and
 * read 2 -> 8 as +15 % on a link that 2 already filled. Counting from burst to burst, the phase drops out;
 * a steady stream (a pull) has quietMs near 0 at both ends and is measured as before.
 */
export function measure(
  counted: readonly TunerSample[],
  quietAtStart: number,
  connections: number,
): Measured {
  const elu = counted.reduce((sum, c) => sum + c.elu, 0) / Math.max(1, counted.length);
  const { bytes, ms } = totals(counted);
  const cpuMs = counted.reduce((sum, c) => sum + c.cpuMs, 0);
  const spanMs = ms + quietAtStart - (counted.at(-1)?.quietMs ?? 0);
  const perSecond = (b: number): number => (spanMs > 0 ? (b * 1000) / spanMs : 0);
  const rate = bytes > 0 ? perSecond(bytes) : 0;
  const sureRate = perSecond(Math.max(0, bytes - connections * PIECE_BYTES));
  const ceilRate = perSecond(bytes + connections * PIECE_BYTES);
  return { connections, rate, sureRate, ceilRate, elu, cpuPerByte: bytes > 0 ? (cpuMs * 1e6) / bytes : 0 };
}

/** Bytes per second over `samples`. */
export function rateOf(samples: readonly Pick<TunerSample, 'bytes' | 'ms'>[]): number {
  const { bytes, ms } = totals(samples);
  return ms > 0 ? (bytes * 1000) / ms : 0;
}

/** File data that crossed over `samples`. */
export function totalBytes(samples: readonly Pick<TunerSample, 'bytes' | 'ms'>[]): number {
  return totals(samples).bytes;
}

/** The bytes and the time of `samples` together. */
function totals(samples: readonly Pick<TunerSample, 'bytes' | 'ms'>[]): { bytes: number; ms: number } {
  let bytes = 0;
  let ms = 0;
  for (const s of samples) {
    bytes += s.bytes;
    ms += s.ms;
  }
  return { bytes, ms };
}

/** The first step's measurement while its jump's connections open (ConnectionTuner #jump). */
export interface Yardstick {
  readonly counted: TunerSample[];
  readonly quietAtStart: number;
  readonly connections: number;
  /** The warm-up's event-loop utilisation and CPU per byte (Measured), before the jump. */
  readonly elu: number;
  readonly cpuPerByte: number;
  /** When the jump was taken, in ms of sampling. */
  readonly atMs: number;
}
