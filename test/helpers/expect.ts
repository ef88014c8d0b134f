// Small assertions the path tests share: an FcpError rejection with its code, and temp directories removed
// when the test file ends.
import fs from 'node:fs';
import os from 'node:os';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/errors.js';

/** Awaits `p`, which must reject with an FcpError of `code`; returns that error for more checks. */
export async function rejection(p: Promise<unknown>, code: string): Promise<FcpError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, FcpError);
    assert.is((err as FcpError).code, code, (err as Error).message);
    return err as FcpError;
  }
  throw new Error(`expected ${code}, got success`);
}

/** Makes temp directories (their real paths) for one test file; removeAll() in its test.after. */
export function tempDirs(prefix = 'fcp-'): { make(): string; removeAll(): void } {
  const made: string[] = [];
  return {
    make() {
      const dir = fs.realpathSync(fs.mkdtempSync(`${os.tmpdir()}/${prefix}`));
      made.push(dir);
      return dir;
    },
    removeAll() {
      for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A root directory and, beside it (not inside), a directory an attacker would like us to write into. */
export function rootAndOutside(tempDir: () => string): { root: string; outside: string } {
  const base = tempDir();
  const root = `${base}/root`;
  const outside = `${base}/outside`;
  fs.mkdirSync(root);
  fs.mkdirSync(outside);
  return { root, outside };
}
