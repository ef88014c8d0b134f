/**
 * Reads a socket into buffers its reader names, read by read: node's `onread` option of net.Socket (its
 * buffer given as a function, asked again after every read), which tls.TLSSocket honours only for a socket
 * it connects itself: ours wrap a connected socket (the daemon sniffs the first byte; the client dials
 * first), so it is switched on here through the three fields the option sets.
 *
 * Why: the 'data' route hands over every read in a fresh Buffer (16 KiB at most behind TLS) that the frame
 * decoder then copies into the piece it belongs to. Placed reads let TLS write a DATA frame's bytes straight
 * into the piece (plain TCP: the kernel does), with no buffer per read for the GC: on a pinned 512 MiB
 * loopback transfer the receiving side spent about a tenth of its CPU on that copy, the allocations and the
 * collections they caused.
 *
 * Where node lacks what this needs (another runtime, or a stream that is not a socket: an ssh child's
 * stdio), nothing changes and the stream keeps its 'data' events.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';

/** Where a read goes and what it brought. */
export interface ReadPlacement {
  /** The buffer the next read fills (at most its length); never empty. */
  next(): Uint8Array;
  /** `n` bytes were read into the buffer next() returned last. */
  read(n: number): void;
}

interface UserBufferHandle {
  useUserBuffer(buf: Uint8Array): void;
}

/** The own symbol properties of a net.Socket that its `onread` option sets, found by their descriptions. */
function onreadFields(
  socket: net.Socket,
): { buffer: symbol; callback: symbol; generator: symbol } | undefined {
  const symbols = Object.getOwnPropertySymbols(socket);
  const find = (name: string) => symbols.find((s) => s.description === name);
  const buffer = find('kBuffer');
  const callback = find('kBufferCb');
  const generator = find('kBufferGen');
  if (buffer === undefined || callback === undefined || generator === undefined) return undefined;
  return { buffer, callback, generator };
}

/**
 * Switches `stream` to placed reads if it is a socket that can do them and holds no data read the old way
 * (call again once it is drained); returns whether it did. From then on the stream emits no 'data': every
 * read goes through `placement`, and pause()/resume() still stop and start reading ('end', 'error' and
 * 'close' as before). Bytes already decrypted by TLS when the stream is paused are still placed.
 */
export function placeReads(stream: Duplex, placement: ReadPlacement): boolean {
  if (!(stream instanceof net.Socket) || stream.readableLength > 0 || stream.destroyed) return false;
  const handle = (stream as unknown as { _handle?: Partial<UserBufferHandle> | null })._handle;
  if (typeof handle?.useUserBuffer !== 'function') return false;
  const fields = onreadFields(stream);
  if (fields === undefined) return false;
  const fieldsOf = stream as unknown as Record<symbol, unknown>;
  // Already switched (by us or by an `onread` option): leave it alone.
  if (fieldsOf[fields.buffer] !== null) return false;
  const first = placement.next();
  fieldsOf[fields.buffer] = first;
  fieldsOf[fields.callback] = (n: number) => {
    placement.read(n);
  };
  fieldsOf[fields.generator] = () => placement.next();
  handle.useUserBuffer(first);
  return true;
}
