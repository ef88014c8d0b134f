/**
 * Where a receiver writes: the destination directory it is confined to and, for a single file whose
 * destination names the file itself, the name to write it under. rsync's rules (README "Paths"):
 *   - a single non-directory source and a destination that is not an existing directory and has no trailing
 *     '/': the destination is the file's new name (its directory must exist);
 *   - otherwise the destination is a directory; it is created if missing (one level: its parent must exist).
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { FcpError, toFcpError } from '../protocol/index.js';
import { ConfinedRoot } from './confined-root.js';
import { baseName, checkWirePath, parentOf, ROOT_ENTRY } from './wire-path.js';

export interface Destination {
  root: ConfinedRoot;
  singleName: string | undefined;
}

/**
 * Turns a path a client sent (absolute inside the served root, or relative to it) into a checked wire path
 * relative to the root. '..' is refused outright rather than normalised away.
 */
export function servedRelative(served: ConfinedRoot, spec: string): string {
  if (spec.includes('\0'))
    throw new FcpError('FCP_ERR_PATH_UNSAFE', 'path contains a NUL byte', { path: spec, fatal: true });
  const segments = spec.split('/');
  if (segments.includes('..')) {
    throw new FcpError('FCP_ERR_PATH_UNSAFE', 'path has a ".." segment', { path: spec, fatal: true });
  }
  let rest = segments.filter((s) => s !== '' && s !== '.');
  if (spec.startsWith('/')) {
    const inside = [served.path, served.openedAs]
      .map((root) => root.split('/').filter((s) => s !== ''))
      .find((root) => root.every((s, i) => rest[i] === s));
    if (inside === undefined) {
      throw new FcpError('FCP_ERR_PATH_OUTSIDE_ROOT', `${spec} is outside the served root`, { path: spec });
    }
    rest = rest.slice(inside.length);
  }
  const rel = rest.length === 0 ? ROOT_ENTRY : rest.join('/');
  try {
    return checkWirePath(rel);
  } catch (err) {
    throw new FcpError(toFcpError(err).code, toFcpError(err).message, { path: spec, fatal: true });
  }
}

/** The daemon's side of a push: every level is checked under the served root, symlinks refused. */
export async function resolveServedDestination(
  servedRoot: ConfinedRoot,
  spec: string,
  singleFile: boolean,
): Promise<Destination> {
  // Nothing a previous session verified is trusted: the tree may have changed since.
  const served = servedRoot.fresh();
  const rel = servedRelative(served, spec);
  const trailing = spec.endsWith('/') || spec === '' || spec.endsWith('/.');
  const st = await fatalOnError(served.inspect(rel), spec);
  if (singleFile && !trailing && rel !== ROOT_ENTRY && !st?.isDirectory()) {
    const parent = parentOf(rel);
    const pst = await fatalOnError(served.inspect(parent), spec);
    if (!pst?.isDirectory()) throw missingParent(spec);
    return { root: await ConfinedRoot.open(served.resolve(parent)), singleName: baseName(rel) };
  }
  if (st === undefined) {
    const pst = rel === ROOT_ENTRY ? undefined : await fatalOnError(served.inspect(parentOf(rel)), spec);
    if (!pst?.isDirectory()) throw missingParent(spec);
    await fatalOnError(served.ensureDir(rel), spec);
  } else if (!st.isDirectory()) {
    throw new FcpError('ENOTDIR', `destination ${spec} is not a directory`, { path: spec, fatal: true });
  }
  return { root: await ConfinedRoot.open(served.resolve(rel)), singleName: undefined };
}

/** The client's side of a pull: the user's own path, which may pass through links the user made. */
export async function resolveLocalDestination(dest: string, singleFile: boolean): Promise<Destination> {
  const abs = path.resolve(dest);
  const trailing = dest.endsWith('/') || dest.endsWith('/.') || dest === '.';
  const st = await stat(abs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw fatal(toFcpError(err, dest));
  });
  if (singleFile && !trailing && !st?.isDirectory()) {
    const parent = path.dirname(abs);
    const pst = await stat(parent).catch(() => undefined);
    if (!pst?.isDirectory()) throw missingParent(dest);
    return { root: await ConfinedRoot.open(parent), singleName: path.basename(abs) };
  }
  if (st === undefined) {
    const pst = await stat(path.dirname(abs)).catch(() => undefined);
    if (!pst?.isDirectory()) throw missingParent(dest);
    await mkdir(abs).catch((err: unknown) => {
      throw fatal(toFcpError(err, dest));
    });
  } else if (!st.isDirectory()) {
    throw new FcpError('ENOTDIR', `destination ${dest} is not a directory`, { path: dest, fatal: true });
  }
  return { root: await ConfinedRoot.open(abs), singleName: undefined };
}

function missingParent(spec: string): FcpError {
  return new FcpError('ENOENT', `destination directory for ${spec} does not exist`, {
    path: spec,
    fatal: true,
  });
}

function fatal(e: FcpError): FcpError {
  return new FcpError(e.code, e.message, { path: e.path, fatal: true, cause: e });
}

async function fatalOnError<T>(p: Promise<T>, spec: string): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw fatal(toFcpError(err, spec));
  }
}
