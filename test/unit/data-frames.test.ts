import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { MAX_DATA_BYTES, PIECE_SIZE } from '../../src/protocol/constants.js';
import {
  dataFrameCount,
  dataFramesSize,
  dataFrameViews,
  encodeDataFrame,
  encodeDataHead,
  sealDataFrames,
} from '../../src/protocol/data-frames.js';
import { FcpError } from '../../src/protocol/errors.js';
import { FrameDecoder } from '../../src/protocol/frame.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import { loadFrameBuilder, payload, T } from '../helpers/frame-builder.js';

// A piece laid out as its DATA frames in one buffer (src/protocol/data-frames.ts): what the sender reads
// file bytes into and writes to the socket whole. The frames must be exactly those a sender writing header
// and data apart produces, and the decoder must still refuse what it refused before.

const fb = await loadFrameBuilder();
const hasher = await loadHasher();

function filled(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** The piece's bytes laid out and sealed, the way a pump sends them. */
function layOut(data: Buffer, id: number, seq: number, summed: boolean): Buffer {
  const block = Buffer.alloc(dataFramesSize(data.length), 0xee);
  let at = 0;
  for (const view of dataFrameViews(block, data.length)) {
    data.copy(view, 0, at, at + view.length);
    at += view.length;
  }
  assert.is(at, data.length, 'the views cover the piece');
  return sealDataFrames(block, data.length, id, seq, summed ? fb.h32 : undefined);
}

/** The same piece as a sender writing each frame's header and data apart builds it. */
function oneByOne(data: Buffer, id: number, seq: number, summed: boolean): Buffer {
  const frames: Buffer[] = [];
  for (let at = 0; at < data.length; at += MAX_DATA_BYTES) {
    const p = payload.data({ id, seq, offset: at, data: data.subarray(at, at + MAX_DATA_BYTES) });
    frames.push(fb.frame(T.DATA, p, summed ? {} : { checksum: 0 }));
  }
  return Buffer.concat(frames);
}

const SIZES = [
  1,
  100,
  MAX_DATA_BYTES - 1,
  MAX_DATA_BYTES,
  MAX_DATA_BYTES + 1,
  3 * MAX_DATA_BYTES + 7,
  PIECE_SIZE,
];

test('the laid-out frames are byte for byte those written one by one, summed or not', () => {
  for (const size of SIZES) {
    const data = filled(size, size & 0xff);
    for (const summed of [true, false]) {
      const laid = layOut(data, 9, 4, summed);
      assert.is(laid.length, dataFramesSize(size), `${size}: length`);
      assert.ok(laid.equals(oneByOne(data, 9, 4, summed)), `${size} summed=${summed}: same bytes`);
    }
    assert.is(dataFrameCount(size), Math.ceil(size / MAX_DATA_BYTES));
  }
});

/** Decodes `stream` fed in `chunk`-byte pieces through a DataSink; returns the piece reassembled. */
function decodePiece(stream: Buffer, size: number, chunk: number, summed: boolean): Buffer {
  const piece = Buffer.alloc(size);
  let landed = 0;
  const decoder = new FrameDecoder(fb.h32, () => assert.unreachable('DATA goes to the sink'));
  decoder.setDataSink(
    {
      target: (_id, _seq, offset, length) => piece.subarray(offset, offset + length),
      landed: (_id, _seq, _offset, data) => {
        landed += data.byteLength;
      },
    },
    (a, b) => hasher.h32Parts(a, b),
  );
  if (!summed) decoder.skipDataChecksums();
  for (let at = 0; at < stream.length; at += chunk) decoder.push(stream.subarray(at, at + chunk));
  decoder.end();
  assert.is(landed, size, 'every byte landed');
  return piece;
}

test('a full piece decodes back to its bytes, split in 16 KiB chunks (as TLS delivers) and odd sizes', () => {
  const data = filled(PIECE_SIZE, 3);
  for (const summed of [true, false]) {
    const laid = layOut(data, 1, 0, summed);
    for (const chunk of [16_384, 65_536 + 5, 999_983]) {
      assert.ok(decodePiece(laid, PIECE_SIZE, chunk, summed).equals(data), `chunks of ${chunk}`);
    }
  }
});

test('a short piece split at every byte offset decodes the same', () => {
  const data = filled(MAX_DATA_BYTES + 300, 8);
  const laid = layOut(data, 2, 5, true);
  for (let i = 1; i < laid.length; i += i < 400 || i > laid.length - 400 ? 1 : 251) {
    const piece = Buffer.alloc(data.length);
    const decoder = new FrameDecoder(fb.h32, () => assert.unreachable('DATA goes to the sink'));
    decoder.setDataSink(
      { target: (_i, _s, offset, length) => piece.subarray(offset, offset + length), landed: () => {} },
      (a, b) => hasher.h32Parts(a, b),
    );
    decoder.push(laid.subarray(0, i));
    decoder.push(laid.subarray(i));
    decoder.end();
    assert.ok(piece.equals(data), `split at ${i}`);
  }
});

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof FcpError) return err.code;
    throw err;
  }
  return 'nothing thrown';
}

