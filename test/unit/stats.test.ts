// RunTotals: the summary of a run whose session was lost and retried counts each file and byte once
// (issue 15: a 500 MiB file resumed after a daemon restart read "498 MiB ... 189 MiB resumed").
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { createStats, RunTotals, type TransferStats } from '../../src/transfer/stats.js';

const MiB = 1 << 20;

function attempt(fields: Partial<TransferStats>): TransferStats {
  return { ...createStats(0), ...fields };
}

test('one attempt: its own figures', () => {
  const totals = new RunTotals();
  const only = attempt({ filesSent: 3, filesSkipped: 2, bytesDone: 10 * MiB, bytesResumed: MiB });
  totals.add(only);
  const s = totals.summary(only);
  assert.equal([s.filesSent, s.filesSkipped, s.bytesDone, s.bytesResumed], [3, 2, 10 * MiB, MiB]);
});

test('a retried 500 MiB file: what the first attempt sent and the second resumed counts once, as resumed', () => {
  const totals = new RunTotals();
  totals.add(attempt({ bytesDone: 189 * MiB }));
  const last = attempt({ filesSent: 1, bytesDone: 311 * MiB, bytesResumed: 189 * MiB });
  totals.add(last);
  const s = totals.summary(last);
  assert.is(s.bytesDone, 311 * MiB);
  assert.is(s.bytesResumed, 189 * MiB);
  assert.is(s.filesSent, 1);
});

test('files finished by an earlier attempt count as sent, not skipped; no byte counts twice', () => {
  const totals = new RunTotals();
  // Attempt 1 finishes a 100 MiB file and dies; attempt 2 skips it and resumes 80 MiB of another file that
  // an earlier run kept. Which attempt's pieces were kept is not known here: the 80 MiB may be taken for
  // this run's, so "sent" can come out low, never a byte counted twice.
  totals.add(attempt({ filesSent: 1, bytesDone: 100 * MiB }));
  const last = attempt({ filesSent: 1, filesSkipped: 1, bytesDone: 20 * MiB, bytesResumed: 80 * MiB });
  totals.add(last);
  const s = totals.summary(last);
  assert.is(s.filesSent, 2);
  assert.is(s.filesSkipped, 0, 'the file the first attempt sent is not also skipped');
  assert.is(s.bytesResumed, 80 * MiB);
  assert.ok(s.bytesDone + s.bytesResumed <= 200 * MiB, 'no byte counted twice');
});

test.run();
