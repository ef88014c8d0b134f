/**
 * A directory's mode and times set through a descriptor held on it (STYLE.md rule 9), skipped when they
 * are already what the write would store (spec/PROTOCOL.md §6.2).
 */
import { type BigIntStats, fchmodSync, futimesSync } from 'node:fs';

/** Whether a directory already has exactly this mode and the mtime futimes() would store. */
export function unchanged(st: BigIntStats, mode: number, storedNs: bigint | undefined): boolean {
  return storedNs !== undefined && Number(st.mode & 0o7777n) === mode && st.mtimeNs === storedNs;
}

/** fchmod and futimes on a directory's descriptor, unless `st` (when known) says that would change nothing. */
export function applyDirMeta(
  fd: number,
  st: BigIntStats | undefined,
  mode: number,
  timeSec: number | string,
  storedNs: bigint | undefined,
): boolean {
  if (st !== undefined && unchanged(st, mode, storedNs)) return false;
  fchmodSync(fd, mode);
  futimesSync(fd, timeSec, timeSec);
  return true;
}
