/**
 * Bounds-checked big-endian readers and writers for message payloads. Reading past the end, an invalid UTF-8
 * string or bytes left over at the end are protocol errors (FCP_ERR_PROTO_MALFORMED), never exceptions of
 * another kind, so a hostile payload can only ever close its own connection.
 */
import { FcpError } from './errors.js';
import { keepShape } from './kept-shapes.js';

// ignoreBOM: a leading U+FEFF is part of a name, not a marker to strip (else two names decode the same).
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class PayloadReader {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  /** #buf when it is a Buffer (every payload the frame decoder hands out): strings decode from it. */
  readonly #text: Buffer | undefined;
  #pos = 0;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
    this.#text = Buffer.isBuffer(buf) ? buf : undefined;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.#buf.byteLength - this.#pos;
  }

  #need(n: number, what: string): number {
    if (this.#pos + n > this.#buf.byteLength) {
      throw new FcpError('FCP_ERR_PROTO_MALFORMED', `payload too short for ${what}`);
    }
    const at = this.#pos;
    this.#pos += n;
    return at;
  }

  u8(what = 'u8'): number {
    return this.#view.getUint8(this.#need(1, what));
  }

  u16(what = 'u16'): number {
    return this.#view.getUint16(this.#need(2, what));
  }

  u32(what = 'u32'): number {
    return this.#view.getUint32(this.#need(4, what));
  }

  u64(what = 'u64'): bigint {
    return this.#view.getBigUint64(this.#need(8, what));
  }

  i64(what = 'i64'): bigint {
    return this.#view.getBigInt64(this.#need(8, what));
  }

  /** A view of the next n bytes; valid as long as the payload is. */
  bytes(n: number, what = 'bytes'): Uint8Array {
    const at = this.#need(n, what);
    return this.#buf.subarray(at, at + n);
  }

  /** u16 byte length, then that many bytes of UTF-8. */
  str16(what = 'string', maxBytes = 0xffff): string {
    const len = this.u16(`${what} length`);
    if (len > maxBytes)
      throw new FcpError('FCP_ERR_PROTO_MALFORMED', `${what} longer than ${maxBytes} bytes`);
    const at = this.#need(len, what);
    if (len === 0) return '';
    // Straight from the Buffer, no view: bytes that are not valid UTF-8 decode with U+FFFD there, so only
    // a string holding one (bad bytes, or a real U+FFFD) needs the strict decoder's verdict.
    const text = this.#text?.toString('utf8', at, at + len);
    if (text !== undefined && !text.includes('\uFFFD')) return text;
    try {
      return utf8Decoder.decode(this.#buf.subarray(at, at + len));
    } catch {
      throw new FcpError('FCP_ERR_PROTO_MALFORMED', `${what} is not valid UTF-8`);
    }
  }

  /** u16 byte length, then that many raw bytes, copied out (so the payload may be reused). */
  bytes16(what = 'bytes', maxBytes = 0xffff): Uint8Array {
    const len = this.u16(`${what} length`);
    if (len > maxBytes)
      throw new FcpError('FCP_ERR_PROTO_MALFORMED', `${what} longer than ${maxBytes} bytes`);
    return Uint8Array.from(this.bytes(len, what));
  }

  /** Everything not yet read, as a view. */
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }

  /** Messages have exact layouts: trailing bytes mean the peer and we disagree on the format. */
  end(what: string): void {
    if (this.remaining !== 0) {
      throw new FcpError('FCP_ERR_PROTO_MALFORMED', `${this.remaining} unexpected trailing bytes in ${what}`);
    }
  }
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const I64_MIN = -0x8000_0000_0000_0000n;
const I64_MAX = 0x7fff_ffff_ffff_ffffn;
// 64-bit values go through one DataView and are copied in: Buffer's writeBig(U)Int64BE split the value with
// BigInt arithmetic, which allocated ~250 bytes per list entry (5 % of a re-run's allocation).
const SCRATCH = new Uint8Array(8);
const SCRATCH_VIEW = new DataView(SCRATCH.buffer);

/** Collects a payload; the caller sizes nothing, and finish() checks the 64 KiB frame limit. */
export class PayloadWriter {
  #buf: Buffer;
  #pos = 0;

  constructor(initial = 64) {
    this.#buf = Buffer.allocUnsafe(initial);
  }

  /** Reserves n bytes and returns their offset. It may replace #buf: read #buf only after calling it. */
  #room(n: number): number {
    if (this.#pos + n > this.#buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + n));
      this.#buf.copy(next, 0, 0, this.#pos);
      this.#buf = next;
    }
    const at = this.#pos;
    this.#pos += n;
    return at;
  }

  u8(v: number): this {
    const at = this.#room(1);
    this.#buf.writeUInt8(v, at);
    return this;
  }

  u16(v: number): this {
    const at = this.#room(2);
    this.#buf.writeUInt16BE(v, at);
    return this;
  }

  u32(v: number): this {
    const at = this.#room(4);
    this.#buf.writeUInt32BE(v >>> 0, at);
    return this;
  }

  u64(v: bigint): this {
    if (v < 0n || v > U64_MAX) throw new RangeError(`u64 out of range: ${v}`);
    SCRATCH_VIEW.setBigUint64(0, v);
    return this.bytes(SCRATCH);
  }

  i64(v: bigint): this {
    if (v < I64_MIN || v > I64_MAX) throw new RangeError(`i64 out of range: ${v}`);
    SCRATCH_VIEW.setBigInt64(0, v);
    return this.bytes(SCRATCH);
  }

  bytes(b: Uint8Array): this {
    const at = this.#room(b.byteLength);
    this.#buf.set(b, at);
    return this;
  }

  str16(s: string): this {
    // Room for the most bytes the string can take (3 per UTF-16 unit), then one UTF-8 pass: measuring it
    // with Buffer.byteLength first was a second pass per path of the list.
    const at = this.#room(2 + s.length * 3);
    const len = this.#buf.write(s, at + 2, 'utf8');
    this.#pos = at + 2 + len;
    if (len > 0xffff) {
      this.#pos = at;
      throw new FcpError('FCP_ERR_PROTO_OVERSIZED', 'string longer than 65535 bytes');
    }
    this.#buf.writeUInt16BE(len, at);
    return this;
  }

  bytes16(b: Uint8Array): this {
    if (b.byteLength > 0xffff) throw new FcpError('FCP_ERR_PROTO_OVERSIZED', 'bytes longer than 65535');
    return this.u16(b.byteLength).bytes(b);
  }

  get length(): number {
    return this.#pos;
  }

  /** Empties the writer for the next payload, keeping its buffer: the view finish() gave out is reused. */
  reset(): void {
    this.#pos = 0;
  }

  finish(): Buffer {
    return this.#buf.subarray(0, this.#pos);
  }
}

// Readers and writers live a message or a connection: see kept-shapes.ts.
keepShape(new PayloadReader(Buffer.alloc(0)));
keepShape(new PayloadWriter(0));
