/**
 * fcp's standard output during a transfer: when it is a pipe or a socket, what the reader has not taken yet
 * waits here, fcp goes on handling signals, `fcp cancel` and its connections, and the transfer is held while
 * too much waits.
 *
 * Why not node's stream: it queues what a full pipe does not take, and process.exit drops that queue, so
 * `fcp --json | slow-reader` lost its last lines, the summary among them; and it queues without bound. Why
 * not a blocking pipe (what rsync's C does, and fcp did before): node runs its signal handlers and the
 * control socket in the event loop, which then sat in write(2) while the reader lagged, so Ctrl-C, SIGTERM
 * and `fcp cancel` waited for the reader.
 *
 * So the descriptor stays non-blocking; a write goes to the kernel as far as the pipe takes it, the rest
 * waits here and is tried again every RETRY_MS; past HIGH_BYTES the owner is told to hold the transfer
 * (the client stops reading its connections: the peer's windows fill, and no new lines are made) until
 * LOW_BYTES or less wait. At exit what is left is written blocking, as a C program's exit flushes its stdio:
 * the SIGINT and SIGTERM handlers are removed first, so a signal while a stalled reader holds that last
 * write ends fcp at once, as it would any program (README `--json`).
 */
import { writeSync } from 'node:fs';
import { clearTimeout, setTimeout } from 'node:timers';

/** Past this many bytes waiting for the reader, the transfer is held. */
export const HIGH_BYTES = 256 * 1024;
/** ... until no more than this many wait. */
export const LOW_BYTES = 64 * 1024;
/** How often a pipe that took nothing is tried again (node has no "writable" wait for a raw descriptor). */
const RETRY_MS = 10;
const STDOUT_FD = 1;

export interface StdoutQueueHooks {
  /** true: too much waits, hold the transfer; false: the reader caught up. */
  onHeld: (held: boolean) => void;
  /** The reader went away (EPIPE, ECONNRESET): nothing more is written. */
  onClosed: (code: string) => void;
}

interface PipeHandle {
  setBlocking?: (blocking: boolean) => number;
}

export class StdoutQueue {
  readonly #hooks: StdoutQueueHooks;
  /** undefined: stdout is a terminal or a file, written as node writes it (synchronously there). */
  readonly #handle: PipeHandle | undefined;
  readonly #chunks: Buffer[] = [];
  /** Bytes of #chunks[0] already written. */
  #headOffset = 0;
  #waiting = 0;
  #held = false;
  #closed = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(hooks: StdoutQueueHooks) {
    this.#hooks = hooks;
    // net.Socket's handle is not in node's typings; a file's stream (SyncWriteStream) and a TTY have none
    // that matters here: both are written synchronously by node.
    const handle = process.stdout.isTTY
      ? undefined
      : (process.stdout as unknown as { _handle?: PipeHandle })._handle;
    if (typeof handle?.setBlocking === 'function') {
      handle.setBlocking(false);
      this.#handle = handle;
      process.on('exit', () => this.#flushAtExit());
    }
  }

  /** True while the transfer is held for the reader (a progress snapshot can be left out meanwhile). */
  get held(): boolean {
    return this.#held;
  }

  write(data: string | Uint8Array): void {
    if (this.#closed) return;
    if (this.#handle === undefined) {
      process.stdout.write(data);
      return;
    }
    const bytes =
      typeof data === 'string'
        ? Buffer.from(data)
        : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.length === 0) return;
    this.#chunks.push(bytes);
    this.#waiting += bytes.length;
    if (this.#chunks.length === 1) this.#pump();
    if (!this.#held && this.#waiting > HIGH_BYTES) {
      this.#held = true;
      this.#hooks.onHeld(true);
    }
  }

  /** Writes what the pipe takes now; schedules another try for the rest. */
  #pump(): void {
    this.#retry = undefined;
    while (this.#chunks.length > 0 && !this.#closed) {
      const head = this.#chunks[0]!;
      let wrote: number;
      try {
        wrote = writeSync(STDOUT_FD, head, this.#headOffset, head.length - this.#headOffset);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
        if (code === 'EAGAIN') break;
        this.#close(code);
        return;
      }
      this.#waiting -= wrote;
      this.#headOffset += wrote;
      if (this.#headOffset < head.length) break;
      this.#chunks.shift();
      this.#headOffset = 0;
    }
    if (this.#held && this.#waiting <= LOW_BYTES) {
      this.#held = false;
      this.#hooks.onHeld(false);
    }
    if (this.#chunks.length > 0 && !this.#closed) this.#retry = setTimeout(() => this.#pump(), RETRY_MS);
  }

  #close(code: string): void {
    this.#closed = true;
    this.#chunks.length = 0;
    this.#waiting = 0;
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    this.#hooks.onClosed(code);
  }

  #flushAtExit(): void {
    if (this.#chunks.length === 0 || this.#closed) return;
    // Node stops catching a signal once its last listener is gone: the default action (the process ends)
    // then applies even while this thread waits in write(2).
    process.removeAllListeners('SIGINT');
    process.removeAllListeners('SIGTERM');
    this.#handle?.setBlocking?.(true);
    for (const [i, chunk] of this.#chunks.entries()) {
      let at = i === 0 ? this.#headOffset : 0;
      try {
        while (at < chunk.length) at += writeSync(STDOUT_FD, chunk, at, chunk.length - at);
      } catch {
        return; // The reader went away: what it did not take is lost to it anyway.
      }
    }
  }
}
