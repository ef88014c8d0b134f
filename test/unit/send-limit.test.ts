import * as assert from 'uvu/assert';
import { FileKind, type FileInfoMsg, MsgType } from '../../src/protocol/index.js';
import { LimitedDecisions } from '../../src/transfer/receive-limit.js';
import { SendLimit } from '../../src/transfer/send-limit.js';
import { test } from '../helpers/test.js';

// --limit (src/transfer/send-limit.ts, receive-limit.ts): the first N files that need sending in walk
// order, whatever order the decisions come back in.

function info(id: number): FileInfoMsg {
  return {
    type: MsgType.FileInfo,
    id,
    kind: FileKind.File,
    mode: 0o644,
    size: 10n,
    mtimeNs: 0n,
    checksum: undefined,
    path: `f${id}`,
    linkTarget: '',
  };
}

test('at most limit - wanted files are decided at once; past the limit the rest are left out', () => {
  const limit = new SendLimit(2);
  assert.is(limit.admit(), 'go');
  assert.is(limit.admit(), 'go');
  assert.is(limit.admit(), 'wait', 'both might still be needed');
  limit.decided(false);
  assert.is(limit.admit(), 'go', 'one was identical: the next file gets its turn');
  limit.decided(true);
  limit.decided(true);
  assert.is(limit.admit(), 'leave-out');
});

test('the receiver decides in list order and leaves out in list order, decisions made on the spot or later', () => {
  const deciding: number[] = [];
  const left: number[] = [];
  const limited = new LimitedDecisions(new SendLimit(2), {
    decide: (i) => deciding.push(i.id),
    leaveOut: (i) => left.push(i.id),
  });
  for (let id = 1; id <= 6; id++) limited.offer(info(id));
  assert.equal(deciding, [1, 2], 'two may both be needed');
  limited.decided(2, false);
  assert.equal(deciding, [1, 2, 3]);
  limited.decided(3, true);
  limited.decided(99, true); // not admitted by the limit: ignored
  assert.equal(deciding, [1, 2, 3]);
  limited.decided(1, true);
  assert.equal(left, [4, 5, 6]);
});

test('a file decided inside decide() does not recurse once per waiting file', () => {
  const order: string[] = [];
  const limited: LimitedDecisions = new LimitedDecisions(new SendLimit(1), {
    decide: (i) => {
      order.push(`decide ${i.id}`);
      limited.decided(i.id, i.id === 500);
    },
    leaveOut: (i) => order.push(`out ${i.id}`),
  });
  for (let id = 1; id <= 502; id++) limited.offer(info(id));
  assert.is(order.filter((o) => o.startsWith('decide')).length, 500);
  assert.equal(order.slice(-2), ['out 501', 'out 502']);
});

test.run();
