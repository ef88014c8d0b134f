import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { PayloadReader, PayloadWriter } from '../../src/protocol/byte-io.js';
import { FcpError } from '../../src/protocol/errors.js';
import { Bytes, concat } from '../helpers/frame-builder.js';

// Bounds-checked big-endian payload reader and writer (src/protocol/byte-io.ts).

function fcpErrorOf(fn: () => unknown): FcpError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FcpError) return err;
    assert.unreachable(`expected an FcpError, got ${err instanceof Error ? err.stack : String(err)}`);
  }
  assert.unreachable('expected an FcpError, nothing was thrown');
  throw new Error('unreachable');
}

function assertCode(fn: () => unknown, code: string, label: string): FcpError {
  const err = fcpErrorOf(fn);
  assert.is(err.code, code, `${label}: ${err.message}`);
  return err;
}

function bytesOf(b: Uint8Array): number[] {
  return [...b];
}

// ---- PayloadReader

test('reader: integers are big-endian', () => {
  const r = new PayloadReader(
    Uint8Array.from([
      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11,
      0x12, 0x13, 0x14, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    ]),
  );
  assert.is(r.u8(), 0x01);
  assert.is(r.u16(), 0x0203);
  assert.is(r.u32(), 0x04050607);
  assert.is(r.u64(), 0x08090a0b0c0d0e0fn);
  assert.is(r.u8(), 0x10);
  assert.is(r.u32(), 0x11121314);
  assert.is(r.i64(), -2n);
  assert.is(r.remaining, 0);
  r.end('test');
});

test('reader: extreme values', () => {
  const r = new PayloadReader(
    new Bytes()
      .u8(0xff)
      .u16(0xffff)
      .u32(0xffffffff)
      .u64(0xffff_ffff_ffff_ffffn)
      .i64(-0x8000_0000_0000_0000n)
      .i64(0x7fff_ffff_ffff_ffffn)
      .build(),
  );
  assert.is(r.u8(), 0xff);
  assert.is(r.u16(), 0xffff);
  assert.is(r.u32(), 0xffffffff);
  assert.is(r.u64(), 0xffff_ffff_ffff_ffffn);
  assert.is(r.i64(), -0x8000_0000_0000_0000n);
  assert.is(r.i64(), 0x7fff_ffff_ffff_ffffn);
});

test('reader: a view inside a larger buffer sees only its own bytes', () => {
  const big = Buffer.from([0xaa, 0xbb, 0x00, 0x01, 0x00, 0x02, 0xcc, 0xdd]);
  const r = new PayloadReader(big.subarray(2, 6));
  assert.is(r.remaining, 4);
  assert.is(r.u16(), 1);
  assert.is(r.u16(), 2);
  assertCode(() => r.u8(), 'FCP_ERR_PROTO_MALFORMED', 'past the view');
});

test('reader: every read past the end is FCP_ERR_PROTO_MALFORMED naming the field', () => {
  const reads: Array<[string, number, (r: PayloadReader) => unknown]> = [
    ['u8', 0, (r) => r.u8('kind')],
    ['u16', 1, (r) => r.u16('kind')],
    ['u32', 3, (r) => r.u32('kind')],
    ['u64', 7, (r) => r.u64('kind')],
    ['i64', 7, (r) => r.i64('kind')],
    ['bytes', 15, (r) => r.bytes(16, 'kind')],
    ['str16 length', 1, (r) => r.str16('kind')],
  ];
  for (const [name, available, read] of reads) {
    for (let n = 0; n <= available; n++) {
      const err = assertCode(
        () => read(new PayloadReader(new Uint8Array(n))),
        'FCP_ERR_PROTO_MALFORMED',
        name,
      );
      assert.match(err.message, /kind/, `${name}: message names the field`);
      assert.is(err.fatal, true);
    }
  }
});

test('reader: reading exactly to the end is fine; bytes(0) at the end is an empty view', () => {
  const r = new PayloadReader(Uint8Array.from([1, 2, 3]));
  assert.equal(bytesOf(r.bytes(3)), [1, 2, 3]);
  assert.is(r.bytes(0).length, 0);
  assert.is(r.rest().length, 0);
  r.end('x');
});

