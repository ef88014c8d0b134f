/**
 * What a transfer reports as it goes: one typed event stream, emitted by the engines (Sender, Receiver) on
 * either end. The figures are a reducer over it (reduceStats); the progress line, the daemon's session log,
 * a `--json` writer and `fcp status` are subscribers, each one more listener (STYLE rule 15). An event is a
 * small object made only where the engine already does the work it reports; nothing is built per byte.
 */
import { performance } from 'node:perf_hooks';
import type { FcpError } from '../protocol/index.js';
import type { TransferStats } from './stats.js';

export type ListedKind = 'file' | 'symlink' | 'dir';

/** The kind an entry is reported as: what is not a directory or a link is a file. */
export function listedKind(kind: string): ListedKind {
  return kind === 'dir' || kind === 'symlink' ? kind : 'file';
}

export type TransferEvent =
  /** An entry of the list was announced (sender) or received (receiver). */
  | { readonly type: 'listed'; readonly path: string; readonly kind: ListedKind }
  /** An entry the receiver's own selection leaves out after all (a pull's --regex): it no longer counts. */
  | { readonly type: 'unlisted'; readonly path: string }
  /** The whole list has been announced or received: totals are final from here on. */
  | { readonly type: 'list-complete' }
  /**
   * The sender has its next entry (or FILE_COUNT) ready but holds it: the session is not granted yet and
   * the window before SESSION is used up (none at all for a daemon without LIST_BEFORE_SESSION). `entries`
   * were announced before it stopped. Emitted once each time it starts waiting for SESSION, in the same
   * synchronous step where it decides not to write ("waiting for the daemon").
   */
  | { readonly type: 'list-held'; readonly entries: number }
  /**
   * The receiver asked for `bytes` of this file's data (all of it, or what a resume still lacks); `held`
   * bytes of it are already verified on the receiver from an earlier run and will not cross the wire.
   */
  | { readonly type: 'needed'; readonly path: string; readonly bytes: number; readonly held: number }
  /** Identical on the receiver: nothing is sent. `size` is the file's (0 for a link or directory). */
  | { readonly type: 'skipped'; readonly path: string; readonly kind: ListedKind; readonly size: number }
  /** File data crossed the wire (received, or acknowledged as written): progress, in bytes. */
  | { readonly type: 'data'; readonly bytes: number }
  /** Written and verified at its final name; `resumedBytes` came from an earlier run's partial. */
  | {
      readonly type: 'finished';
      readonly path: string;
      readonly kind: ListedKind;
      /** The file's size; 0 for a link or directory. */
      readonly size: number;
      readonly resumedBytes: number;
    }
  /** A file left out by --limit (send-limit.ts): its data is not sent this run. */
  | { readonly type: 'not-sent'; readonly path: string; readonly size: number }
  /** This entry failed; the transfer goes on (a session-ending error ends the stream instead). */
  | { readonly type: 'failed'; readonly path: string; readonly error: FcpError }
  /** A problem worth telling that fails nothing (a file sent again, a directory that could not be read). */
  | { readonly type: 'warning'; readonly error: FcpError }
  /** A data connection was lost and the session goes on without it. */
  | { readonly type: 'connection-lost'; readonly error: FcpError; readonly connections: number };

export type TransferEventType = TransferEvent['type'];
export type TransferListener = (event: TransferEvent) => void;

/** A listener that hands every problem worth a line (a failed entry, a warning) to `report`. */
export function problemsTo(report: (err: FcpError) => void): TransferListener {
  return (event) => {
    if (event.type === 'failed' || event.type === 'warning') report(event.error);
  };
}

/** A minimal typed emitter: listeners in subscription order, each unsubscribed by the function it got. */
export class TransferEvents {
  #listeners: readonly TransferListener[] = [];

  on(listener: TransferListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  emit(event: TransferEvent): void {
    // A snapshot: a listener that unsubscribes (or subscribes) during emit changes the next event, not this.
    // Indexed: several events a file, and until V8 optimises this a for-of allocates an iterator result
    // per listener.
    const listeners = this.#listeners;
    for (let i = 0; i < listeners.length; i++) listeners[i]!(event);
  }
}

/** The figures one event changes: what TransferStats counts is exactly this. */
export function reduceStats(stats: TransferStats, event: TransferEvent): void {
  switch (event.type) {
    case 'listed':
      stats.filesTotal++;
      return;
    case 'unlisted':
      stats.filesTotal--;
      return;
    case 'list-complete':
      stats.listComplete = true;
      return;
    case 'needed':
      stats.bytesTotal += event.bytes;
      stats.bytesHeld += event.held;
      return;
    case 'skipped':
      if (event.kind === 'dir') stats.dirs++;
      else stats.filesSkipped++;
      return;
    case 'data':
      stats.bytesDone += event.bytes;
      stats.lastDataMs = performance.now();
      return;
    case 'finished':
      if (event.kind === 'dir') stats.dirs++;
      else stats.filesSent++;
      stats.bytesResumed += event.resumedBytes;
      return;
    case 'failed':
      stats.filesFailed++;
      return;
    case 'not-sent':
      stats.filesNotSent++;
      return;
    case 'list-held':
    case 'warning':
    case 'connection-lost':
      return;
  }
}
