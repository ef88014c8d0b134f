// A proxy that forwards everything and keeps a copy of the bytes, so a test can prove what did or did
// not cross the wire (e.g. that a marker string never appears in clear). Built on the fault proxy, so
// faults can be injected while recording.
import { type Direction, type FaultProxy, type ProxyTarget, startFaultProxy } from './fault-proxy.js';

/** Default cap on recorded bytes, both directions and all connections together. */
export const DEFAULT_RECORD_LIMIT = 512 * 1024 * 1024;

export interface RecordingProxyOptions {
  target: ProxyTarget;
  /** Defaults to 127.0.0.1. */
  listenHost?: string;
  /** Stop recording (but keep forwarding) after this many bytes. Defaults to DEFAULT_RECORD_LIMIT. */
  maxBytes?: number;
}

/** The recorded bytes. A test proving that something is absent must also check `truncated` is false. */
export interface Recording {
  up: Buffer;
  down: Buffer;
  /** True when the cap was reached and later bytes were forwarded but not recorded. */
  truncated: boolean;
}

interface Streams {
  up: Buffer[];
  down: Buffer[];
}

/** A running recording proxy; build one with {@link startRecordingProxy}. */
export class RecordingProxy {
  /** The underlying proxy: for its wait helpers and to inject faults while recording. */
  readonly proxy: FaultProxy;
  readonly #maxBytes: number;
  readonly #streams: Streams[] = [];
  #recordedBytes = 0;
  #truncated = false;

  private constructor(proxy: FaultProxy, maxBytes: number) {
    this.proxy = proxy;
    this.#maxBytes = maxBytes;
  }

  /** Use {@link startRecordingProxy}. */
  static async start(options: RecordingProxyOptions): Promise<RecordingProxy> {
    const maxBytes = options.maxBytes ?? DEFAULT_RECORD_LIMIT;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new RangeError(`maxBytes must be a non-negative integer, got ${maxBytes}`);
    }
    // The tap needs the recorder and the recorder needs the proxy; no connection can arrive before the
    // port is returned, so the tap never runs while `recorder` is unset.
    // eslint-disable-next-line prefer-const -- assigned after the proxy exists; the closure reads it later
    let recorder: RecordingProxy | undefined;
    const proxy = await startFaultProxy({
      target: options.target,
      listenHost: options.listenHost ?? '127.0.0.1',
      onForward: (connection, direction, chunk) => {
        if (recorder !== undefined) recorder.#record(connection.index, direction, chunk);
      },
    });
    recorder = new RecordingProxy(proxy, maxBytes);
    return recorder;
  }

  get port(): number {
    return this.proxy.port;
  }

  get truncated(): boolean {
    return this.#truncated;
  }

  /**
   * Each direction's bytes, connection by connection in accept order. Connections are not interleaved,
   * so a string split across two reads of one connection is still found whole.
   */
  recorded(): Recording {
    const up = Buffer.concat(this.#streams.flatMap((streams) => streams.up));
    const down = Buffer.concat(this.#streams.flatMap((streams) => streams.down));
    return { up, down, truncated: this.#truncated };
  }

  /** The same bytes, one entry per accepted connection (index i is connection i). */
  recordedByConnection(): Recording[] {
    const count = Math.max(this.#streams.length, this.proxy.connections.length);
    return Array.from({ length: count }, (_, index) => ({
      up: Buffer.concat(this.#streams[index]?.up ?? []),
      down: Buffer.concat(this.#streams[index]?.down ?? []),
      truncated: this.#truncated,
    }));
  }

  close(): Promise<void> {
    return this.proxy.close();
  }

  #record(index: number, direction: Direction, chunk: Buffer): void {
    if (this.#truncated) return;
    const room = this.#maxBytes - this.#recordedBytes;
    const kept = room < chunk.length ? chunk.subarray(0, room) : chunk;
    if (kept.length < chunk.length) this.#truncated = true;
    if (kept.length === 0) return;
    while (this.#streams.length <= index) this.#streams.push({ up: [], down: [] });
    // The tap's chunk is only valid during the call, so keep a copy.
    this.#streams[index]?.[direction].push(Buffer.from(kept));
    this.#recordedBytes += kept.length;
  }
}

/** Starts a recording proxy on an ephemeral port, forwarding to `target`. */
export function startRecordingProxy(options: RecordingProxyOptions): Promise<RecordingProxy> {
  return RecordingProxy.start(options);
}
