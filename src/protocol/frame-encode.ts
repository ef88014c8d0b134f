/**
 * Frames out: the 7-byte header (type u8 | xxh32 u32 | length u16, big-endian; spec/PROTOCOL.md §3) and a
 * whole small frame in one buffer. frame.ts decodes them; data-frames.ts and frame-batch.ts build DATA and
 * batched frames on writeFrameHeader.
 */
import { FRAME_HEADER_SIZE, MAX_PAYLOAD } from './constants.js';
import { FcpError } from './errors.js';
import type { Checksum32 } from './frame.js';

/** Builds the 7-byte header for a payload of `length` bytes whose xxh32 is `sum`. */
export function encodeFrameHeader(type: number, sum: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  writeFrameHeader(h, type, sum, length);
  return h;
}

/**
 * Writes the 7-byte header into `out` at `at` (its start unless given; the caller allocated room after it).
 */
export function writeFrameHeader(out: Buffer, type: number, sum: number, length: number, at = 0): void {
  if (length > MAX_PAYLOAD) throw new FcpError('FCP_ERR_PROTO_OVERSIZED', `payload of ${length} bytes`);
  out[at] = type;
  out.writeUInt32BE(sum >>> 0, at + 1);
  out.writeUInt16BE(length, at + 5);
}

/** A whole frame in one buffer; for control messages, where one small copy beats two writes. */
export function encodeFrame(type: number, payload: Uint8Array, checksum: Checksum32): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.byteLength);
  writeFrameHeader(out, type, checksum(payload), payload.byteLength);
  out.set(payload, FRAME_HEADER_SIZE);
  return out;
}
