/**
 * The process's file mode creation mask, for deciding when open() alone can give a new file its final
 * mode (and spare an fchmod per file). Read from /proc/self/status: process.umask() without an argument
 * reads the mask by setting it twice, and a file the thread pool creates in between would get mode 0666.
 */
import { readFileSync } from 'node:fs';

/** The umask now, or undefined where /proc does not tell it (callers then set modes explicitly). */
export function processUmask(): number | undefined {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
    return m === null ? undefined : parseInt(m[1]!, 8);
  } catch {
    return undefined;
  }
}
