import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FileKind, MsgType } from '../../src/protocol/constants.js';
import { FrameBatch } from '../../src/protocol/frame-batch.js';
import { FrameDecoder } from '../../src/protocol/frame.js';
import { encodeFrame } from '../../src/protocol/frame-encode.js';
import { encodeMessage, type Message } from '../../src/protocol/messages.js';
import { loadFrameBuilder } from '../helpers/frame-builder.js';

// FrameBatch (src/protocol/frame-batch.ts): the same frames as encodeFrame, back to back in one buffer.

const fb = await loadFrameBuilder();

function fileInfo(id: number, path: string): Exclude<Message, { type: typeof MsgType.Data }> {
  return {
    type: MsgType.FileInfo,
    id,
    kind: FileKind.File,
    mode: 0o644,
    size: BigInt(id * 1000),
    mtimeNs: 1_700_000_000_123_456_789n + BigInt(id),
    checksum: undefined,
    path,
    linkTarget: '',
  };
}

test('a batch holds exactly the frames encodeFrame makes, across takes and growth', () => {
  const batch = new FrameBatch(fb.h32);
  const expected: Buffer[] = [];
  const taken: Buffer[] = [];
  // Long paths push the batch past its first buffer several times; a take every 300 messages in between.
  for (let id = 1; id <= 2000; id++) {
    const msg =
      id % 7 === 0
        ? ({ type: MsgType.DirInfo, id, mode: 0o755, mtimeNs: 5n, path: `dir-${id}` } as const)
        : fileInfo(id, `d/${'x'.repeat(id % 500)}-${id}`);
    batch.add(msg);
    expected.push(encodeFrame(msg.type, encodeMessage(msg), fb.h32));
    if (id % 300 === 0) taken.push(batch.take());
  }
  taken.push(batch.take());
  assert.is(batch.length, 0);
  // Earlier takes are untouched by later writes: the batch never writes into what it handed out.
  assert.ok(Buffer.concat(taken).equals(Buffer.concat(expected)));

  const decoded: number[] = [];
  const decoder = new FrameDecoder(fb.h32, (type) => decoded.push(type));
  for (const part of taken) decoder.push(part);
  assert.is(decoded.length, 2000);
});

test('a message that cannot be encoded adds nothing', () => {
  const batch = new FrameBatch(fb.h32);
  batch.add(fileInfo(1, 'a'));
  const before = batch.length;
  assert.throws(() => batch.add(fileInfo(2, 'x'.repeat(70_000))));
  assert.is(batch.length, before);
});

test.run();
