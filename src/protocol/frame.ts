/**
 * Framing: `flag` u8 | `chksum` u32 | `length` u16 | `payload`, big-endian; chksum is xxh32(payload, seed 0),
 * except for DATA on a TLS connection whose peers agreed to leave it 0 (skipDataChecksums).
 *
 * FrameDecoder is a push-driven state machine (no I/O, no timers): feed it whatever the socket delivered and
 * it calls onFrame once per complete, verified frame. It validates the type and the length as soon as the
 * 7-byte header is in, before buffering any payload, and copies payload bytes only when a frame straddles two
 * chunks (spec/PROTOCOL.md §2).
 *
 * With a DataSink, DATA frames take another route: once their 12-byte prefix is in, the sink names the
 * buffer their data belongs in (the receiver's piece buffer), and the data is copied there straight from the
 * socket's chunks, then checked. Each data byte is copied once instead of twice (TLS hands over 16 KiB
 * chunks, so nearly every 64 KiB frame straddles several), and no per-frame buffer is left for the GC.
 *
 * A reader that can place what it reads (a socket told where its next read goes) asks readTarget() and says
 * written(n) instead of pushing chunks: a DATA frame's data is then read straight into the sink's buffer, and
 * the header and prefix that follow one into the decoder's own, so a bulk transfer's bytes are neither
 * copied by us nor left in a fresh buffer per read for the GC.
 */
import { DATA_PREFIX_SIZE, FRAME_HEADER_SIZE, MsgType } from './constants.js';
import { FcpError } from './errors.js';
import { MAX_PAYLOAD_BY_TYPE, typeName } from './messages.js';

/** Computes xxh32(bytes, 0). Injected so this module stays free of the wasm loader. */
export type Checksum32 = (bytes: Uint8Array) => number;

/**
 * Called once per frame. `payload` is a view that is valid only during the call: it may alias the chunk the
 * caller pushed. Throwing from the callback stops decoding and propagates out of push().
 */
export type FrameHandler = (type: number, payload: Uint8Array) => void;

/** xxh32 of two buffers as if concatenated (a DATA prefix and its data), seed 0. */
export type Checksum32Parts = (a: Uint8Array, b: Uint8Array) => number;

/** The frame checksums a connection needs; the transfer layer's Hasher provides them (xxhash-wasm). */
export interface FrameChecksums {
  readonly h32: Checksum32;
  h32Parts(a: Uint8Array, b: Uint8Array): number;
}

/**
 * Where DATA frames' data goes. target() is asked as soon as a frame's prefix is in and returns a buffer of
 * exactly `length` bytes to fill, or undefined to have the frame delivered through onFrame as usual. The
 * bytes are not yet verified while they arrive; landed() says they are (the checksum matched). Between the
 * two calls the decoder owns the target: the sink must not reuse that memory until landed() (or until the
 * connection is gone). Throwing from either call fails the decoder.
 */
export interface DataSink {
  target(id: number, seq: number, offset: number, length: number): Uint8Array | undefined;
  landed(id: number, seq: number, offset: number, data: Uint8Array): void;
}

const EMPTY = new Uint8Array(0);

/** A fresh region for reads that are not placed in a frame's own buffer: that many bytes, taken in turn. */
const ARENA_SIZE = 64 * 1024;
/** An arena with less room left than this is replaced rather than offered (a read into it would be tiny). */
const ARENA_MIN_ROOM = 4 * 1024;
/**
 * DATA frames with at least this much data are read into their target directly, and the header and prefix
 * after one on their own. Smaller ones (a small file's) go through the arena: on a plain socket each placed
 * read is a read() call, and one read of the arena takes many small frames at once.
 */
const PLACED_DATA_MIN = 16 * 1024;
/** Where reads go once the decoder has failed: thrown away, never looked at, so shared. */
const DISCARD = new Uint8Array(16 * 1024);

/** What the last readTarget() was, so written() knows where the bytes went. */
const Placed = {
  /** A region of the arena: fed like a pushed chunk. */
  Arena: 0,
  /** The rest of the frame header or DATA prefix, in the decoder's own buffer. */
  Small: 1,
  /** The rest of the current DATA frame's target. */
  Body: 2,
  /** DISCARD. */
  Nowhere: 3,
} as const;
type PlacedValue = (typeof Placed)[keyof typeof Placed];

