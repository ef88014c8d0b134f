import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { MsgType } from '../../src/protocol/constants.js';
import { FcpError } from '../../src/protocol/errors.js';
import { FrameDecoder } from '../../src/protocol/frame.js';
import { encodeFrame, encodeFrameHeader } from '../../src/protocol/frame-encode.js';
import { MAX_PAYLOAD_BY_TYPE } from '../../src/protocol/messages.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import { Bytes, concat, loadFrameBuilder, payload, T } from '../helpers/frame-builder.js';
import { assertLanded } from '../helpers/sink-landed.js';

// Framing (src/protocol/frame.ts): flag u8 | chksum u32 = xxh32(payload, 0) | length u16 | payload.

const fb = await loadFrameBuilder();

type Frame = [type: number, payload: Buffer];

/** A decoder that records a copy of every frame (the payload view is only valid during the callback). */
function recorder() {
  const frames: Frame[] = [];
  const decoder = new FrameDecoder(fb.h32, (type, p) => {
    frames.push([type, Buffer.from(p)]);
  });
  return { frames, decoder };
}

function fcpErrorOf(fn: () => unknown): FcpError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FcpError) return err;
    assert.unreachable(`expected an FcpError, got ${String(err)}`);
  }
  assert.unreachable('expected an FcpError, nothing was thrown');
  throw new Error('unreachable');
}

function assertCode(fn: () => unknown, code: string, label = code): FcpError {
  const err = fcpErrorOf(fn);
  assert.is(err.code, code, `${label}: ${err.message}`);
  assert.is(err.fatal, true, label);
  return err;
}

function assertFrames(actual: readonly Frame[], expected: readonly Frame[], label: string): void {
  assert.is(actual.length, expected.length, `${label}: frame count`);
  for (let i = 0; i < expected.length; i++) {
    const [type, p] = expected[i]!;
    assert.is(actual[i]![0], type, `${label}: type of frame ${i}`);
    assert.ok(actual[i]![1].equals(p), `${label}: payload of frame ${i}`);
  }
}

