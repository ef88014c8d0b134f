import * as assert from 'uvu/assert';
import { PIECE_SIZE } from '../../src/protocol/index.js';
import {
  AckWindow,
  MAX_WINDOW_BYTES,
  MIN_WINDOW_BYTES,
  START_WINDOW_BYTES,
  WINDOW_SECONDS,
} from '../../src/transfer/ack-window.js';
import { test } from '../helpers/test.js';

// AckWindow (src/transfer/ack-window.ts): what one connection of a sender may hold unacknowledged, from its
// own acknowledged rate. Times are given, not read from a clock.

/**
 * Acknowledges whole pieces at `rate` bytes/s for `ms`, starting at `from`, the first one a probe that took
 * `baseMs`; returns the time reached.
 */
function ackAt(w: AckWindow, rate: number, from: number, ms: number, baseMs: number): number {
  const every = (PIECE_SIZE / rate) * 1000;
  let t = from;
  for (let first = true; t + every <= from + ms; first = false) {
    t += every;
    w.acked(PIECE_SIZE, t, first ? baseMs : undefined);
  }
  return t;
}

test('starts at the start window', () => {
  assert.is(new AckWindow(0).bytes, START_WINDOW_BYTES);
});

test('a connection at 8 MB/s (a per-flow shaper) holds about WINDOW_SECONDS of it, not 64 pieces', () => {
  const w = new AckWindow(0);
  ackAt(w, 8e6, 0, 2000, 150);
  assert.ok(Math.abs(w.bytes - 8e6 * WINDOW_SECONDS) < 0.1 * 8e6 * WINDOW_SECONDS, `${w.bytes} bytes`);
});

test('a slow connection still holds two pieces: one crossing, one behind it', () => {
  const w = new AckWindow(0);
  ackAt(w, 1e6, 0, 5000, 40);
  assert.is(w.bytes, MIN_WINDOW_BYTES);
});

test('a fast connection may hold up to the most, and a long round trip opens the window past WINDOW_SECONDS', () => {
  const fast = new AckWindow(0);
  ackAt(fast, 1e9, 0, 1000, 1);
  assert.is(fast.bytes, MAX_WINDOW_BYTES);
  // 600 ms from a piece sent alone to its acknowledgement (a satellite path): twice that of its rate.
  const far = new AckWindow(0);
  ackAt(far, 20e6, 0, 3000, 600);
  assert.ok(far.bytes >= 20e6 * 1.1, `${far.bytes} bytes`);
});

test('held back by its own window, it opens at least twofold per measurement', () => {
  // The window is what limits: each span acknowledges the window once per base latency (100 ms).
  const w = new AckWindow(0);
  let t = 0;
  for (let i = 0; i < 6; i++) {
    const before = w.bytes;
    t = ackAt(w, (before / 100) * 1000, t, 250, 100);
    assert.ok(w.bytes >= Math.min(MAX_WINDOW_BYTES, 1.9 * before), `${before} -> ${w.bytes}`);
  }
});

test('one span through a stall at most halves it', () => {
  const w = new AckWindow(0);
  const t = ackAt(w, 100e6, 0, 1000, 45);
  const before = w.bytes;
  w.acked(PIECE_SIZE, t + 1000);
  assert.is(w.bytes, before / 2);
});

test('a connection that stood idle for want of data starts its measurement over', () => {
  const w = new AckWindow(0);
  ackAt(w, 100e6, 0, 1000, 45);
  const before = w.bytes;
  // Nothing unacknowledged from 1 s to 5 s: given data again, one piece at its old rate is no slowdown.
  w.restarted(5000);
  ackAt(w, 100e6, 5000, 300, 45);
  assert.ok(w.bytes >= 0.9 * before, `${before} -> ${w.bytes}`);
});

test.run();
