/**
 * Writes to stdout, when it is a pipe, wait until the pipe takes them.
 *
 * Why: node writes what fits in a full pipe at once and queues the rest, and process.exit drops the queue:
 * `fcp --json | slow-reader` lost its last lines, the summary among them (one run in four into `tail` on
 * a re-run of 59,000 entries; most runs once the file lines went out 64 KiB at a time), and a reader
 * slower than the transfer made the queue grow without bound. A pipe's writer blocks, as rsync and every
 * other program writing to one does: a reader that stops reading holds fcp. Unlike a C program's, fcp's
 * SIGINT/SIGTERM handlers and `fcp cancel` run in the event loop, which waits in write(2) meanwhile: they
 * take effect once the reader reads or exits (README `--json`).
 */
interface BlockingHandle {
  setBlocking?: (blocking: boolean) => number;
}

/** Makes stdout's writes blocking when it is a pipe or socket; a file and a terminal are left as node has them. */
export function blockingStdoutPipe(): void {
  if (process.stdout.isTTY) return;
  // net.Socket's handle is not in node's typings; a file's stream (SyncWriteStream) has none.
  const handle = (process.stdout as unknown as { _handle?: BlockingHandle })._handle;
  if (typeof handle?.setBlocking === 'function') handle.setBlocking(true);
}
