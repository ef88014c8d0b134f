/**
 * Collects V8's young generation each time the process has received READ_BYTES_PER_SCAVENGE bytes of DATA,
 * and gives the daemon's idle release (daemon/idle-memory.ts) its full collection.
 *
 * Why: every socket read arrives in a buffer of its own (16 KiB chunks out of TLS, up to 64 KiB from a plain
 * socket), garbage as soon as the decoder has copied its frames into a piece buffer. V8 frees such buffers
 * only at a scavenge, and while a receiver allocates little else (a big file's DATA is copied straight into
 * its piece) it waits until 32 MiB of them are pending (twice its default semi-space size, in
 * Heap::AllocateExternalBackingStore; no flag moves it). heaptrack of a receiving daemon found 35 MB of TLS
 * read chunks live at its peak: the "memory outside the heap that grows even without TLS". With a scavenge
 * every 8 MiB, about twice that is pending (a scavenge's dead buffers are freed by the next one): 256 MiB
 * read as TLS does, into one piece, peaked at 16 MiB of ArrayBuffers against 36, for 33 ms more CPU.
 *
 * V8 exposes its collector to JavaScript only with --expose-gc; setting that flag at run time and taking
 * `gc` from a fresh context is the documented way to get it without a command-line flag.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** DATA bytes received between two young-generation collections: bounds the read buffers left pending. */
export const READ_BYTES_PER_SCAVENGE = 8 * 1024 * 1024;

type Collect = (options?: { type: 'minor' | 'major' }) => void;
let collector: Collect | undefined;
let sinceScavenge = 0;

/** V8's `gc`, made available on first use. */
function collect(): Collect {
  if (collector === undefined) {
    setFlagsFromString('--expose-gc');
    collector = runInNewContext('gc') as Collect;
  }
  return collector;
}

/** Counts `bytes` of DATA received; collects the young generation each READ_BYTES_PER_SCAVENGE. */
export function dataReceived(bytes: number): void {
  sinceScavenge += bytes;
  if (sinceScavenge < READ_BYTES_PER_SCAVENGE) return;
  sinceScavenge = 0;
  collect()({ type: 'minor' });
}

/** One full collection, now (an idle daemon's release of what its sessions left). */
export function collectAll(): void {
  collect()();
}
