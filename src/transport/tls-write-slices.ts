/**
 * Hands a TLS socket what is written to it at most TLS_WRITE_SLICE bytes at a time.
 *
 * Why: node's TLSWrap encrypts each write whole into the socket's output BIO before the kernel takes any of
 * it, and sizes that BIO's buffer to the write (NodeBIO's allocate hint); a corked batch of buffers is first
 * copied into one. The BIO keeps its last buffers for the next write, so every connection held about two
 * write-sized buffers of malloc memory for as long as it lived. Our writes are pieces of 1 MiB and corked
 * batches of up to ~1.3 MiB: a /usr/share push over 16 connections had ~47 MB of BIO buffers live at the
 * client's peak (heaptrack), outside the V8 heap, the most of what the sender holds beyond its pieces.
 * Slices bound that to a few slices per connection, and a slice of one buffer is encrypted in place.
 *
 * How: the stream's own `_write`/`_writev` (Writable's implementation hooks) are wrapped so that one write
 * the Writable hands down goes to the socket slice by slice, the next slice once the last is written, and
 * the Writable's callback runs after the last one. The Writable issues nothing else meanwhile, so bytes keep
 * their order, and writableLength, 'drain' and write()'s verdict still count the whole write.
 */
import type { TLSSocket } from 'node:tls';

/** Bytes handed to TLS per write: 16 records; the BIO's buffer for it (~263 KiB) is reused while it fits. */
export const TLS_WRITE_SLICE = 256 * 1024;

type Done = (err?: Error | null) => void;
/** Writable passes 'buffer' as the encoding of a Buffer chunk. */
type Encoding = BufferEncoding | 'buffer';
type Chunk = { chunk: Buffer | string; encoding: Encoding };
interface Hooks {
  _write(chunk: Buffer | string, encoding: Encoding, cb: Done): void;
  _writev?(chunks: Chunk[], cb: Done): void;
}

/** Makes `socket` take its writes in slices of at most `slice` bytes (see the header). */
export function sliceTlsWrites(socket: TLSSocket, slice = TLS_WRITE_SLICE): void {
  const hooks = socket as unknown as Hooks;
  const write = hooks._write.bind(socket);
  const writev = hooks._writev?.bind(socket);
  if (writev === undefined) return;
  const sendRun = (run: Buffer[], next: Done) => {
    if (run.length === 1) write(run[0]!, 'buffer', next);
    else writev(run.map(asChunk), next);
  };
  /** Each run once the one before it is written; `cb` after the last, or at the first error. */
  const sendRuns = (runs: Buffer[][], cb: Done) => {
    let i = 0;
    const next: Done = (err) => {
      const run = runs[i++];
      if (err || run === undefined) cb(err);
      else sendRun(run, next);
    };
    next();
  };
  hooks._write = (chunk, encoding, cb) => {
    if (typeof chunk === 'string' || chunk.length <= slice) write(chunk, encoding, cb);
    else sendRuns(toSlices([chunk], slice), cb);
  };
  hooks._writev = (chunks, cb) => {
    const bufs = chunks.map((c) => c.chunk);
    if (bufs.some((b) => typeof b === 'string') || byteLength(bufs as Buffer[]) <= slice) writev(chunks, cb);
    else sendRuns(toSlices(bufs as Buffer[], slice), cb);
  };
}

function asChunk(chunk: Buffer): Chunk {
  return { chunk, encoding: 'buffer' };
}

function byteLength(bufs: readonly Buffer[]): number {
  let n = 0;
  for (const b of bufs) n += b.length;
  return n;
}

/** `bufs` regrouped, in order, into runs of at most `slice` bytes; a buffer longer than that is cut in views. */
export function toSlices(bufs: readonly Buffer[], slice: number): Buffer[][] {
  const out: Buffer[][] = [];
  let run: Buffer[] = [];
  let runBytes = 0;
  for (const buf of bufs) {
    for (let at = 0; at < buf.length;) {
      const take = Math.min(buf.length - at, slice - runBytes);
      run.push(at === 0 && take === buf.length ? buf : buf.subarray(at, at + take));
      runBytes += take;
      at += take;
      if (runBytes === slice) {
        out.push(run);
        run = [];
        runBytes = 0;
      }
    }
  }
  if (run.length > 0) out.push(run);
  return out;
}
