/**
 * Small file-system helpers of the POSIX sink: the times futimes() takes and stores, and unlink that
 * accepts a file already gone.
 */
import { unlinkSync } from 'node:fs';
import { unlink } from 'node:fs/promises';

/**
 * The time futimes() stores for `sec` (libuv truncates to whole microseconds; Node turns a negative time
 * into now): what a directory's mtime is after its metadata was applied. Undefined when not predictable.
 */
export function storedTimeNs(sec: number | string): bigint | undefined {
  if (typeof sec !== 'number' || !(sec >= 0) || !Number.isSafeInteger(Math.trunc(sec))) return undefined;
  const whole = Math.trunc(sec);
  const nanos = Math.trunc((sec - whole) * 1e9);
  return BigInt(whole) * 1_000_000_000n + BigInt(nanos - (nanos % 1000));
}

/**
 * utimes() takes float seconds, which near 2026 resolve only ~240 ns, and libuv truncates them to whole
 * microseconds: aim at the middle of the microsecond so truncation lands on it, not the one before.
 * Before 1970 libuv truncates towards zero, so the aim is half a microsecond below; and Node takes a negative
 * number for "now", but a numeric string as it is (documented for fs.utimes), so those go as a string.
 */
export function nsToSeconds(ns: bigint): number | string {
  const micros = ns / 1000n;
  const sec = micros / 1_000_000n;
  const part = Number(micros - sec * 1_000_000n);
  if (ns < 0n) return String(Number(sec) + (part - 0.5) / 1e6);
  return Number(sec) + (part + 0.5) / 1e6;
}

export function unlinkQuietSync(abs: string): void {
  try {
    unlinkSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export async function unlinkQuiet(abs: string): Promise<void> {
  try {
    await unlink(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
