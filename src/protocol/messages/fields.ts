/**
 * Field layouts shared by several messages (times, string lists, capped and fixed-size byte fields). Each
 * writer enforces what the matching reader will, so a peer never has to reject what we could have refused.
 */
import type { PayloadReader, PayloadWriter } from '../byte-io.js';
import { MAX_PATH_BYTES, MAX_PATTERNS, SESSION_ID_SIZE } from '../constants.js';
import { FcpError } from '../errors.js';

const NS_PER_SEC = 1_000_000_000n;

export function writeTime(w: PayloadWriter, ns: bigint): void {
  // Seconds floor towards -inf so pre-1970 times keep a non-negative nanosecond part.
  let sec = ns / NS_PER_SEC;
  let nsec = ns % NS_PER_SEC;
  if (nsec < 0n) {
    nsec += NS_PER_SEC;
    sec -= 1n;
  }
  w.i64(sec).u32(Number(nsec));
}

export function readTime(r: PayloadReader): bigint {
  const sec = r.i64('mtime seconds');
  const nsec = r.u32('mtime nanoseconds');
  if (nsec >= 1_000_000_000) throw new FcpError('FCP_ERR_PROTO_MALFORMED', 'mtime nanoseconds out of range');
  return sec * NS_PER_SEC + BigInt(nsec);
}

export function writeStrings(w: PayloadWriter, list: readonly string[]): void {
  if (list.length > MAX_PATTERNS)
    throw new FcpError('FCP_ERR_PROTO_OVERSIZED', `more than ${MAX_PATTERNS} patterns`);
  w.u16(list.length);
  for (const s of list) w.str16(checkedPath(s, 'pattern'));
}

export function readStrings(r: PayloadReader, what: string): string[] {
  const n = r.u16(`${what} count`);
  if (n > MAX_PATTERNS) throw new FcpError('FCP_ERR_PROTO_MALFORMED', `more than ${MAX_PATTERNS} ${what}`);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(r.str16(what, MAX_PATH_BYTES));
  return out;
}

export function checkedPath(s: string, what: string): string {
  if (Buffer.byteLength(s, 'utf8') > MAX_PATH_BYTES) {
    throw new FcpError('FCP_ERR_PROTO_OVERSIZED', `${what} longer than ${MAX_PATH_BYTES} bytes`);
  }
  return s;
}

/** The u16 entry count of a batched message, refused above what one frame may hold. */
export function writeCount(w: PayloadWriter, n: number, max: number, what: string): void {
  if (n > max) throw new FcpError('FCP_ERR_PROTO_OVERSIZED', `${n} ${what} in one message (max ${max})`);
  w.u16(n);
}

/** A fixed-size field of the wrong size is refused. */
export function fixed(b: Uint8Array, size: number, what: string): Uint8Array {
  if (b.byteLength !== size) throw new FcpError('FCP_ERR_PROTO_MALFORMED', `${what} must be ${size} bytes`);
  return b;
}

export function capped(b: Uint8Array, max: number, what: string): Uint8Array {
  if (b.byteLength > max) throw new FcpError('FCP_ERR_PROTO_OVERSIZED', `${what} longer than ${max} bytes`);
  return b;
}

export function cappedText(s: string, max: number, what: string): string {
  if (Buffer.byteLength(s, 'utf8') > max) {
    throw new FcpError('FCP_ERR_PROTO_OVERSIZED', `${what} longer than ${max} bytes`);
  }
  return s;
}

/** A copy, for fields kept after the frame callback (the payload view is not). */
export function copied(r: PayloadReader, n: number, what: string): Uint8Array {
  return Uint8Array.from(r.bytes(n, what));
}

export function sessionIdOf(r: PayloadReader): Uint8Array {
  return copied(r, SESSION_ID_SIZE, 'session id');
}

/** Cuts a string to at most maxBytes of UTF-8 without splitting a character. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  let out = '';
  let used = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (used + n > maxBytes) break;
    out += ch;
    used += n;
  }
  return out;
}
