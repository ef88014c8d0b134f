/**
 * A tmpfs for bench destinations (this machine's disk is slow and erratic for write- and metadata-heavy
 * work, so destinations go to memory and the figures measure the tools). Falls back to a plain directory,
 * and says so, when the mount is refused (not root, no CAP_SYS_ADMIN).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onCleanup } from './proc.js';

export interface Destination {
  /** The mount point (or the fallback directory). */
  dir: string;
  /** One line for the report: where destinations live and why. */
  note: string;
  tmpfs: boolean;
}

export interface TmpfsOptions {
  sizeBytes: number;
  /** nr_inodes; the kernel's default (half the RAM pages) is used when omitted. */
  inodes?: number;
}

/** Mounts a tmpfs under a fresh temp directory; the mount and the directory go with the cleanups. */
export function mountTmpfs(opts: TmpfsOptions): Destination {
  const base = mkdtempSync(path.join(os.tmpdir(), 'fcp-bench-'));
  const dir = path.join(base, 'mnt');
  mkdirSync(dir);
  onCleanup(() => rmSync(base, { recursive: true, force: true }));
  const size = `${Math.ceil(opts.sizeBytes / 1024 ** 2)}m`;
  const options = [`size=${size}`, 'mode=0755'];
  if (opts.inodes !== undefined) options.push(`nr_inodes=${Math.ceil(opts.inodes)}`);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options.join(','), 'fcp-bench', dir], {
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    const why = (r.stderr ?? '').trim() || `exit ${r.status}`;
    return { dir, tmpfs: false, note: `destination on disk at ${dir}: tmpfs mount failed (${why})` };
  }
  // Unmounted before the directory above is removed (cleanups run in reverse order).
  onCleanup(() => {
    spawnSync('umount', [dir]);
  });
  return {
    dir,
    tmpfs: true,
    note: `destination on a tmpfs the bench mounted (mount -t tmpfs -o ${options.join(',')}) at ${dir}`,
  };
}

/** Pre-faulting writes this much at a time. */
const PREFAULT_CHUNK = 8 * 1024 * 1024;

/**
 * Writes `bytes` of zeros into `dir` and deletes them, so the tool timed next finds that much memory
 * recently freed. On this VM (free page reporting to the host), pages that stayed free for a few seconds
 * cost 1-4 s of kernel time per 2 GiB to fault in again, whoever writes them: without this the tool that
 * runs first in a scenario, fcp, paid it more often than the others.
 */
export function prefault(dir: string, bytes: number): void {
  const file = path.join(dir, '.prefault');
  const zeros = Buffer.alloc(Math.min(PREFAULT_CHUNK, Math.max(1, bytes)));
  const fd = openSync(file, 'w');
  try {
    for (let left = bytes; left > 0; left -= zeros.length)
      writeSync(fd, zeros, 0, Math.min(left, zeros.length));
  } finally {
    closeSync(fd);
    unlinkSync(file);
  }
}
