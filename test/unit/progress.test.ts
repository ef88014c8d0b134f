import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import {
  fitLine,
  formatBytes,
  formatCount,
  formatDuration,
  formatRate,
  formatSummary,
  ProgressReporter,
} from '../../src/cli/progress.js';
import { createStats, type TransferStats } from '../../src/transfer/stats.js';

const GiB = 1024 ** 3;

/** A stream stand-in that records every write. */
class FakeTty {
  isTTY = true;
  columns: number | undefined = 120;
  writes: string[] = [];
  write(chunk: string | Uint8Array): boolean {
    this.writes.push(String(chunk));
    return true;
  }
}

function reporter(stream: FakeTty, clock: { now: number }, enabled = true): ProgressReporter {
  // The fake implements only what ProgressReporter uses; the cast stands in for the rest of WritableStream.
  const fake = stream as unknown as NodeJS.WritableStream & { isTTY: boolean; columns?: number };
  return new ProgressReporter({ stream: fake, enabled, nowMs: () => clock.now });
}

function stats(patch: Partial<TransferStats>): TransferStats {
  return { ...createStats(0), ...patch };
}

test('formatBytes', () => {
  assert.is(formatBytes(0), '0 B');
  assert.is(formatBytes(512), '512 B');
  assert.is(formatBytes(1023), '1023 B');
  assert.is(formatBytes(1536), '1.50 KiB');
  assert.is(formatBytes(10 * 1024 + 100), '10.1 KiB');
  assert.is(formatBytes(1000 * 1024), '1000 KiB');
  assert.is(formatBytes(1023.9 * 1024), '1.00 MiB');
  assert.is(formatBytes(1.23 * GiB), '1.23 GiB');
  assert.is(formatBytes(2 * GiB), '2.00 GiB');
  assert.is(formatBytes(5 * 1024 ** 4), '5.00 TiB');
  assert.is(formatBytes(-1), '?');
});

test('formatRate', () => {
  assert.is(formatRate(0), '0 B/s');
  assert.is(formatRate(999), '999 B/s');
  assert.is(formatRate(999.7), '1.00 kB/s');
  assert.is(formatRate(45_100), '45.1 kB/s');
  assert.is(formatRate(612e6), '612 MB/s');
  assert.is(formatRate(999.96e6), '1.00 GB/s');
  assert.is(formatRate(1.234e9), '1.23 GB/s');
  assert.is(formatRate(Number.NaN), '? B/s');
});

test('formatDuration', () => {
  assert.is(formatDuration(0), '0:00');
  assert.is(formatDuration(5), '0:05');
  assert.is(formatDuration(754), '12:34');
  assert.is(formatDuration(3723), '1:02:03');
  assert.is(formatDuration(Number.POSITIVE_INFINITY), '?:??');
});

test('formatCount', () => {
  assert.is(formatCount(0), '0');
  assert.is(formatCount(999), '999');
  assert.is(formatCount(4000), '4,000');
  assert.is(formatCount(1234567), '1,234,567');
});

test('formatSummary', () => {
  const s = stats({ filesSent: 1004, filesSkipped: 12, bytesDone: 2.1 * GiB });
  assert.is(
    formatSummary(s, 3.4),
    'fcp: 1,004 files sent, 12 skipped, 0 failed, 2.10 GiB in 3.4 s (663 MB/s)',
  );
  assert.is(
    formatSummary(stats({ filesSent: 1, filesFailed: 2, bytesDone: 10 }), 0),
    'fcp: 1 file sent, 0 skipped, 2 failed, 10 B in 0.0 s',
  );
  assert.match(formatSummary(stats({ bytesDone: 0 }), 125), / in 2:05 \(0 B\/s\)$/);
});

test('fitLine drops fields from the right, then truncates', () => {
  const fields = ['aaaa', 'bbbb', 'cccc'];
  assert.is(fitLine(fields, 80), '  aaaa  bbbb  cccc');
  assert.is(fitLine(fields, 19), '  aaaa  bbbb  cccc');
  assert.is(fitLine(fields, 18), '  aaaa  bbbb');
  assert.is(fitLine(fields, 7), '  aaaa');
  assert.is(fitLine(fields, 5), '  aa');
});

test('draws one line with \\r and erase-to-end; totals known', () => {
  const tty = new FakeTty();
  const clock = { now: 2000 };
  const r = reporter(tty, clock);
  r.update(
    stats({
      listComplete: true,
      bytesTotal: 2 * GiB,
      bytesDone: 1.23 * GiB,
      filesTotal: 4000,
      filesSent: 120,
    }),
  );
  assert.is(tty.writes.length, 1);
  const line = tty.writes[0]!;
  assert.ok(line.startsWith('\r'));
  assert.ok(line.endsWith('\x1b[K'));
  // 1.23 GiB in 2 s since startedMs 0 = 660 MB/s; 0.77 GiB left at that rate is about 1.25 s.
  assert.is(line, '\r  1.23 GiB / 2.00 GiB  660 MB/s  ETA 0:01  files 120/4,000\x1b[K');
});