test('reader: bytes() and rest() are views of the payload, not copies', () => {
  const buf = Buffer.from([9, 8, 7, 6, 5]);
  const r = new PayloadReader(buf);
  const head = r.bytes(2);
  const tail = r.rest();
  assert.ok(head.buffer === buf.buffer && tail.buffer === buf.buffer);
  assert.equal(bytesOf(tail), [7, 6, 5]);
  buf[4] = 0;
  assert.is(tail[2], 0);
  assert.is(r.remaining, 0);
});

test('reader: str16 reads a u16 length and UTF-8', () => {
  const r = new PayloadReader(new Bytes().str16('').str16('añ😀\n\t').str16('z').build());
  assert.is(r.str16(), '');
  assert.is(r.str16(), 'añ😀\n\t');
  assert.is(r.str16(), 'z');
  r.end('strings');
});

test('reader: str16 over its maxBytes is MALFORMED; exactly maxBytes is fine', () => {
  assert.is(new PayloadReader(new Bytes().str16('abcd').build()).str16('s', 4), 'abcd');
  const err = assertCode(
    () => new PayloadReader(new Bytes().str16('abcde').build()).str16('name', 4),
    'FCP_ERR_PROTO_MALFORMED',
    'over max',
  );
  assert.match(err.message, /name/);
  // The limit is checked on the announced length, before looking for the bytes.
  assertCode(
    () => new PayloadReader(new Bytes().u16(60000).build()).str16('s', 4),
    'FCP_ERR_PROTO_MALFORMED',
    'announced over max',
  );
});

test('reader: str16 whose bytes run past the end is MALFORMED', () => {
  assertCode(
    () => new PayloadReader(new Bytes().u16(5).raw([0x61, 0x62]).build()).str16(),
    'FCP_ERR_PROTO_MALFORMED',
    'short string',
  );
});

