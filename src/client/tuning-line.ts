/** The -v line of `--connections auto`: the tuner's steps and why the count is what it is. */
import type { ConnectionTuner } from './connection-tuner.js';

/**
 * The -v line: each step's count, rate and gain, then why the count stopped where it did, e.g.
 * `connections: 2 (21 MB/s, CPU 12 % 1.6 s/GB, at 0.8 s) -> 8 (79 MB/s, CPU 40 % 1.5 s/GB, at 1.6 s, +276 %)
 * -> 32 (84 MB/s, CPU 55 % 1.9 s/GB, at 2.5 s, +6 %) over a 41 ms round trip: the last step did not pay,
 * back to 8`. CPU is the client's event loop's busy share, then its CPU-seconds per GB moved; "at" is when
 * the step was judged, counted from the first connections being opened.
 * `retired`: whether a step that did not pay could be undone (a pull only by DETACH, which an older
 * daemon does not offer).
 */
export function describeTuning(tuner: ConnectionTuner, retired: boolean): string {
  const parts = tuner.steps.map((s) => {
    const rate = `${(s.rate / 1e6).toFixed(s.rate < 1e7 ? 1 : 0)} MB/s, CPU ${Math.round(s.elu * 100)} % ${s.cpuPerByte.toFixed(1)} s/GB, at ${(s.atMs / 1000).toFixed(1)} s`;
    return s.gain === undefined
      ? `${s.connections} (${rate})`
      : `${s.connections} (${rate}, ${signedPercent(s.gain)})`;
  });
  if (parts.length === 0) parts.push(`${tuner.target}`);
  const rttMs = tuner.steps.at(-1)?.rttMs ?? 0;
  const rtt = rttMs > 0 ? ` over a ${rttMs.toFixed(rttMs < 10 ? 1 : 0)} ms round trip` : '';
  const line = `connections: ${parts.join(' -> ')}${rtt}`;
  switch (tuner.stopped) {
    case 'no-gain':
      return retired
        ? `${line}: the last step did not pay, back to ${tuner.target}`
        : `${line}: the last step did not pay; its connections stay (the daemon is older than this fcp: it cannot be told to stop sending on them)`;
    case 'cpu':
      return `${line}: CPU-bound (event loop ${Math.round((tuner.steps.at(-1)?.elu ?? 0) * 100)} % busy), more connections would only cost CPU`;
    case 'cap':
      return `${line}: the most this session may open`;
    case 'saturated':
      return `${line}: the path is full (the last step added far less than its new connections would where there is room), no more`;
    default:
      return `${line}: the transfer ended before another step`;
  }
}

/** A gain as `+12 %`, `-5 %` or `0 %` (never `-0 %`, nor `+0 %` for a gain that rounds to nothing). */
function signedPercent(fraction: number): string {
  const pct = Math.round(fraction * 100);
  return pct > 0 ? `+${pct} %` : pct < 0 ? `${pct} %` : '0 %';
}