function filled(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

// A mixed stream without PING (PING's zero-length payload has its own tests below).
const MIXED: Frame[] = [
  [T.HELLO, payload.hello({ versionMin: 1, versionMax: 1, capabilities: 0, agent: 'fcp/test' })],
  [T.PUSH, payload.push({ flags: 1, connections: 4, dest: 'out/dir' })],
  [T.ATTACH, payload.attach({ sessionId: filled(16, 7) })],
  [T.DATA, payload.data({ id: 3, seq: 0, offset: 0, data: filled(300, 1) })],
  [T.FILE_READY, payload.fileReady([{ id: 1, action: 0, code: 0 }])],
  [T.PIECE_ACK, payload.pieceAck([{ id: 3, seq: 0 }])],
  [T.DATA, payload.data({ id: 3, seq: 1, offset: 0, data: filled(1, 2) })],
  [T.ABORT, payload.abort({ code: 0x0104, text: 'bye' })],
];
const MIXED_STREAM = fb.stream(MIXED);

test('the frame builder and the encoder agree on the layout and on xxh32 (seed 0)', () => {
  // Reference vectors of XXH32 with seed 0.
  assert.is(fb.h32(new Uint8Array(0)), 0x02cc5d05);
  assert.is(fb.h32(Buffer.from('abc')), 0x32d153ff);
  for (const [type, p] of MIXED) {
    assert.ok(encodeFrame(type, p, fb.h32).equals(fb.frame(type, p)), `encodeFrame type ${type}`);
    assert.ok(encodeFrameHeader(type, fb.h32(p), p.length).equals(fb.header(type, fb.h32(p), p.length)));
  }
  const f = fb.frame(T.DATA, Buffer.from('abc'));
  assert.equal([...f.subarray(0, 7)], [0x0a, 0x32, 0xd1, 0x53, 0xff, 0x00, 0x03]);
  assertCode(() => encodeFrameHeader(T.DATA, 0, 0x10000), 'FCP_ERR_PROTO_OVERSIZED');
});

test('round trip: each frame pushed on its own', () => {
  const { frames, decoder } = recorder();
  for (const [type, p] of MIXED) decoder.push(fb.frame(type, p));
  assertFrames(frames, MIXED, 'one by one');
  assert.ok(decoder.atBoundary);
  assert.is(decoder.bufferedBytes, 0);
  decoder.end();
});

test('many frames in one chunk are all delivered, in order', () => {
  const many: Frame[] = [];
  for (let i = 0; i < 200; i++) many.push(MIXED[i % MIXED.length]!);
  const { frames, decoder } = recorder();
  decoder.push(fb.stream(many));
  assertFrames(frames, many, 'one chunk');
  assert.ok(decoder.atBoundary);
  decoder.end();
});

test('a frame stream split in two at every byte offset decodes the same', () => {
  for (let i = 0; i <= MIXED_STREAM.length; i++) {
    const { frames, decoder } = recorder();
    decoder.push(MIXED_STREAM.subarray(0, i));
    decoder.push(MIXED_STREAM.subarray(i));
    assertFrames(frames, MIXED, `split at ${i}`);
    assert.ok(decoder.atBoundary, `boundary after split at ${i}`);
    decoder.end();
  }
});

test('a frame stream fed byte by byte decodes the same, one frame exactly when its last byte arrives', () => {
  const { frames, decoder } = recorder();
  const ends: number[] = [];
  let at = 0;
  for (const [type, p] of MIXED) {
    at += fb.frame(type, p).length;
    ends.push(at);
  }
  for (let i = 0; i < MIXED_STREAM.length; i++) {
    decoder.push(MIXED_STREAM.subarray(i, i + 1));
    const complete = ends.filter((end) => end <= i + 1).length;
    assert.is(frames.length, complete, `after byte ${i}`);
    assert.is(decoder.atBoundary, ends.includes(i + 1), `boundary after byte ${i}`);
  }
  assertFrames(frames, MIXED, 'byte by byte');
  decoder.end();
});

test('a frame stream split in three at many offset pairs decodes the same', () => {
  const n = MIXED_STREAM.length;
  for (let i = 0; i <= n; i += 7) {
    for (let j = i; j <= n; j += 13) {
      const { frames, decoder } = recorder();
      decoder.push(MIXED_STREAM.subarray(0, i));
      decoder.push(MIXED_STREAM.subarray(i, j));
      decoder.push(MIXED_STREAM.subarray(j));
      assertFrames(frames, MIXED, `split at ${i} and ${j}`);
    }
  }
});

test('PING: a zero-length payload in a chunk of its own', () => {
  const { frames, decoder } = recorder();
  decoder.push(fb.frame(T.PING));
  assertFrames(frames, [[T.PING, Buffer.alloc(0)]], 'lone PING');
  assert.ok(decoder.atBoundary);
  decoder.end();
});

test('PING: zero-length payloads between other frames in one chunk', () => {
  const seq: Frame[] = [
    [T.PING, Buffer.alloc(0)],
    ...MIXED.slice(0, 2),
    [T.PING, Buffer.alloc(0)],
    MIXED[3]!,
  ];
  const { frames, decoder } = recorder();
  decoder.push(fb.stream([...seq, [T.PING, Buffer.alloc(0)], MIXED[0]!]));
  assertFrames(frames, [...seq, [T.PING, Buffer.alloc(0)], MIXED[0]!], 'PINGs in one chunk');
});

test('PING: a stream with PINGs split at every byte offset and fed byte by byte', () => {
  const seq: Frame[] = [MIXED[0]!, [T.PING, Buffer.alloc(0)], [T.PING, Buffer.alloc(0)], MIXED[1]!];
  const stream = fb.stream(seq);
  for (let i = 0; i <= stream.length; i++) {
    const { frames, decoder } = recorder();
    decoder.push(stream.subarray(0, i));
    decoder.push(stream.subarray(i));
    assertFrames(frames, seq, `split at ${i}`);
  }
  const { frames, decoder } = recorder();
  for (let i = 0; i < stream.length; i++) decoder.push(stream.subarray(i, i + 1));
  assertFrames(frames, seq, 'byte by byte');
});

test('PING: its checksum is xxh32 of nothing, and a wrong one is FCP_ERR_PROTO_BAD_CHECKSUM', () => {
  const { frames, decoder } = recorder();
  assertCode(() => decoder.push(fb.frame(T.PING, undefined, { checksum: 0 })), 'FCP_ERR_PROTO_BAD_CHECKSUM');
  assert.is(frames.length, 0);
});

test('a checksum mismatch is FCP_ERR_PROTO_BAD_CHECKSUM and the frame is not delivered', () => {
  const p = payload.push({ flags: 0, connections: 1, dest: 'x' });
  const wrongSum = (fb.h32(p) ^ 1) >>> 0;
  const { frames, decoder } = recorder();
  decoder.push(fb.frame(T.HELLO, MIXED[0]![1]));
  assertCode(() => decoder.push(fb.frame(T.PUSH, p, { checksum: wrongSum })), 'FCP_ERR_PROTO_BAD_CHECKSUM');
  assert.is(frames.length, 1);

  // A single flipped payload bit, with the frame split across chunks.
  const good = fb.frame(T.DATA, payload.data({ id: 1, seq: 0, offset: 0, data: filled(100, 3) }));
  const bad = Buffer.from(good);
  bad[60] = bad[60]! ^ 0x10;
  const second = recorder();
  second.decoder.push(bad.subarray(0, 50));
  assertCode(() => second.decoder.push(bad.subarray(50)), 'FCP_ERR_PROTO_BAD_CHECKSUM');
  assert.is(second.frames.length, 0);
});

// 0x00, the reserved 0x05, 0xff, and the first number after the highest assigned type (0x12 until FILE_HAVE).
const UNKNOWN_FLAGS = [0x00, 0x05, Math.max(...Object.values(MsgType)) + 1, 0xff];

test('an unknown flag is refused as soon as the 7-byte header is in, before any payload', () => {
  for (const flag of UNKNOWN_FLAGS) {
    const { frames, decoder } = recorder();
    assertCode(() => decoder.push(fb.header(flag, 0, 10)), 'FCP_ERR_PROTO_UNKNOWN_FLAG', `flag ${flag}`);
    assert.is(frames.length, 0);

    // Byte by byte: nothing happens for 6 bytes, the 7th raises.
    const slow = recorder();
    const header = fb.header(flag, 0, 0);
    for (let i = 0; i < 6; i++) slow.decoder.push(header.subarray(i, i + 1));
    assertCode(
      () => slow.decoder.push(header.subarray(6)),
      'FCP_ERR_PROTO_UNKNOWN_FLAG',
      `flag ${flag} slow`,
    );
  }
});

test('a length over the per-type maximum is FCP_ERR_PROTO_OVERSIZED at header time', () => {
  const cases: Array<[type: number, length: number]> = [
    [T.ATTACH, 49],
    [T.SESSION, 0xffff],
    [T.SESSION, 27],
    [T.PING, 1],
    [T.HELLO, 269],
    [T.FILE_COUNT, 13],
    [T.DONE, 21],
    [T.FILE_END, 15],
    [T.ABORT, 1029],
  ];
  for (const [type, length] of cases) {
    const { decoder } = recorder();
    assertCode(
      () => decoder.push(fb.header(type, 0, length)),
      'FCP_ERR_PROTO_OVERSIZED',
      `${type}/${length}`,
    );
  }
});

test('each type accepts a header of exactly its maximum length and refuses one byte more', () => {
  // Maxima written out from the layouts: fixed-size messages allow exactly their size.
  const fixed: Record<number, number> = {
    [T.SESSION]: 26,
    [T.ATTACH]: 48, // the daemon's answer with its proof (AttachProven)
    [T.FILE_COUNT]: 12,
    [T.DONE]: 20,
    [T.FILE_END]: 14,
    [T.PING]: 0,
    [T.DETACH]: 0,
    [T.HELLO]: 3 + 2 + 2 + 4 + 2 + 255,
    [T.ABORT]: 2 + 2 + 1024,
  };
  for (const [type, max] of Object.entries(fixed)) assert.is(MAX_PAYLOAD_BY_TYPE[Number(type)], max, type);
  assert.equal(
    Object.keys(MAX_PAYLOAD_BY_TYPE)
      .map(Number)
      .sort((a, b) => a - b),
    Object.values(MsgType).sort((a, b) => a - b),
    'a maximum for exactly the known types',
  );
  for (const [key, max] of Object.entries(MAX_PAYLOAD_BY_TYPE)) {
    const type = Number(key);
    // A PING or DETACH header alone is a whole frame: the PING tests above cover that.
    if (type === T.PING || type === T.DETACH) continue;
    const { decoder } = recorder();
    decoder.push(fb.header(type, 0, max));
    assert.not.ok(decoder.atBoundary, `type ${type} waits for ${max} payload bytes`);
    if (max === 0xffff) continue;
    const over = recorder();
    assertCode(
      () => over.decoder.push(fb.header(type, 0, max + 1)),
      'FCP_ERR_PROTO_OVERSIZED',
      `type ${type}`,
    );
  }
});

test('end() in the middle of a frame is FCP_ERR_PROTO_TRUNCATED; at a boundary it is clean', () => {
  const frame = fb.frame(T.PUSH, payload.push({ flags: 0, connections: 1, dest: 'abc' }));
  for (const cut of [1, 3, 6, 7, 8, frame.length - 1]) {
    const { frames, decoder } = recorder();
    decoder.push(frame.subarray(0, cut));
    assert.not.ok(decoder.atBoundary, `cut ${cut}`);
    assertCode(() => decoder.end(), 'FCP_ERR_PROTO_TRUNCATED', `cut ${cut}`);
    assert.is(frames.length, 0);
  }
  const fresh = recorder();
  fresh.decoder.end();
  const whole = recorder();
  whole.decoder.push(frame);
  whole.decoder.end();
  assert.is(whole.frames.length, 1);
});

test('after a failure the decoder stays failed and delivers nothing more', () => {
  const good = fb.frame(T.PUSH, payload.push({ flags: 0, connections: 1, dest: 'x' }));
  const bad = fb.frame(T.PUSH, payload.push({ flags: 0, connections: 1, dest: 'y' }), { checksum: 1 });
  const { frames, decoder } = recorder();
  // The bad frame sits between good ones in one chunk: the good one after it must not be delivered.
  assertCode(() => decoder.push(concat([good, bad, good])), 'FCP_ERR_PROTO_BAD_CHECKSUM');
  assert.is(frames.length, 1);
  for (let i = 0; i < 3; i++) fcpErrorOf(() => decoder.push(good));
  fcpErrorOf(() => decoder.push(fb.frame(T.PING)));
  assert.is(frames.length, 1);
  assert.not.ok(decoder.atBoundary);

  // The same after a header-time failure.
  const second = recorder();
  assertCode(() => second.decoder.push(fb.header(0x05, 0, 0)), 'FCP_ERR_PROTO_UNKNOWN_FLAG');
  fcpErrorOf(() => second.decoder.push(good));
  assert.is(second.frames.length, 0);
});

test('an exception thrown by the frame handler propagates out of push() and fails the decoder', () => {
  let calls = 0;
  const boom = new Error('handler failed');
  const decoder = new FrameDecoder(fb.h32, () => {
    calls++;
    throw boom;
  });
  const good = fb.frame(T.PING);
  try {
    decoder.push(concat([MIXED_STREAM, good]));
    assert.unreachable('push should throw');
  } catch (err) {
    assert.is(err, boom);
  }
  assert.is(calls, 1);
  fcpErrorOf(() => decoder.push(good));
  assert.is(calls, 1);
});

test('a frame inside one chunk is delivered as a view of that chunk, without a copy', () => {
  const chunk = MIXED_STREAM;
  const seen: Array<{ same: boolean; offset: number; length: number }> = [];
  const decoder = new FrameDecoder(fb.h32, (_type, p) => {
    seen.push({ same: p.buffer === chunk.buffer, offset: p.byteOffset - chunk.byteOffset, length: p.length });
  });
  decoder.push(chunk);
  let at = 0;
  for (let i = 0; i < MIXED.length; i++) {
    const len = MIXED[i]![1].length;
    assert.equal(seen[i], { same: true, offset: at + 7, length: len }, `frame ${i}`);
    at += 7 + len;
  }
});

test('a payload straddling two chunks is copied; a split header alone does not force a copy', () => {
  const p = filled(40, 9);
  const frame = fb.frame(T.DATA, p);
  const views: Uint8Array[] = [];
  const decoder = new FrameDecoder(fb.h32, (_type, v) => {
    views.push(v);
  });
  // Copy each part into its own unpooled buffer, so buffer identity is meaningful.
  const a = concat([frame.subarray(0, 20)]);
  const b = concat([frame.subarray(20)]);
  decoder.push(a);
  decoder.push(b);
  assert.is(views.length, 1);
  assert.ok(views[0]!.buffer !== a.buffer && views[0]!.buffer !== b.buffer, 'copied across the boundary');
  assert.ok(Buffer.from(views[0]!).equals(p));

  // Header split 3 + 4, payload whole in the second chunk: the payload is still a view of that chunk.
  const c = concat([frame.subarray(0, 3)]);
  const d = concat([frame.subarray(3)]);
  decoder.push(c);
  decoder.push(d);
  assert.is(views.length, 2);
  assert.ok(views[1]!.buffer === d.buffer, 'view of the chunk holding the whole payload');
  assert.ok(Buffer.from(views[1]!).equals(p));
});

test('a copied payload is never overwritten by later frames (STYLE rule 6)', () => {
  const kept: Uint8Array[] = [];
  const decoder = new FrameDecoder(fb.h32, (_type, v) => {
    kept.push(v);
  });
  const payloads = [filled(50, 1), filled(50, 2), filled(50, 3), filled(50, 4)];
  const stream = fb.stream(payloads.map((p) => [T.DATA, p] as const));
  // Cut every frame in the middle of its payload so each one is assembled by copying.
  for (let at = 0; at < stream.length; at += 33) decoder.push(concat([stream.subarray(at, at + 33)]));
  assert.is(kept.length, payloads.length);
  for (let i = 0; i < payloads.length; i++)
    assert.ok(Buffer.from(kept[i]!).equals(payloads[i]!), `payload ${i}`);
});

test('bufferedBytes counts a partial header and is 0 once the frame is delivered', () => {
  const { decoder } = recorder();
  const frame = fb.frame(T.ABORT, new Bytes().u16(1).str16('hello').build());
  decoder.push(frame.subarray(0, 4));
  assert.is(decoder.bufferedBytes, 4);
  decoder.push(frame.subarray(4, 9));
  assert.not.ok(decoder.atBoundary);
  decoder.push(frame.subarray(9));
  assert.is(decoder.bufferedBytes, 0);
  decoder.push(Buffer.alloc(0));
  assert.ok(decoder.atBoundary);
});

// ---- The DataSink route: DATA frames' data copied straight into buffers the sink names.

const hasher = await loadHasher();

/** A decoder with a sink that takes the DATA frames whose id is in `accept`, each into a fresh target. */
function sinkRecorder(accept: (id: number) => boolean) {
  const frames: Frame[] = [];
  const landed: Array<{ id: number; seq: number; offset: number; data: Buffer; target: Uint8Array }> = [];
  const targets: Uint8Array[] = [];
  const decoder = new FrameDecoder(fb.h32, (type, p) => {
    frames.push([type, Buffer.from(p)]);
  });
  decoder.setDataSink(
    {
      target(id, _seq, _offset, length) {
        if (!accept(id)) return undefined;
        const t = new Uint8Array(length);
        targets.push(t);
        return t;
      },
      landed(id, seq, offset, data) {
        landed.push({ id, seq, offset, data: Buffer.from(data), target: data });
      },
    },
    (a, b) => hasher.h32Parts(a, b),
  );
  return { frames, landed, targets, decoder };
}

const DATA_A = filled(65_522, 5); // nearly a full-size frame of data
const SINK_MIXED: Frame[] = [
  [T.HELLO, payload.hello({ versionMin: 1, versionMax: 1, capabilities: 0, agent: 'fcp/test' })],
  [T.DATA, payload.data({ id: 7, seq: 2, offset: 0, data: DATA_A })],
  [T.PING, Buffer.alloc(0)],
  [T.DATA, payload.data({ id: 8, seq: 0, offset: 0, data: filled(100, 9) })],
  [T.DATA, payload.data({ id: 7, seq: 2, offset: DATA_A.length, data: filled(3, 4) })],
  [T.DATA, payload.data({ id: 7, seq: 3, offset: 0, data: Buffer.alloc(0) })],
  [T.PIECE_ACK, payload.pieceAck([{ id: 3, seq: 0 }])],
];
const SINK_STREAM = fb.stream(SINK_MIXED);

function checkSinkResult(r: ReturnType<typeof sinkRecorder>, label: string): void {
  // Id 8 is declined: delivered whole through onFrame, like every non-DATA frame.
  assertFrames(
    r.frames,
    SINK_MIXED.filter(([type, p]) => type !== T.DATA || p.readUInt32BE(0) === 8),
    label,
  );
  const expected = SINK_MIXED.filter(([type, p]) => type === T.DATA && p.readUInt32BE(0) === 7);
  assertLanded(
    r.landed,
    expected.map(([, p]) => p),
    label,
  );
  for (let i = 0; i < expected.length; i++) {
    assert.is(r.landed[i]!.target, r.targets[i], `${label}: landed in the target the sink gave`);
  }
}

test('sink: DATA lands in the sink target, split at every byte offset; others go through onFrame', () => {
  for (let i = 0; i <= SINK_STREAM.length; i += i < 200 || i > SINK_STREAM.length - 400 ? 1 : 97) {
    const r = sinkRecorder((id) => id === 7);
    r.decoder.push(SINK_STREAM.subarray(0, i));
    r.decoder.push(SINK_STREAM.subarray(i));
    checkSinkResult(r, `split at ${i}`);
    assert.ok(r.decoder.atBoundary);
    r.decoder.end();
  }
});

test('sink: the same stream in 16 KiB chunks (as TLS delivers it) and byte by byte', () => {
  for (const size of [16_384, 1000, 1]) {
    const r = sinkRecorder((id) => id === 7);
    for (let at = 0; at < SINK_STREAM.length; at += size) r.decoder.push(SINK_STREAM.subarray(at, at + size));
    checkSinkResult(r, `chunks of ${size}`);
    r.decoder.end();
  }
});

test('sink: a bad checksum on a DATA frame is FCP_ERR_PROTO_BAD_CHECKSUM and nothing lands', () => {
  for (const accept of [true, false]) {
    const p = payload.data({ id: 7, seq: 0, offset: 0, data: filled(5000, 3) });
    const r = sinkRecorder(() => accept);
    const bad = fb.frame(T.DATA, p, { checksum: (fb.h32(p) ^ 1) >>> 0 });
    r.decoder.push(bad.subarray(0, 100));
    assertCode(() => r.decoder.push(bad.subarray(100)), 'FCP_ERR_PROTO_BAD_CHECKSUM');
    assert.is(r.landed.length, 0);
    assert.is(r.frames.length, 0);
    assertCode(() => r.decoder.push(fb.frame(T.PING)), 'FCP_ERR_PROTO_UNEXPECTED', 'stays failed');
  }
});

test('skipDataChecksums: DATA with chksum 0 lands (sink or not, any split); other frames are still checked', () => {
  const unsummed = Buffer.concat(
    SINK_MIXED.map(([type, p]) => (type === T.DATA ? fb.frame(type, p, { checksum: 0 }) : fb.frame(type, p))),
  );
  for (const size of [16_384, 1000, 7]) {
    const r = sinkRecorder((id) => id === 7);
    r.decoder.skipDataChecksums();
    for (let at = 0; at < unsummed.length; at += size) r.decoder.push(unsummed.subarray(at, at + size));
    checkSinkResult(r, `unsummed, chunks of ${size}`);
    r.decoder.end();
  }
  // Without a sink, DATA goes through onFrame, equally unchecked.
  const frames: Frame[] = [];
  const plain = new FrameDecoder(fb.h32, (type, p) => frames.push([type, Buffer.from(p)]));
  plain.skipDataChecksums();
  const p = payload.data({ id: 1, seq: 0, offset: 0, data: filled(3000, 9) });
  plain.push(fb.frame(T.DATA, p, { checksum: 0 }));
  assertFrames(frames, [[T.DATA, p]], 'no sink');
  // A control frame with a wrong checksum is refused as ever.
  const info = payload.ping();
  assertCode(() => plain.push(fb.frame(T.PING, info, { checksum: 1 })), 'FCP_ERR_PROTO_BAD_CHECKSUM');
  // And without skipDataChecksums, chksum 0 on DATA is refused.
  const strict = sinkRecorder(() => true);
  assertCode(() => strict.decoder.push(fb.frame(T.DATA, p, { checksum: 0 })), 'FCP_ERR_PROTO_BAD_CHECKSUM');
});

test('sink: an error thrown by target() fails the decoder before any data is taken', () => {
  const decoder = new FrameDecoder(fb.h32, () => assert.unreachable('no frame expected'));
  decoder.setDataSink(
    {
      target() {
        throw new FcpError('FCP_ERR_FILE_RANGE', 'out of range');
      },
      landed: () => assert.unreachable('nothing lands'),
    },
    (a, b) => hasher.h32Parts(a, b),
  );
  const f = fb.frame(T.DATA, payload.data({ id: 1, seq: 0, offset: 0, data: filled(10, 1) }));
  assertCode(() => decoder.push(f), 'FCP_ERR_FILE_RANGE');
});

test('sink: a DATA payload shorter than its 12-byte prefix goes through onFrame (to be refused there)', () => {
  const r = sinkRecorder(() => true);
  r.decoder.push(fb.frame(T.DATA, Buffer.from([1, 2, 3])));
  assertFrames(r.frames, [[T.DATA, Buffer.from([1, 2, 3])]], 'short DATA');
  assert.is(r.landed.length, 0);
});

test.run();
