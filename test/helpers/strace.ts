/**
 * The real fsync and rename calls of a process, as strace saw them (fcp --fsync, spec/PROTOCOL.md §6.3):
 * `straced(log)` is a RunOptions.wrap that runs node under strace, following every thread (the syncs run on
 * libuv's pool) and naming each descriptor's path (-y); `readTrace(log)` parses what it wrote.
 *
 * A receiver that holds its directories open renames through them, as `/proc/PID/fd/N/name`: the opens are
 * traced too, so that readTrace can name such a path by the directory the descriptor was opened on (-y
 * prints it beside the descriptor an open returns).
 */
import { execFileSync } from './sync.js';
import { readFileSync } from 'node:fs';

const SYSCALLS = 'fsync,fdatasync,rename,renameat,renameat2,openat';

/**
 * strace and its options, writing to `log`; `inject`: strace -e inject=... (a real syscall made to fail),
 * and with `onlyPath` only the calls on that path are traced, so only they fail (strace -P).
 */
export function straced(log: string, inject?: string, onlyPath?: string): string[] {
  return [
    'strace',
    '-f',
    '-y',
    '-qq',
    '-o',
    log,
    '-e',
    `trace=${SYSCALLS}`,
    ...(inject === undefined ? [] : ['-e', `inject=${inject}`]),
    ...(onlyPath === undefined ? [] : ['-P', onlyPath]),
  ];
}

/** Throws a clear error when strace is missing (.ci/run installs it). */
export function requireStrace(): void {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new Error('these tests need strace (apt-get install strace; .ci/run installs it)');
  }
}

/** One call: `at` is its line in the log, where a sync finished (its result) or a rename started. */
export interface SyncCall {
  kind: 'sync';
  at: number;
  /** The descriptor's path (-y). */
  path: string;
  ok: boolean;
}

export interface RenameCall {
  kind: 'rename';
  at: number;
  from: string;
  to: string;
}

export type TracedCall = SyncCall | RenameCall;

const SYNC_START = /^(\d+) +f(?:data)?sync\(\d+<([^>]*)>\)?(?: +<unfinished \.\.\.>|\s*= (-?\d+))/;
const SYNC_RESUMED = /^(\d+) +<\.\.\. f(?:data)?sync resumed>\)\s*= (-?\d+)/;
const RENAME = /^(\d+) +rename(?:at2?)?\((?:[^"]*)"([^"]*)", (?:[^"]*)"([^"]*)"/;
/** An open (or its resumed half) that returned a descriptor, with the path -y names it by. */
const OPENED = /^\d+ +(?:openat\(|<\.\.\. openat resumed>).*= (\d+)<([^>]*)>\s*$/;
const THROUGH_FD = /^\/proc\/(?:self|\d+)\/fd\/(\d+)\/(.*)$/;

/** The calls in `log`, in the order strace wrote them (each line starts with the thread id, padded). */
export function readTrace(log: string): TracedCall[] {
  const calls: TracedCall[] = [];
  // A sync whose thread was switched away: finished on its "resumed" line, in the same thread.
  const unfinished = new Map<string, string>();
  // What each descriptor number was last opened on (the traced process's threads share one table).
  const opened = new Map<string, string>();
  const named = (path: string): string => {
    const through = THROUGH_FD.exec(path);
    const dir = through === null ? undefined : opened.get(through[1]!);
    return dir === undefined ? path : `${dir}/${through![2]!}`;
  };
  const lines = readFileSync(log, 'utf8').split('\n');
  lines.forEach((line, at) => {
    const open = OPENED.exec(line);
    if (open !== null) {
      opened.set(open[1]!, open[2]!);
      return;
    }
    const rename = RENAME.exec(line);
    if (rename !== null) {
      calls.push({ kind: 'rename', at, from: named(rename[2]!), to: named(rename[3]!) });
      return;
    }
    const start = SYNC_START.exec(line);
    if (start !== null) {
      if (start[3] === undefined) unfinished.set(start[1]!, start[2]!);
      else calls.push({ kind: 'sync', at, path: start[2]!, ok: start[3] === '0' });
      return;
    }
    const resumed = SYNC_RESUMED.exec(line);
    const path = resumed === null ? undefined : unfinished.get(resumed[1]!);
    if (resumed === null || path === undefined) return;
    unfinished.delete(resumed[1]!);
    calls.push({ kind: 'sync', at, path, ok: resumed[2] === '0' });
  });
  return calls;
}

/** The successful syncs of `path`. */
export function syncsOf(calls: readonly TracedCall[], path: string): SyncCall[] {
  return calls.filter((c): c is SyncCall => c.kind === 'sync' && c.ok && c.path === path);
}

export function renamesOf(calls: readonly TracedCall[]): RenameCall[] {
  return calls.filter((c): c is RenameCall => c.kind === 'rename');
}
