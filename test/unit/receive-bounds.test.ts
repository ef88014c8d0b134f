import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { LIST_WINDOW } from '../../src/protocol/constants.js';
import { FcpError } from '../../src/protocol/errors.js';
import { OpenEntries, RecentIds } from '../../src/transfer/receive-bounds.js';

// receive-bounds.ts: the receiver's count of open list entries (the protocol's window) and the bounded
// memory of given-up ids.

test('the window holds LIST_WINDOW open entries; one more is FCP_ERR_PROTO_WINDOW', () => {
  const open = new OpenEntries();
  for (let id = 1; id <= LIST_WINDOW; id++) open.admit(id);
  assert.is(open.size, LIST_WINDOW);
  try {
    open.admit(LIST_WINDOW + 1);
    assert.unreachable('admitted past the window');
  } catch (err) {
    assert.instance(err, FcpError);
    assert.is((err as FcpError).code, 'FCP_ERR_PROTO_WINDOW');
    assert.ok((err as FcpError).fatal);
  }
});

test('settling frees a slot, once, whatever answered it', () => {
  const open = new OpenEntries();
  for (let id = 1; id <= LIST_WINDOW; id++) open.admit(id);
  open.settle(7);
  open.settle(7);
  open.settle(999_999);
  assert.is(open.size, LIST_WINDOW - 1);
  open.admit(LIST_WINDOW + 1);
  assert.throws(() => open.admit(LIST_WINDOW + 2), /unanswered/);
});

test('RecentIds forgets the oldest beyond its capacity', () => {
  const ids = new RecentIds(3);
  for (const id of [1, 2, 3, 4]) ids.add(id);
  assert.not.ok(ids.has(1));
  for (const id of [2, 3, 4]) assert.ok(ids.has(id));
  ids.add(4);
  ids.add(5);
  assert.not.ok(ids.has(2));
  assert.ok(ids.has(5));
});

test.run();
