/**
 * Control frames encoded back to back into one buffer, for a run of messages that leaves in one write: the
 * sender's list, thousands of FILE_INFO a second. Per message it saves a payload buffer, a frame buffer and
 * a stream write (with TLS, a share of a record); the bytes on the wire are the same frames.
 */
import { PayloadWriter } from './byte-io.js';
import { FRAME_HEADER_SIZE } from './constants.js';
import { writeFrameHeader } from './frame-encode.js';
import type { Checksum32 } from './frame.js';
import { encodeMessageInto, type Message } from './messages.js';
import type { DataMsg } from './messages/data.js';

const INITIAL_BYTES = 64 * 1024;

export class FrameBatch {
  readonly #checksum: Checksum32;
  /** Reused for every payload; the payload is copied into #buf behind its header. */
  readonly #payload = new PayloadWriter(256);
  /** Frames go in at #pos; those from #start on are not taken yet, and before #start never written again. */
  #buf = Buffer.allocUnsafe(INITIAL_BYTES);
  #start = 0;
  #pos = 0;

  constructor(checksum: Checksum32) {
    this.#checksum = checksum;
  }

  /** Bytes of the frames added and not yet taken. */
  get length(): number {
    return this.#pos - this.#start;
  }

  /** Encodes `msg` as one more frame (throws, adding nothing, for a message that cannot be encoded). */
  add(msg: Exclude<Message, DataMsg>): void {
    const payload = encodeMessageInto(this.#payload, msg);
    const size = FRAME_HEADER_SIZE + payload.length;
    if (this.#pos + size > this.#buf.length) this.#grow(size);
    writeFrameHeader(this.#buf, msg.type, this.#checksum(payload), payload.length, this.#pos);
    payload.copy(this.#buf, this.#pos + FRAME_HEADER_SIZE);
    this.#pos += size;
  }

  /** The frames added since the last take(), handed over: the batch never writes into them again. */
  take(): Buffer {
    const out = this.#buf.subarray(this.#start, this.#pos);
    this.#start = this.#pos;
    return out;
  }

  /** A new buffer holding the frames not taken yet; the old one stays with whoever took frames from it. */
  #grow(size: number): void {
    const pending = this.#pos - this.#start;
    const next = Buffer.allocUnsafe(Math.max(INITIAL_BYTES, 2 * (pending + size)));
    this.#buf.copy(next, 0, this.#start, this.#pos);
    this.#buf = next;
    this.#start = 0;
    this.#pos = pending;
  }
}
