/**
 * The SSH wire encoding (RFC 4251 §5): uint32, string (u32 length + bytes) and mpint, as used by public key
 * blobs, signature blobs, OpenSSH private key files and the ssh-agent protocol. Parsing only; no crypto.
 */
import type { FcpError } from '../protocol/errors.js';
import { authError } from './auth-errors.js';

/** Bounds-checked reader over one SSH-encoded buffer. Every read throws FCP_ERR_AUTH_MALFORMED past the end. */
export class SshReader {
  readonly #buf: Buffer;
  #pos = 0;
  readonly #what: string;

  constructor(buf: Uint8Array, what: string) {
    this.#buf = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#what = what;
  }

  get remaining(): number {
    return this.#buf.length - this.#pos;
  }

  u8(): number {
    this.#need(1);
    return this.#buf[this.#pos++]!;
  }

  u32(): number {
    this.#need(4);
    const v = this.#buf.readUInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }

  /** A string's bytes, as a view into the input (valid while the input is). */
  string(): Buffer {
    const len = this.u32();
    this.#need(len);
    const out = this.#buf.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    return out;
  }

  /** A string that must be printable ASCII (algorithm and curve names). */
  name(): string {
    const bytes = this.string();
    for (const b of bytes) if (b < 0x21 || b > 0x7e) throw this.#malformed('non-ASCII name');
    return bytes.toString('latin1');
  }

  /** A non-negative mpint, returned as its magnitude without leading zero bytes. */
  mpintPositive(): Buffer {
    const bytes = this.string();
    if (bytes.length > 0 && (bytes[0]! & 0x80) !== 0) throw this.#malformed('negative mpint');
    // RFC 4251: no unnecessary leading zero bytes; OpenSSH accepts one before a high bit only.
    if (bytes.length > 1 && bytes[0] === 0 && (bytes[1]! & 0x80) === 0)
      throw this.#malformed('mpint padding');
    return bytes[0] === 0 ? bytes.subarray(1) : bytes;
  }

  raw(len: number): Buffer {
    this.#need(len);
    const out = this.#buf.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    return out;
  }

  /** Throws unless every byte was consumed. */
  end(): void {
    if (this.remaining !== 0) throw this.#malformed(`${this.remaining} trailing bytes`);
  }

  #need(n: number): void {
    if (n > this.remaining) throw this.#malformed('truncated');
  }

  #malformed(why: string): FcpError {
    return authError('FCP_ERR_AUTH_MALFORMED', `malformed ${this.#what}: ${why}`);
  }
}

/** Builds an SSH-encoded buffer. */
export class SshWriter {
  readonly #parts: Buffer[] = [];

  u8(v: number): this {
    this.#parts.push(Buffer.of(v));
    return this;
  }

  u32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v);
    this.#parts.push(b);
    return this;
  }

  string(bytes: Uint8Array | string): this {
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes);
    this.u32(b.length);
    this.#parts.push(b);
    return this;
  }

  /** An mpint from a non-negative magnitude (big-endian, any leading zeros). */
  mpint(magnitude: Uint8Array): this {
    let start = 0;
    while (start < magnitude.length && magnitude[start] === 0) start++;
    const m = Buffer.from(magnitude.subarray(start));
    return this.string(m.length > 0 && (m[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.of(0), m]) : m);
  }

  raw(bytes: Uint8Array): this {
    this.#parts.push(Buffer.from(bytes));
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.#parts);
  }
}

/** base64url without padding, the form JWK uses. */
export function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

/** `SHA256:` + unpadded base64 of a digest, the way ssh prints fingerprints. */
export function formatFingerprint(digest: Uint8Array): string {
  return `SHA256:${Buffer.from(digest).toString('base64').replace(/=+$/, '')}`;
}