const State = {
  Header: 0,
  Payload: 1,
  /** A DATA frame for the sink: waiting for its 12-byte prefix. */
  DataPrefix: 2,
  /** Copying a DATA frame's data into its target. */
  DataBody: 3,
  Failed: 4,
} as const;
type StateValue = (typeof State)[keyof typeof State];

export class FrameDecoder {
  readonly #checksum: Checksum32;
  readonly #onFrame: FrameHandler;
  #state: StateValue = State.Header;
  #chunks: Buffer[] = [];
  /** Bytes of #chunks[0] already consumed: kept as an offset, not re-sliced (a view per frame is garbage). */
  #offset = 0;
  #buffered = 0;
  readonly #header = new Uint8Array(FRAME_HEADER_SIZE);
  #type = 0;
  #sum = 0;
  #length = 0;
  #sink: DataSink | undefined;
  #checksumParts: Checksum32Parts | undefined;
  /** The current DATA frame on the sink route: its prefix, where its data goes, how much has arrived. */
  readonly #prefix = Buffer.alloc(DATA_PREFIX_SIZE);
  #dataId = 0;
  #dataSeq = 0;
  #dataOffset = 0;
  #target: Uint8Array = EMPTY;
  #filled = 0;
  /** Set when the sink declined the frame: the whole payload (prefix included) to hand to onFrame. */
  #whole: Buffer | undefined;
  /** False once the connection's TLS vouches for DATA frames (see skipDataChecksums). */
  #checkData = true;
  /** Bytes of the header (State.Header) or DATA prefix (State.DataPrefix) placed there by written(). */
  #smallFilled = 0;
  /** The current DATA frame's data is read into its target directly (PLACED_DATA_MIN). */
  #placeData = false;
  /** The last frame was a large DATA on the sink route: the header after it is read on its own. */
  #bulk = false;
  #placed: PlacedValue = Placed.Arena;
  /** Reads not placed in a frame's own buffer go here; no byte of it is offered twice (see readTarget). */
  #arena: Buffer = EMPTY as Buffer;
  #arenaUsed = 0;

  constructor(checksum: Checksum32, onFrame: FrameHandler) {
    this.#checksum = checksum;
    this.#onFrame = onFrame;
  }

  /** Routes DATA frames' data into buffers the sink provides (see DataSink). Set before the first push. */
  setDataSink(sink: DataSink, checksumParts: Checksum32Parts): void {
    this.#sink = sink;
    this.#checksumParts = checksumParts;
  }

  /**
   * Stops checking DATA frames' chksum, which the peer sends as 0 on a TLS connection where both HELLOs
   * offered it (spec/PROTOCOL.md §2): TLS already authenticates every byte. Other frames are still checked.
   */
  skipDataChecksums(): void {
    this.#checkData = false;
  }

  /** Bytes received but not yet part of a delivered frame. */
  get bufferedBytes(): number {
    return this.#buffered + this.#smallFilled;
  }

  /** True between frames: the stream may end here cleanly. */
  get atBoundary(): boolean {
    return this.#state === State.Header && this.#buffered === 0 && this.#smallFilled === 0;
  }

