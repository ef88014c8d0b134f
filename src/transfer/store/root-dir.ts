/**
 * A served root's first check, which a daemon makes before it says it is ready (fcpd --serve-once before its
 * bootstrap line): the path resolves, through the symlinks the operator chose, to a directory. Kept apart
 * from confined-root.ts so that the one-session daemon's launcher can make it without loading the store.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { FcpError, toFcpError } from '../../protocol/errors.js';

/** The real path of the directory `dir` names; one fatal FcpError naming `dir` when it is none. */
export async function resolveRootDir(dir: string): Promise<string> {
  try {
    const real = await realpath(path.resolve(dir));
    const st = await stat(real);
    if (!st.isDirectory()) {
      throw new FcpError('ENOTDIR', `root is not a directory: ${dir}`, { path: dir, fatal: true });
    }
    return real;
  } catch (err) {
    if (err instanceof FcpError) throw err;
    const wrapped = toFcpError(err, dir);
    throw new FcpError(wrapped.code, `${dir}: ${wrapped.message}`, { path: dir, cause: err, fatal: true });
  }
}
