// The sender's list window (send-window.ts): entries settled without data open it up to the protocol's
// LIST_WINDOW; files whose data is wanted close it again, never below its floor.
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { LIST_WINDOW } from '../../src/protocol/index.js';
import { SEND_WINDOW_FLOOR, SendWindow } from '../../src/transfer/send-window.js';

test('starts at its floor and never goes below it', () => {
  const w = new SendWindow();
  assert.is(w.size, SEND_WINDOW_FLOOR);
  for (let i = 0; i < 10; i++) w.dataWanted();
  assert.is(w.size, SEND_WINDOW_FLOOR);
});

test('a re-run whose entries are all skipped opens it to LIST_WINDOW, and no further', () => {
  const w = new SendWindow();
  for (let i = 0; i < 2 * LIST_WINDOW; i++) w.settledWithoutData();
  assert.is(w.size, LIST_WINDOW);
  for (let i = 0; i < 100; i++) w.dataWanted();
  assert.is(w.size, LIST_WINDOW - 100);
});

test.run();
