import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/index.js';
import { reduceStats, type TransferEvent, TransferEvents } from '../../src/transfer/events.js';
import { createStats } from '../../src/transfer/stats.js';

// The transfer event stream (src/transfer/events.ts): the stats are a reducer over it, listeners are called
// in order and can leave.

test('reduceStats counts a mixed run the way the summary line reads it', () => {
  const stats = createStats(0);
  const events: TransferEvent[] = [
    { type: 'listed', path: 'd', kind: 'dir' },
    { type: 'listed', path: 'd/a', kind: 'file' },
    { type: 'listed', path: 'd/b', kind: 'file' },
    { type: 'listed', path: 'd/l', kind: 'symlink' },
    { type: 'listed', path: 'd/x', kind: 'file' },
    { type: 'unlisted', path: 'd/x' },
    { type: 'list-complete' },
    { type: 'needed', path: 'd/a', bytes: 3000, held: 500 },
    { type: 'skipped', path: 'd/b', kind: 'file', size: 10 },
    { type: 'data', bytes: 1000 },
    { type: 'data', bytes: 2000 },
    { type: 'finished', path: 'd/a', kind: 'file', size: 3500, resumedBytes: 500 },
    { type: 'failed', path: 'd/l', error: new FcpError('EACCES', undefined, { path: 'd/l' }) },
    { type: 'finished', path: 'd', kind: 'dir', size: 0, resumedBytes: 0 },
    { type: 'warning', error: new FcpError('FCP_ERR_FILE_CHANGED') },
  ];
  for (const event of events) reduceStats(stats, event);
  assert.equal(
    { ...stats, startedMs: 0, lastDataMs: 0 },
    {
      filesTotal: 4,
      listComplete: true,
      filesSent: 1,
      filesSkipped: 1,
      filesFailed: 1,
      filesNotSent: 0,
      bytesTotal: 3000,
      bytesDone: 3000,
      bytesResumed: 500,
      bytesHeld: 500,
      dirs: 1,
      startedMs: 0,
      lastDataMs: 0,
    },
  );
});

test('a skipped directory counts as a directory, not as a skipped file', () => {
  const stats = createStats(0);
  reduceStats(stats, { type: 'skipped', path: 'd', kind: 'dir', size: 0 });
  assert.is(stats.dirs, 1);
  assert.is(stats.filesSkipped, 0);
});

test('listeners hear every event in subscription order, and an unsubscribed one hears no more', () => {
  const events = new TransferEvents();
  const heard: string[] = [];
  const offA = events.on((e) => heard.push(`a:${e.type}`));
  events.on((e) => heard.push(`b:${e.type}`));
  events.emit({ type: 'list-complete' });
  offA();
  events.emit({ type: 'data', bytes: 1 });
  assert.equal(heard, ['a:list-complete', 'b:list-complete', 'b:data']);
});

test('a listener that leaves during an event does not make another miss it', () => {
  const events = new TransferEvents();
  const heard: string[] = [];
  const off = events.on(() => {
    heard.push('first');
    off();
  });
  events.on(() => heard.push('second'));
  events.emit({ type: 'list-complete' });
  events.emit({ type: 'list-complete' });
  assert.equal(heard, ['first', 'second', 'second']);
});

test.run();
