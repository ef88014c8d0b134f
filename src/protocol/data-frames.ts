/**
 * A piece laid out as the DATA frames that carry it, back to back in one buffer: for each frame its 7-byte
 * header, its 12-byte prefix, then up to MAX_DATA_BYTES of file data. The sender reads file bytes straight
 * into the data regions (one preadv), fills the headers once it knows the connection, and hands the socket
 * one buffer. Given header and data as separate buffers, node's TLS copies a writev's buffers into one
 * before encrypting it: a second copy of every byte sent (spec/ARCHITECTURE.md §6). The frames on the wire
 * are the same as when they are written one by one (spec/PROTOCOL.md §2, §5.3).
 */
import { DATA_PREFIX_SIZE, FRAME_HEADER_SIZE, MAX_DATA_BYTES, MsgType } from './constants.js';
import { writeDataPrefix } from './messages.js';
import { writeFrameHeader } from './frame-encode.js';
import type { Checksum32, FrameChecksums } from './frame.js';

/** Header and prefix in front of each frame's data. */
const FRAME_OVERHEAD = FRAME_HEADER_SIZE + DATA_PREFIX_SIZE;
/** Bytes one full frame takes in the layout. */
const FRAME_STRIDE = FRAME_OVERHEAD + MAX_DATA_BYTES;

/** DATA frames that carry `length` bytes of a piece. */
export function dataFrameCount(length: number): number {
  return Math.ceil(length / MAX_DATA_BYTES);
}

/** Size of the buffer that holds `length` bytes of a piece as DATA frames. */
export function dataFramesSize(length: number): number {
  return length + dataFrameCount(length) * FRAME_OVERHEAD;
}

/** The data regions of a layout for `length` bytes, in order: where the file's bytes are read to. */
export function dataFrameViews(block: Buffer, length: number): Buffer[] {
  checkBlock(block, length);
  const views: Buffer[] = [];
  for (let at = 0, frame = 0; at < length; at += MAX_DATA_BYTES, frame++) {
    const start = frame * FRAME_STRIDE + FRAME_OVERHEAD;
    views.push(block.subarray(start, start + Math.min(MAX_DATA_BYTES, length - at)));
  }
  return views;
}

/** The data region of the layout's first frame: all of a piece of up to MAX_DATA_BYTES (one frame). */
export function firstDataView(block: Buffer, length: number): Buffer {
  checkBlock(block, length);
  return block.subarray(FRAME_OVERHEAD, FRAME_OVERHEAD + Math.min(MAX_DATA_BYTES, length));
}

/**
 * Writes every frame's header and prefix for piece `seq` of file `id`; returns the frames, ready to write.
 * `checksum` is the frame checksum, or undefined where the peers agreed to send DATA with chksum 0 (§2).
 */
export function sealDataFrames(
  block: Buffer,
  length: number,
  id: number,
  seq: number,
  checksum: Checksum32 | undefined,
): Buffer {
  checkBlock(block, length);
  // Prefix and header are written at their offsets: no view per frame unless it is checksummed.
  let frameStart = 0;
  for (let at = 0; at < length; at += MAX_DATA_BYTES) {
    const payloadStart = frameStart + FRAME_HEADER_SIZE;
    const payloadLength = DATA_PREFIX_SIZE + Math.min(MAX_DATA_BYTES, length - at);
    writeDataPrefix(block, id, seq, at, payloadStart);
    const sum =
      checksum === undefined ? 0 : checksum(block.subarray(payloadStart, payloadStart + payloadLength));
    writeFrameHeader(block, MsgType.Data, sum, payloadLength, frameStart);
    frameStart = payloadStart + payloadLength;
  }
  return frameStart === block.length ? block : block.subarray(0, frameStart);
}

function checkBlock(block: Buffer, length: number): void {
  if (length <= 0 || block.length < dataFramesSize(length)) {
    throw new RangeError(`a layout of ${block.length} bytes cannot hold ${length} bytes of DATA frames`);
  }
}

/** One DATA frame with its data copied in (small data, where a copy costs less than a second write). */
export function encodeDataFrame(
  id: number,
  seq: number,
  offset: number,
  data: Uint8Array,
  checksum: Checksum32 | undefined,
): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_OVERHEAD + data.byteLength);
  const payload = frame.subarray(FRAME_HEADER_SIZE);
  writeDataPrefix(payload, id, seq, offset);
  frame.set(data, FRAME_OVERHEAD);
  writeFrameHeader(frame, MsgType.Data, checksum === undefined ? 0 : checksum(payload), payload.byteLength);
  return frame;
}

/**
 * The header and prefix of a DATA frame whose data goes out as its own buffer behind them (STYLE rule 5);
 * `sums` is undefined where DATA travels with chksum 0.
 */
export function encodeDataHead(
  id: number,
  seq: number,
  offset: number,
  data: Uint8Array,
  sums: FrameChecksums | undefined,
): Buffer {
  const head = Buffer.allocUnsafe(FRAME_OVERHEAD);
  const prefix = head.subarray(FRAME_HEADER_SIZE);
  writeDataPrefix(prefix, id, seq, offset);
  const sum = sums === undefined ? 0 : sums.h32Parts(prefix, data);
  writeFrameHeader(head, MsgType.Data, sum, DATA_PREFIX_SIZE + data.byteLength);
  return head;
}