test('while the list is walked: the totals so far, marked "+", and no ETA', () => {
  const tty = new FakeTty();
  const r = reporter(tty, { now: 1000 });
  r.update(stats({ bytesTotal: 2048, bytesDone: 1024, filesTotal: 10, filesSent: 3 }));
  assert.is(tty.writes[0], '\r  1.00 KiB / 2.00 KiB+  1.02 kB/s  files 3/10+\x1b[K');
});

test('after a resume: held bytes are done from the start, the rate and ETA count only bytes sent', () => {
  const tty = new FakeTty();
  const r = reporter(tty, { now: 1000 });
  // 1.5 GiB of a 2 GiB file was kept by the receiver; 0.25 GiB has been sent in the first second.
  r.update(
    stats({
      listComplete: true,
      filesTotal: 1,
      bytesHeld: 1.5 * GiB,
      bytesTotal: 0.5 * GiB,
      bytesDone: GiB / 4,
    }),
  );
  // 268 MB/s, 0.25 GiB left: 1 s. Counting the held bytes as sent would read 1.88 GB/s and ETA 0:00.
  assert.is(tty.writes[0], '\r  1.75 GiB / 2.00 GiB  268 MB/s  ETA 0:01  files 0/1\x1b[K');
});

test('failed files are shown once there are any', () => {
  const tty = new FakeTty();
  const r = reporter(tty, { now: 1000 });
  r.update(stats({ listComplete: true, filesTotal: 5, filesSent: 3, filesFailed: 2 }));
  assert.match(tty.writes[0]!, /files 5\/5 {2}2 failed/);
});

test('throttles to one draw per interval', () => {
  const tty = new FakeTty();
  const clock = { now: 1000 };
  const r = reporter(tty, clock);
  const s = stats({ bytesDone: 1 });
  r.update(s);
  clock.now += 100;
  r.update(s);
  clock.now += 99;
  r.update(s);
  assert.is(tty.writes.length, 1);
  clock.now += 1;
  r.update(s);
  assert.is(tty.writes.length, 2);
});

test('rate is measured over a sliding window, not since the start', () => {
  const tty = new FakeTty();
  const clock = { now: 0 };
  const r = reporter(tty, clock);
  const s = stats({});
  // 10 s at 100 MB/s, then 10 s stalled: the average since the start would still say 50 MB/s.
  for (let t = 200; t <= 20_000; t += 200) {
    clock.now = t;
    s.bytesDone = Math.min(t, 10_000) * 100_000;
    r.update(s);
  }
  assert.match(tty.writes.at(-1)!, / {2}0 B\/s/);
  clock.now = 20_200;
  s.bytesDone += 10_000_000;
  r.update(s);
  // 10 MB over the last 5 s.
  assert.match(tty.writes.at(-1)!, / {2}2.00 MB\/s/);
});

test('fits the terminal width, and re-reads it on every draw', () => {
  const tty = new FakeTty();
  const clock = { now: 1000 };
  const r = reporter(tty, clock);
  const s = stats({
    listComplete: true,
    bytesTotal: 2 * GiB,
    bytesDone: GiB,
    filesTotal: 4000,
    filesSent: 120,
  });
  tty.columns = 40;
  r.update(s);
  const body = (w: string): string => w.slice(1, -3);
  assert.ok(body(tty.writes[0]!).length <= 39, tty.writes[0]);
  assert.is(body(tty.writes[0]!), '  1.00 GiB / 2.00 GiB  1.07 GB/s');
  tty.columns = 10;
  clock.now += 200;
  r.update(s);
  assert.is(body(tty.writes[1]!), '  1.00 Gi');
  tty.columns = undefined;
  clock.now += 200;
  r.update(s);
  assert.ok(body(tty.writes[2]!).includes('files 120/4,000'));
});

test('--bwlimit: the rate says it is capped', () => {
  const tty = new FakeTty();
  const fake = tty as unknown as NodeJS.WritableStream & { isTTY: boolean; columns?: number };
  const r = new ProgressReporter({ stream: fake, enabled: true, nowMs: () => 1000, capBps: 10_000_000 });
  r.update(stats({ bytesDone: 9_000_000 }));
  assert.match(tty.writes.at(-1)!, / {2}9.00 MB\/s \(capped at 10.0 MB\/s\)/);
});

test('finish clears a drawn line, and only then', () => {
  const tty = new FakeTty();
  const clock = { now: 1000 };
  const r = reporter(tty, clock);
  r.finish();
  assert.equal(tty.writes, []);
  r.update(stats({}));
  r.finish();
  assert.is(tty.writes.at(-1), '\r\x1b[K');
  r.finish();
  assert.is(tty.writes.length, 2);
});

test('disabled: nothing is ever written', () => {
  const tty = new FakeTty();
  const clock = { now: 1000 };
  const r = reporter(tty, clock, false);
  r.update(stats({ bytesDone: 5 }));
  clock.now += 1000;
  r.update(stats({ bytesDone: 10 }));
  r.finish();
  assert.equal(tty.writes, []);
});

test.run();