test('reader: str16 of invalid UTF-8 is MALFORMED', () => {
  for (const bad of [[0xff], [0xc3], [0xc0, 0x80], [0xed, 0xb0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
    assertCode(
      () => new PayloadReader(new Bytes().str16(Uint8Array.from(bad)).build()).str16('path'),
      'FCP_ERR_PROTO_MALFORMED',
      `bytes ${bad.join(',')}`,
    );
  }
});

test('reader: a real U+FFFD or a leading BOM in a string is text, from a Buffer and from a Uint8Array', () => {
  for (const text of ['a\uFFFDb', '\uFEFFname', '\uFFFD']) {
    const built = new Bytes().str16(text).build();
    assert.is(new PayloadReader(built).str16(), text);
    assert.is(new PayloadReader(Uint8Array.from(built)).str16(), text);
  }
});

test('writer: str16 writes UTF-8 after its byte length, however many bytes a unit takes', () => {
  for (const text of ['', 'z', 'añ😀', '\u0800'.repeat(1000)]) {
    const payload = new PayloadWriter().str16(text).finish();
    const bytes = Buffer.from(text, 'utf8');
    assert.is(payload.readUInt16BE(0), bytes.length);
    assert.ok(payload.subarray(2).equals(bytes), text.slice(0, 10));
  }
});

test('reader: end() with bytes left over is MALFORMED and says how many', () => {
  const r = new PayloadReader(Uint8Array.from([1, 2, 3]));
  r.u8();
  const err = assertCode(() => r.end('THING'), 'FCP_ERR_PROTO_MALFORMED', 'trailing');
  assert.match(err.message, /2/);
  assert.match(err.message, /THING/);
});

// ---- PayloadWriter

test('writer: integers are big-endian', () => {
  const out = new PayloadWriter()
    .u8(0x01)
    .u16(0x0203)
    .u32(0x04050607)
    .u64(0x08090a0b0c0d0e0fn)
    .i64(-2n)
    .finish();
  assert.equal(
    bytesOf(out),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
  );
});

test('writer: extreme values', () => {
  const out = new PayloadWriter()
    .u8(0xff)
    .u16(0xffff)
    .u32(0xffffffff)
    .u64(0xffff_ffff_ffff_ffffn)
    .i64(-0x8000_0000_0000_0000n)
    .i64(0x7fff_ffff_ffff_ffffn)
    .finish();
  const expected = new Bytes()
    .u8(0xff)
    .u16(0xffff)
    .u32(0xffffffff)
    .u64(0xffff_ffff_ffff_ffffn)
    .i64(-0x8000_0000_0000_0000n)
    .i64(0x7fff_ffff_ffff_ffffn)
    .build();
  assert.ok(out.equals(expected));
});

test('writer: a 64-bit value out of range throws instead of wrapping', () => {
  assert.throws(() => new PayloadWriter().u64(-1n), RangeError);
  assert.throws(() => new PayloadWriter().u64(0x1_0000_0000_0000_0000n), RangeError);
  assert.throws(() => new PayloadWriter().i64(-0x8000_0000_0000_0001n), RangeError);
  assert.throws(() => new PayloadWriter().i64(0x8000_0000_0000_0000n), RangeError);
});

test('writer: str16 writes the UTF-8 byte length, not the character count', () => {
  const out = new PayloadWriter().str16('').str16('é😀').finish();
  assert.equal(bytesOf(out), [0, 0, 0, 6, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80]);
});

test('writer: str16 of more than 65535 bytes is FCP_ERR_PROTO_OVERSIZED; 65535 is fine', () => {
  assert.is(new PayloadWriter().str16('a'.repeat(0xffff)).length, 2 + 0xffff);
  assertCode(() => new PayloadWriter().str16('a'.repeat(0x10000)), 'FCP_ERR_PROTO_OVERSIZED', '65536 ascii');
  assertCode(
    () => new PayloadWriter().str16('é'.repeat(0x8000)),
    'FCP_ERR_PROTO_OVERSIZED',
    '65536 bytes of é',
  );
});

test('writer: bytes() copies its input', () => {
  const src = Uint8Array.from([1, 2, 3]);
  const w = new PayloadWriter().bytes(src);
  src[0] = 99;
  assert.equal(bytesOf(w.finish()), [1, 2, 3]);
});

test('writer: length counts bytes written; finish() returns exactly them', () => {
  const w = new PayloadWriter();
  assert.is(w.length, 0);
  assert.is(w.finish().length, 0);
  w.u8(1).u16(2).u32(3);
  assert.is(w.length, 7);
  assert.is(w.finish().length, 7);
});

test('regression: writes that grow the buffer keep every byte (c2aa060), from every starting size', () => {
  // Each operation in turn lands on a growth boundary for some initial size.
  for (const initial of [0, 1, 2, 3, 5, 7, 8, 64]) {
    const w = new PayloadWriter(initial);
    const expected = new Bytes();
    for (let i = 0; i < 300; i++) {
      switch (i % 7) {
        case 0:
          w.u8(i & 0xff);
          expected.u8(i & 0xff);
          break;
        case 1:
          w.u16(i * 3);
          expected.u16(i * 3);
          break;
        case 2:
          w.u32(i * 0x01010101);
          expected.u32(i * 0x01010101);
          break;
        case 3:
          w.u64(BigInt(i) << 40n);
          expected.u64(BigInt(i) << 40n);
          break;
        case 4:
          w.i64(-BigInt(i));
          expected.i64(-BigInt(i));
          break;
        case 5:
          w.bytes(Uint8Array.from({ length: i % 23 }, (_, k) => k + i));
          expected.raw(Uint8Array.from({ length: i % 23 }, (_, k) => k + i));
          break;
        default:
          w.str16(`s${i}é`);
          expected.str16(`s${i}é`);
      }
    }
    const out = w.finish();
    const want = expected.build();
    assert.is(out.length, want.length, `initial ${initial}: length`);
    assert.ok(out.equals(want), `initial ${initial}: content`);
  }
});

test('writer and reader agree on a mixed payload', () => {
  const w = new PayloadWriter(4);
  w.u8(7)
    .u16(65535)
    .u32(123456789)
    .u64(1n << 63n)
    .i64(-1234567890123n)
    .str16('päth/😀')
    .bytes(Buffer.from('xyz'));
  const r = new PayloadReader(concat([w.finish()]));
  assert.is(r.u8(), 7);
  assert.is(r.u16(), 65535);
  assert.is(r.u32(), 123456789);
  assert.is(r.u64(), 1n << 63n);
  assert.is(r.i64(), -1234567890123n);
  assert.is(r.str16(), 'päth/😀');
  assert.equal(bytesOf(r.rest()), [0x78, 0x79, 0x7a]);
  r.end('mixed');
});

test.run();
