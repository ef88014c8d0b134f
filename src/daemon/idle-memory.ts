/**
 * Gives a daemon's transfer memory back to the system once it has no session left.
 *
 * Why: a session leaves behind the process-wide pool of piece buffers (up to 40 MiB, kept for the next
 * session) and an old generation grown by its file lists, and an idle process never collects, so neither is
 * returned. A daemon that had served one 2 GiB pull idled at 101 MiB RSS against 53 MiB fresh, and a
 * small-file session after that peaked 40-50 MiB higher than it would have on a fresh daemon: in the bench's
 * long-lived daemon, up to 163 MiB, over the 150 MiB the project holds itself to. Dropping the pool and
 * running one full collection when the last session ends costs ~10-20 ms of an otherwise idle process, and
 * the next session allocates its pool again as it needs it.
 *
 * V8 exposes its collector to JavaScript only with --expose-gc; setting that flag at run time and taking
 * `gc` from a fresh context is the documented way to get it without a command-line flag.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { sharedPool } from '../transfer/buffer-pool.js';

let collect: (() => void) | undefined;

export function releaseIdleMemory(): void {
  sharedPool.trim();
  if (collect === undefined) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  collect();
}
