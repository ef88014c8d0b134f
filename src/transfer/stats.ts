/** Counters one transfer keeps; the client's progress line and summary read them. */
export interface TransferStats {
  /** Entries (files, links, directories) announced so far, and whether the list is complete. */
  filesTotal: number;
  listComplete: boolean;
  /** Files and links written (or, on the sending side, confirmed written by the receiver). */
  filesSent: number;
  /** Files found identical on the receiver and not sent. */
  filesSkipped: number;
  /** Files that failed (reported per file; the transfer went on). */
  filesFailed: number;
  /** Bytes of file data that must cross the wire, known once the receiver has answered. */
  bytesTotal: number;
  /** Bytes of file data that have crossed the wire. */
  bytesDone: number;
  /** Bytes a resumed file did not need to send again: the receiver kept them from an interrupted run. */
  bytesResumed: number;
  /** Directories created or updated. */
  dirs: number;
  /** process.hrtime-based start, in milliseconds. */
  startedMs: number;
}

export function createStats(nowMs: number): TransferStats {
  return {
    filesTotal: 0,
    listComplete: false,
    filesSent: 0,
    filesSkipped: 0,
    filesFailed: 0,
    bytesTotal: 0,
    bytesDone: 0,
    bytesResumed: 0,
    dirs: 0,
    startedMs: nowMs,
  };
}