  /** Feeds bytes. Throws FcpError (FCP_ERR_PROTO_*) on the first invalid frame; the decoder then stays failed. */
  push(chunk: Buffer): void {
    if (this.#state === State.Failed)
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', 'decoder already failed');
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    this.#runGuarded();
  }

  /**
   * Where the next bytes read should be placed; say how many were with written(), before asking again.
   * While a large DATA frame's data is due it is the rest of the sink's target; the header and prefix after
   * such a frame go into the decoder's own small buffers when nothing is buffered; else a region of an
   * arena that no byte was read into before (payload views handed out of it stay valid, STYLE rule 6).
   * Once the decoder has failed, a buffer whose contents are ignored.
   */
  readTarget(): Uint8Array {
    switch (this.#state) {
      case State.DataBody:
        // #run leaves this state only with nothing buffered: the data still due is all to come.
        if (!this.#placeData) break;
        this.#placed = Placed.Body;
        return this.#filled === 0 ? this.#target : this.#target.subarray(this.#filled);
      case State.Header:
        if (this.#smallFilled > 0 || (this.#bulk && this.#buffered === 0)) return this.#small(this.#header);
        break;
      case State.DataPrefix:
        if (this.#smallFilled > 0 || (this.#bulk && this.#buffered === 0)) return this.#small(this.#prefix);
        break;
      case State.Failed:
        this.#placed = Placed.Nowhere;
        return DISCARD;
      default:
        break;
    }
    this.#placed = Placed.Arena;
    if (this.#arena.length - this.#arenaUsed < ARENA_MIN_ROOM) {
      this.#arena = Buffer.allocUnsafe(ARENA_SIZE);
      this.#arenaUsed = 0;
    }
    return this.#arena.subarray(this.#arenaUsed);
  }

  /**
   * `n` bytes were placed in the last readTarget(). Throws as push() does; a decoder that failed ignores
   * them.
   */
  written(n: number): void {
    if (this.#state === State.Failed || n === 0) return;
    switch (this.#placed) {
      case Placed.Body:
        this.#filled += n;
        break;
      case Placed.Small:
        this.#smallFilled += n;
        if (!this.#smallDone()) return;
        break;
      case Placed.Arena: {
        const chunk = this.#arena.subarray(this.#arenaUsed, this.#arenaUsed + n);
        this.#arenaUsed += n;
        this.#chunks.push(chunk);
        this.#buffered += n;
        break;
      }
      default:
        return;
    }
    this.#runGuarded();
  }

  #small(buf: Uint8Array): Uint8Array {
    this.#placed = Placed.Small;
    return this.#smallFilled === 0 ? buf : buf.subarray(this.#smallFilled);
  }

  /** The header or prefix placed by written() is complete: act on it as #run would have. */
  #smallDone(): boolean {
    const size = this.#state === State.Header ? FRAME_HEADER_SIZE : DATA_PREFIX_SIZE;
    if (this.#smallFilled < size) return false;
    this.#smallFilled = 0;
    try {
      if (this.#state === State.Header) this.#readHeader(this.#header);
      else this.#openData();
    } catch (err) {
      this.#fail();
      throw err;
    }
    return true;
  }

  #runGuarded(): void {
    try {
      this.#run();
    } catch (err) {
      this.#fail();
      throw err;
    }
  }

  #fail(): void {
    this.#state = State.Failed;
    this.#chunks = [];
    this.#offset = 0;
    this.#buffered = 0;
    this.#smallFilled = 0;
    this.#target = EMPTY;
    this.#whole = undefined;
  }

  /** The stream ended. A partial frame left over is a truncation. */
  end(): void {
    if (this.#state === State.Failed) return;
    if (!this.atBoundary) {
      this.#state = State.Failed;
      throw new FcpError('FCP_ERR_PROTO_TRUNCATED', `stream ended ${this.bufferedBytes} bytes into a frame`);
    }
  }

  #run(): void {
    for (;;) {
      switch (this.#state) {
        case State.Header:
          if (this.#buffered < FRAME_HEADER_SIZE) return;
          this.#consumeSmall(this.#header);
          this.#readHeader(this.#header);
          break;
        case State.Payload: {
          if (this.#buffered < this.#length) return;
          const payload = this.#consume(this.#length);
          this.#state = State.Header;
          const checked = this.#checkData || this.#type !== MsgType.Data;
          if (checked && this.#checksum(payload) !== this.#sum) throw this.#badChecksum();
          this.#bulk = false;
          this.#onFrame(this.#type, payload);
          break;
        }
        case State.DataPrefix:
          if (this.#buffered < DATA_PREFIX_SIZE) return;
          this.#consumeSmall(this.#prefix);
          this.#openData();
          break;
        case State.DataBody:
          this.#filled += this.#consumeInto(this.#target, this.#filled);
          if (this.#filled < this.#target.byteLength) return;
          this.#state = State.Header;
          this.#landData();
          break;
        default:
          return;
      }
    }
  }

  #openData(): void {
    const p = this.#prefix;
    this.#dataId = p.readUInt32BE(0);
    this.#dataSeq = p.readUInt32BE(4);
    this.#dataOffset = p.readUInt32BE(8);
    const length = this.#length - DATA_PREFIX_SIZE;
    const target = this.#sink!.target(this.#dataId, this.#dataSeq, this.#dataOffset, length);
    if (target === undefined) {
      this.#whole = Buffer.allocUnsafe(this.#length);
      this.#whole.set(p, 0);
      this.#target = this.#whole.subarray(DATA_PREFIX_SIZE);
    } else {
      if (target.byteLength !== length) throw new RangeError('DataSink target has the wrong length');
      this.#whole = undefined;
      this.#target = target;
    }
    this.#filled = 0;
    this.#placeData = target !== undefined && length >= PLACED_DATA_MIN;
    this.#state = State.DataBody;
  }

  #landData(): void {
    const data = this.#target;
    const whole = this.#whole;
    this.#target = EMPTY;
    this.#whole = undefined;
    if (this.#checkData) {
      const sum = whole === undefined ? this.#checksumParts!(this.#prefix, data) : this.#checksum(whole);
      if (sum !== this.#sum) throw this.#badChecksum();
    }
    this.#bulk = this.#placeData;
    if (whole !== undefined) {
      this.#onFrame(this.#type, whole);
      return;
    }
    this.#sink!.landed(this.#dataId, this.#dataSeq, this.#dataOffset, data);
  }

  #badChecksum(): FcpError {
    return new FcpError('FCP_ERR_PROTO_BAD_CHECKSUM', `bad checksum on ${typeName(this.#type)} frame`);
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
    this.#state =
      type === MsgType.Data && this.#sink !== undefined && length >= DATA_PREFIX_SIZE
        ? State.DataPrefix
        : State.Payload;
  }

  /** Copies buffered bytes into target[at..] (as many as are in, at most what fits); returns the count. */
  #consumeInto(target: Uint8Array, at: number): number {
    const want = Math.min(target.byteLength - at, this.#buffered);
    let copied = 0;
    while (copied < want) {
      const head = this.#chunks[0]!;
      const take = Math.min(head.length - this.#offset, want - copied);
      target.set(this.#offset === 0 && take === head.length ? head : this.#view(head, take), at + copied);
      copied += take;
      this.#advance(head, take);
    }
    this.#buffered -= copied;
    return copied;
  }

  /** Fills a small target (a header or DATA prefix) byte by byte: no view allocated. Enough is buffered. */
  #consumeSmall(target: Uint8Array): void {
    for (let i = 0; i < target.length;) {
      const head = this.#chunks[0]!;
      const take = Math.min(head.length - this.#offset, target.length - i);
      for (let j = 0; j < take; j++) target[i + j] = head[this.#offset + j]!;
      i += take;
      this.#advance(head, take);
    }
    this.#buffered -= target.length;
  }

  /** Takes n buffered bytes: a view when they sit in the first chunk, a copy only across chunk boundaries. */
  #consume(n: number): Uint8Array {
    // A zero-length payload (PING) may follow a header that used up the last chunk: there is no chunk to view.
    if (n === 0) return EMPTY;
    const first = this.#chunks[0]!;
    if (n <= first.length - this.#offset) {
      const out = this.#offset === 0 && n === first.length ? first : this.#view(first, n);
      this.#advance(first, n);
      this.#buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    this.#consumeInto(out, 0);
    return out;
  }

  /** The next `n` unconsumed bytes of `head` (the first chunk), as a view. */
  #view(head: Buffer, n: number): Buffer {
    return head.subarray(this.#offset, this.#offset + n);
  }

  /** Marks `n` bytes of the first chunk consumed, dropping the chunk once it is used up. */
  #advance(head: Buffer, n: number): void {
    this.#offset += n;
    if (this.#offset === head.length) {
      this.#chunks.shift();
      this.#offset = 0;
    }
  }
}