test('a flipped data byte in a summed layout is FCP_ERR_PROTO_BAD_CHECKSUM; a truncated one is FCP_ERR_PROTO_TRUNCATED', () => {
  const data = filled(2 * MAX_DATA_BYTES + 10, 6);
  const laid = Buffer.from(layOut(data, 3, 1, true));
  laid[laid.length - 3]! ^= 1;
  assert.is(
    codeOf(() => decodePiece(laid, data.length, 16_384, true)),
    'FCP_ERR_PROTO_BAD_CHECKSUM',
  );
  const cut = layOut(data, 3, 1, true).subarray(0, 100_000);
  assert.is(
    codeOf(() => decodePiece(cut, data.length, 16_384, true)),
    'FCP_ERR_PROTO_TRUNCATED',
  );
});

test('a layout too small for its length, or an empty piece, is refused before anything is written', () => {
  assert.throws(() => dataFrameViews(Buffer.alloc(dataFramesSize(1000) - 1), 1000), RangeError);
  assert.throws(() => sealDataFrames(Buffer.alloc(100), 0, 1, 0, undefined), RangeError);
  assert.throws(
    () => sealDataFrames(Buffer.alloc(dataFramesSize(PIECE_SIZE) - 1), PIECE_SIZE, 1, 0, undefined),
    RangeError,
  );
});

test("pieceHashViews over a layout's data views is the piece hash of its bytes", () => {
  for (const size of SIZES) {
    const data = filled(size, 11);
    const block = Buffer.alloc(dataFramesSize(size));
    const views = dataFrameViews(block, size);
    let at = 0;
    for (const v of views) at += data.copy(v, 0, at, at + v.length);
    assert.is(hasher.pieceHashViews(views), hasher.pieceHash(data), `${size} bytes`);
  }
});

test('encodeDataFrame and encodeDataHead + data are the frame a builder makes, summed or not', () => {
  for (const size of [0, 1, 5000, MAX_DATA_BYTES]) {
    const data = filled(size, 2);
    const p = payload.data({ id: 4, seq: 7, offset: 65_523, data });
    for (const summed of [true, false]) {
      const expected = fb.frame(T.DATA, p, summed ? {} : { checksum: 0 });
      const whole = encodeDataFrame(4, 7, 65_523, data, summed ? fb.h32 : undefined);
      assert.ok(whole.equals(expected), `${size} bytes copied, summed=${summed}`);
      const head = encodeDataHead(4, 7, 65_523, data, summed ? hasher : undefined);
      assert.ok(
        Buffer.concat([head, data]).equals(expected),
        `${size} bytes behind a head, summed=${summed}`,
      );
    }
  }
});

test.run();
