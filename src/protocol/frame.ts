/**
 * Framing: `flag` u8 | `chksum` u32 | `length` u16 | `payload`, big-endian; chksum is xxh32(payload, seed 0).
 *
 * FrameDecoder is a push-driven state machine (no I/O, no timers): feed it whatever the socket delivered and
 * it calls onFrame once per complete, verified frame. It validates the type and the length as soon as the
 * 7-byte header is in, before buffering any payload, and copies payload bytes only when a frame straddles two
 * chunks (spec/PROTOCOL.md §2).
 */
import { FRAME_HEADER_SIZE, MAX_PAYLOAD } from './constants.js';
import { FcpError } from './errors.js';
import { MAX_PAYLOAD_BY_TYPE, typeName } from './messages.js';

/** Computes xxh32(bytes, 0). Injected so this module stays free of the wasm loader. */
export type Checksum32 = (bytes: Uint8Array) => number;

/**
 * Called once per frame. `payload` is a view that is valid only during the call: it may alias the chunk the
 * caller pushed. Throwing from the callback stops decoding and propagates out of push().
 */
export type FrameHandler = (type: number, payload: Uint8Array) => void;

const EMPTY = new Uint8Array(0);

const State = {
  Header: 0,
  Payload: 1,
  Failed: 2,
} as const;
type StateValue = (typeof State)[keyof typeof State];

export class FrameDecoder {
  readonly #checksum: Checksum32;
  readonly #onFrame: FrameHandler;
  #state: StateValue = State.Header;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #type = 0;
  #sum = 0;
  #length = 0;

  constructor(checksum: Checksum32, onFrame: FrameHandler) {
    this.#checksum = checksum;
    this.#onFrame = onFrame;
  }

  /** Bytes received but not yet part of a delivered frame. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** True between frames: the stream may end here cleanly. */
  get atBoundary(): boolean {
    return this.#state === State.Header && this.#buffered === 0;
  }

  /** Feeds bytes. Throws FcpError (FCP_ERR_PROTO_*) on the first invalid frame; the decoder then stays failed. */
  push(chunk: Buffer): void {
    if (this.#state === State.Failed)
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'decoder already failed');
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    try {
      this.#run();
    } catch (err) {
      this.#state = State.Failed;
      this.#chunks = [];
      this.#buffered = 0;
      throw err;
    }
  }

  /** The stream ended. A partial frame left over is a truncation. */
  end(): void {
    if (this.#state === State.Failed) return;
    if (!this.atBoundary) {
      this.#state = State.Failed;
      throw new FcpError('FCP_ERR_PROTO_TRUNCATED', `stream ended ${this.#buffered} bytes into a frame`);
    }
  }

  #run(): void {
    for (;;) {
      if (this.#state === State.Header) {
        if (this.#buffered < FRAME_HEADER_SIZE) return;
        this.#readHeader(this.#consume(FRAME_HEADER_SIZE));
      } else {
        if (this.#buffered < this.#length) return;
        const payload = this.#consume(this.#length);
        this.#state = State.Header;
        if (this.#checksum(payload) !== this.#sum) {
          throw new FcpError('FCP_ERR_PROTO_BAD_CHECKSUM', `bad checksum on ${typeName(this.#type)} frame`);
        }
        this.#onFrame(this.#type, payload);
      }
    }
  }

  #readHeader(h: Uint8Array): void {
    const type = h[0]!;
    this.#sum = ((h[1]! << 24) | (h[2]! << 16) | (h[3]! << 8) | h[4]!) >>> 0;
    const length = (h[5]! << 8) | h[6]!;
    const max = MAX_PAYLOAD_BY_TYPE[type];
    if (max === undefined) {
      throw new FcpError('FCP_ERR_PROTO_UNKNOWN_FLAG', `unknown frame type ${typeName(type)}`);
    }
    if (length > max) {
      throw new FcpError(
        'FCP_ERR_PROTO_OVERSIZED',
        `${typeName(type)} frame of ${length} bytes (max ${max})`,
      );
    }
    this.#type = type;
    this.#length = length;
    this.#state = State.Payload;
  }

  /** Takes n buffered bytes: a view when they sit in the first chunk, a copy only across chunk boundaries. */
  #consume(n: number): Uint8Array {
    // A zero-length payload (PING) may follow a header that used up the last chunk: there is no chunk to view.
    if (n === 0) return EMPTY;
    this.#buffered -= n;
    const first = this.#chunks[0]!;
    if (n === first.length) {
      this.#chunks.shift();
      return first;
    }
    if (n < first.length) {
      this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.#chunks[0]!;
      const take = Math.min(head.length, n - filled);
      head.copy(out, filled, 0, take);
      filled += take;
      if (take === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(take);
    }
    return out;
  }
}

/** Builds the 7-byte header for a payload of `length` bytes whose xxh32 is `sum`. */
export function encodeFrameHeader(type: number, sum: number, length: number): Buffer {
  if (length > MAX_PAYLOAD) throw new FcpError('FCP_ERR_PROTO_OVERSIZED', `payload of ${length} bytes`);
  const h = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  h.writeUInt8(type, 0);
  h.writeUInt32BE(sum >>> 0, 1);
  h.writeUInt16BE(length, 5);
  return h;
}

/** A whole frame in one buffer; for control messages, where one small copy beats two writes. */
export function encodeFrame(type: number, payload: Uint8Array, checksum: Checksum32): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.byteLength);
  encodeFrameHeader(type, checksum(payload), payload.byteLength).copy(out, 0);
  out.set(payload, FRAME_HEADER_SIZE);
  return out;
}
