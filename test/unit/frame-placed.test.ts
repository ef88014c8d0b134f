import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/errors.js';
import { FrameDecoder } from '../../src/protocol/frame.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import { loadFrameBuilder, payload, T } from '../helpers/frame-builder.js';
import { assertLanded, type LandedData } from '../helpers/sink-landed.js';

// FrameDecoder's placed reads (src/protocol/frame.ts, readTarget/written): the reader asks where its next
// bytes go and says how many it put there, instead of pushing chunks. Every stream here is fed with reads
// of many sizes and split at every byte offset, and must decode exactly as pushed chunks do.

const fb = await loadFrameBuilder();
const hasher = await loadHasher();

type Frame = [type: number, payload: Buffer];

function filled(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

interface Landed extends LandedData {
  target: Uint8Array;
}

/**
 * A decoder with a sink taking DATA whose id `accept`s, each into a fresh target. Frames are kept as the
 * views the decoder handed out (`views`) and as copies made at once (`frames`): views must stay intact.
 */
function placedRecorder(accept: (id: number) => boolean) {
  const frames: Frame[] = [];
  const views: Uint8Array[] = [];
  const landed: Landed[] = [];
  const targets = new Set<ArrayBufferLike>();
  const decoder = new FrameDecoder(fb.h32, (type, p) => {
    frames.push([type, Buffer.from(p)]);
    views.push(p);
  });
  decoder.setDataSink(
    {
      target(id, _seq, _offset, length) {
        if (!accept(id)) return undefined;
        const t = new Uint8Array(length);
        targets.add(t.buffer);
        return t;
      },
      landed(id, seq, offset, data) {
        landed.push({ id, seq, offset, data: Buffer.from(data), target: data });
      },
    },
    (a, b) => hasher.h32Parts(a, b),
  );
  return { frames, views, landed, targets, decoder };
}

type Recorder = ReturnType<typeof placedRecorder>;

/**
 * Feeds `stream` as a socket with placed reads would: each read fills at most what readTarget() offers and
 * at most `readSize(i)` bytes (i counts reads). Returns how many bytes were read straight into sink targets,
 * and how many reads it took.
 */
function place(r: Recorder, stream: Buffer, readSize: (i: number) => number): number {
  return placeCounting(r, stream, readSize).direct;
}

function placeCounting(
  r: Recorder,
  stream: Buffer,
  readSize: (i: number) => number,
): { direct: number; reads: number } {
  let direct = 0;
  let i = 0;
  for (let at = 0; at < stream.length; i++) {
    const target = r.decoder.readTarget();
    assert.ok(target.byteLength > 0, 'a read target is never empty');
    const n = Math.min(target.byteLength, readSize(i), stream.length - at);
    target.set(stream.subarray(at, at + n));
    if (r.targets.has(target.buffer)) direct += n;
    at += n;
    r.decoder.written(n);
  }
  return { direct, reads: i };
}

const DATA_A = filled(65_522, 5); // a full-size frame of data
const MIXED: Frame[] = [
  [T.HELLO, payload.hello({ versionMin: 1, versionMax: 1, capabilities: 0, agent: 'fcp/test' })],
  [T.DATA, payload.data({ id: 7, seq: 2, offset: 0, data: DATA_A })],
  [T.PING, Buffer.alloc(0)],
  [T.DATA, payload.data({ id: 7, seq: 2, offset: DATA_A.length, data: filled(300, 4) })],
  [T.DATA, payload.data({ id: 8, seq: 0, offset: 0, data: filled(100, 9) })],
  [T.DATA, payload.data({ id: 7, seq: 2, offset: DATA_A.length + 300, data: filled(3, 4) })],
  [T.PIECE_ACK, payload.pieceAck([{ id: 3, seq: 0 }])],
  [T.DATA, payload.data({ id: 7, seq: 3, offset: 0, data: Buffer.alloc(0) })],
  [T.DATA, payload.data({ id: 7, seq: 3, offset: 0, data: filled(70, 1) })],
  [T.ABORT, payload.abort({ code: 0x0104, text: 'bye' })],
];
const MIXED_STREAM = fb.stream(MIXED);

function checkResult(r: Recorder, label: string): void {
  // Id 8 is declined: delivered whole through onFrame, like every other frame.
  const expectedFrames = MIXED.filter(([type, p]) => type !== T.DATA || p.readUInt32BE(0) === 8);
  assert.is(r.frames.length, expectedFrames.length, `${label}: frame count`);
  for (let i = 0; i < expectedFrames.length; i++) {
    const [type, p] = expectedFrames[i]!;
    assert.is(r.frames[i]![0], type, `${label}: type of frame ${i}`);
    assert.ok(r.frames[i]![1].equals(p), `${label}: payload of frame ${i}`);
    // STYLE rule 6: memory handed out is never read into again.
    assert.ok(Buffer.from(r.views[i]!).equals(p), `${label}: the view of frame ${i} is intact`);
  }
  const expected = MIXED.filter(([type, p]) => type === T.DATA && p.readUInt32BE(0) === 7);
  assertLanded(
    r.landed,
    expected.map(([, p]) => p),
    label,
  );
  for (const l of r.landed) assert.ok(r.targets.has(l.target.buffer), `${label}: landed in a sink target`);
  assert.ok(r.decoder.atBoundary, `${label}: at a boundary`);
  r.decoder.end();
}

test('placed reads of any size decode a mixed stream as pushed chunks do', () => {
  for (const size of [1, 2, 7, 12, 19, 1000, 16_384, 65_536, 1 << 20]) {
    const r = placedRecorder((id) => id === 7);
    place(r, MIXED_STREAM, () => size);
    checkResult(r, `reads of ${size}`);
  }
});

test('placed reads split in two at every byte offset decode the same', () => {
  for (let i = 1; i < MIXED_STREAM.length; i += i < 300 || i > MIXED_STREAM.length - 600 ? 1 : 89) {
    const r = placedRecorder((id) => id === 7);
    place(r, MIXED_STREAM, (n) => (n === 0 ? i : 1 << 20));
    checkResult(r, `split at ${i}`);
  }
});

test('placed reads mixed with pushed chunks (a socket switched over mid-stream) decode the same', () => {
  for (let i = 0; i <= MIXED_STREAM.length; i += i < 300 || i > MIXED_STREAM.length - 600 ? 1 : 89) {
    const r = placedRecorder((id) => id === 7);
    r.decoder.push(MIXED_STREAM.subarray(0, i));
    place(r, MIXED_STREAM.subarray(i), () => 16_384);
    checkResult(r, `pushed ${i}, then placed`);
  }
});

test('a run of DATA frames is read straight into its targets: only the first frame passes elsewhere', () => {
  const frames: Frame[] = [];
  let offset = 0;
  for (let i = 0; i < 16; i++) {
    frames.push([T.DATA, payload.data({ id: 7, seq: 0, offset, data: filled(DATA_A.length, i) })]);
    offset += DATA_A.length;
  }
  const stream = fb.stream(frames);
  for (const size of [16_384, 65_536, 1 << 20]) {
    const r = placedRecorder(() => true);
    const direct = place(r, stream, () => size);
    assert.is(r.landed.length, 16);
    // The first read is the decoder's own (it cannot know a DATA frame comes); every later data byte is
    // read where it belongs.
    assert.ok(direct >= 16 * DATA_A.length - size, `reads of ${size}: ${direct} bytes placed in targets`);
    r.decoder.end();
  }
});

test("small DATA frames (a small file's) share reads: one read takes many frames", () => {
  const frames: Frame[] = [];
  for (let id = 1; id <= 200; id++) {
    frames.push([T.DATA, payload.data({ id, seq: 0, offset: 0, data: filled(1000 + id, id) })]);
    frames.push([T.FILE_READY, payload.fileReady([{ id, action: 0, code: 0 }])]);
  }
  const stream = fb.stream(frames);
  const r = placedRecorder(() => true);
  const { reads } = placeCounting(r, stream, () => 65_536);
  assert.is(r.landed.length, 200);
  assert.is(r.frames.length, 200);
  // Each read takes what an arena region holds (64 KiB, a new one when under 4 KiB is left), not one frame.
  assert.ok(reads <= Math.ceil(stream.length / (60 * 1024)) + 1, `${reads} reads for ${stream.length} bytes`);
  r.decoder.end();
});

test('a bad checksum on a placed DATA frame fails the decoder; later reads are taken and ignored', () => {
  const p = payload.data({ id: 7, seq: 0, offset: 0, data: filled(5000, 3) });
  const bad = fb.frame(T.DATA, p, { checksum: (fb.h32(p) ^ 1) >>> 0 });
  const r = placedRecorder(() => true);
  let err: unknown;
  try {
    place(r, bad, () => 1000);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof FcpError && err.code === 'FCP_ERR_PROTO_BAD_CHECKSUM', String(err));
  assert.is(r.landed.length, 0);
  // The socket may still read what TLS had already decrypted: it goes somewhere harmless.
  const after = r.decoder.readTarget();
  after.set(fb.frame(T.PING).subarray(0, Math.min(after.length, 7)));
  r.decoder.written(Math.min(after.length, 7));
  assert.is(r.frames.length, 0);
});

test('a header placed on its own after DATA is checked at once: an oversized length before its payload', () => {
  const r = placedRecorder(() => true);
  place(r, fb.frame(T.DATA, payload.data({ id: 7, seq: 0, offset: 0, data: DATA_A })), () => 1 << 20);
  assert.is(r.landed.length, 1);
  const target = r.decoder.readTarget();
  assert.is(target.byteLength, 7, 'after a large DATA frame the next header is read on its own');
  target.set(fb.header(T.PIECE_ACK, 0, 0xffff));
  let err: unknown;
  try {
    r.decoder.written(7);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof FcpError && err.code === 'FCP_ERR_PROTO_OVERSIZED', String(err));
});

test('a header placed in part: bufferedBytes counts it and end() there is a truncation', () => {
  const r = placedRecorder(() => true);
  const stream = fb.stream([
    [T.DATA, payload.data({ id: 7, seq: 0, offset: 0, data: DATA_A })],
    [T.PING, Buffer.alloc(0)],
  ]);
  const firstFrame = stream.length - 7;
  // The DATA frame in one read, then the header into the decoder's own buffer (it follows DATA).
  place(r, stream.subarray(0, firstFrame + 3), (i) => (i === 0 ? firstFrame : 1 << 20));
  assert.is(r.decoder.bufferedBytes, 3);
  assert.not.ok(r.decoder.atBoundary);
  let err: unknown;
  try {
    r.decoder.end();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof FcpError && err.code === 'FCP_ERR_PROTO_TRUNCATED', String(err));
});

test.run();
