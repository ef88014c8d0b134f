/**
 * What a transfer starts from: the local paths a user typed for `fcp push`, and the remote spec the daemon
 * expands for `fcp pull 'host:/logs/*.gz'`. Each source becomes a SourceRoot fed to walk(abs, topRel, ...).
 *
 * Like rsync, a trailing '/' (or '/.', or a bare '.') means "the contents of this directory" (topRel '.'),
 * and without it the directory itself is sent under its own name (topRel = its basename).
 */

import type { BigIntStats } from 'node:fs';
import path from 'node:path';
import { FcpError, isFcpCode } from '../../protocol/errors.js';
import { ConfinedRoot } from './confined-root.js';
import { hasGlobSyntax } from '../glob-match.js';
import { type ExpansionOptions, GlobExpansion, normaliseGlobs } from './glob-expansion.js';
import { namesContents, type Operand, operandError, parseOperand, segmentsBelow } from './operand.js';
import { baseName, ROOT_ENTRY } from '../wire-path.js';

/** A starting point of a transfer: walk `abs`, naming it `topRel` on the wire. */
export interface SourceRoot {
  abs: string;
  topRel: string;
  /** A daemon's --root (its real path): the walk refuses a top that is no longer inside it when read. */
  within?: string;
}

export { MAX_REMOTE_MATCHES } from './glob-expansion.js';

/**
 * A local source as the user typed it. Paths may pass through symlinks (the user chose them); nothing is
 * read from disk here.
 */
export function localSourceRoot(arg: string): SourceRoot {
  if (arg === '' || arg.includes('\0')) {
    throw new FcpError('FCP_ERR_USAGE', `invalid source path ${JSON.stringify(arg)}`);
  }
  const abs = path.resolve(arg);
  const base = path.basename(abs);
  return { abs, topRel: namesContents(arg) || base === '' ? ROOT_ENTRY : base };
}

/**
 * Expands the spec of a pull inside `root`, for the daemon. `spec` is absolute (and must lie inside the root,
 * as its real path or the path it was opened as) or relative to the root.
 *
 * - '..' and NUL are refused (FCP_ERR_PATH_UNSAFE) even where they would stay inside the root.
 * - The literal part before the first glob segment is checked level by level; a symlink on the way is
 *   refused (FCP_ERR_PATH_SYMLINK), never followed.
 * - Glob segments are matched one directory level at a time like a shell (glob-match.ts compileNameGlob):
 *   '*', '?' and classes skip names starting with '.', '**' matches zero or more directory levels (not
 *   descending into dot directories), braces must not contain '/'. A name equal to the segment itself also
 *   matches, so 'a[1]' finds a file named 'a[1]'. A segment the matcher refuses (an extglob) is
 *   FCP_ERR_USAGE.
 * - Matched symlinks are returned (and sent as links), never followed or descended into.
 * - A trailing '/' means the contents of a directory (topRel '.'); on a glob it also restricts the matches
 *   to directories, whose contents then arrive merged, as with rsync.
 * - A match inside another matched directory is dropped (the directory's walk sends it).
 *
 * Results are sorted by byte order. Nothing matching is FCP_ERR_PATH_NO_MATCH; more than MAX_REMOTE_MATCHES
 * is FCP_ERR_LIMIT_EXCEEDED, and so is a pattern that takes too much work to expand (glob-expansion.ts).
 * `onWarning` hears about directories that could not be read during matching. Once `signal` is aborted
 * (the client left) the expansion stops, rejecting with its reason.
 */
export async function expandRemoteSources(
  servedRoot: ConfinedRoot,
  spec: string,
  onWarning: (err: FcpError) => void = () => {},
  signal?: AbortSignal,
): Promise<SourceRoot[]> {
  // Nothing a previous session verified is trusted: the tree may have changed since.
  const root = servedRoot.fresh();
  const operand = parseOperand(spec);
  return expandBelow(root, segmentsBelow(root, operand), operand, { onWarning, signal });
}

/**
 * Expands the spec of a pull for a daemon that serves its account's whole view (no `--root`). The literal
 * part the client named is resolved by the kernel with the account's rights, links followed as scp does: an
 * absolute spec is that path, a relative one starts at `home`. Below that base everything is matched as in
 * expandRemoteSources, never following a link: the glob segments, or, for a literal spec naming a file, a
 * link or a directory itself, its last name (a link is then sent as a link).
 */
export async function expandAccountSources(
  home: string,
  spec: string,
  onWarning: (err: FcpError) => void = () => {},
  signal?: AbortSignal,
): Promise<SourceRoot[]> {
  const operand = parseOperand(spec);
  const { segments } = operand;
  const firstGlob = segments.findIndex(hasGlobSyntax);
  let split = firstGlob;
  if (split === -1) split = operand.contents ? segments.length : Math.max(segments.length - 1, 0);
  const base = path.resolve(operand.absolute ? '/' : home, ...segments.slice(0, split));
  return expandBelow(await openBase(base, spec), segments.slice(split), operand, { onWarning, signal });
}

/** The base directory of an account's pull, opened through the links on its way, or FCP_ERR_PATH_NO_MATCH. */
async function openBase(base: string, spec: string): Promise<ConfinedRoot> {
  try {
    return await ConfinedRoot.open(base);
  } catch (err) {
    const code = (err as FcpError).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw noMatch(spec);
    throw operandError(err, spec);
  }
}

/** Expands `rel` (an operand's segments below `root`) into sources, as expandRemoteSources describes. */
async function expandBelow(
  root: ConfinedRoot,
  rel: readonly string[],
  operand: Operand,
  how: Pick<ExpansionOptions, 'onWarning' | 'signal'>,
): Promise<SourceRoot[]> {
  const { spec, segments, contents } = operand;
  const firstGlob = rel.findIndex(hasGlobSyntax);
  const literal = firstGlob === -1 ? rel : rel.slice(0, firstGlob);
  const globs = firstGlob === -1 ? [] : normaliseGlobs(rel.slice(firstGlob));
  const baseRel = literal.length === 0 ? ROOT_ENTRY : literal.join('/');
  const base = await inspectBase(root, baseRel, spec);

  if (globs.length === 0) {
    if (!contents) {
      // The root itself, named by its absolute path: send it under the name the user typed.
      const topRel =
        baseRel === ROOT_ENTRY ? (segments[segments.length - 1] ?? ROOT_ENTRY) : baseName(baseRel);
      return [{ abs: root.resolve(baseRel), topRel }];
    }
    checkDirLevel(base, baseRel, spec, root);
    return [{ abs: root.resolve(baseRel), topRel: ROOT_ENTRY }];
  }

  checkDirLevel(base, baseRel, spec, root);
  const rels = await new GlobExpansion(root, globs, { ...how, spec, dirsOnly: contents }).from(baseRel);
  if (rels.length === 0) throw noMatch(spec);
  return rels.map((r) => ({ abs: root.resolve(r), topRel: contents ? ROOT_ENTRY : baseName(r) }));
}

async function inspectBase(root: ConfinedRoot, baseRel: string, spec: string): Promise<BigIntStats> {
  let st: BigIntStats | undefined;
  try {
    st = await root.inspect(baseRel);
  } catch (err) {
    // A file where the spec needs a directory: nothing can match below it.
    if (err instanceof FcpError && err.code === 'FCP_ERR_PATH_TYPE') throw noMatch(spec);
    // A refused link names its level and the root already; an errno (EACCES) names nothing yet.
    if (err instanceof FcpError && isFcpCode(err.code)) throw err;
    throw operandError(err, spec);
  }
  if (st === undefined) throw noMatch(spec);
  return st;
}

/** The base of a glob, or a literal spec with a trailing '/', must be a real directory. */
function checkDirLevel(st: BigIntStats, rel: string, spec: string, root: ConfinedRoot): void {
  if (st.isSymbolicLink()) {
    throw new FcpError(
      'FCP_ERR_PATH_SYMLINK',
      `refusing to pass through a symbolic link: ${rel} (confined to ${root.path})`,
      { path: rel },
    );
  }
  if (!st.isDirectory()) throw noMatch(spec, 'not a directory');
}

function noMatch(spec: string, why?: string): FcpError {
  const detail = why === undefined ? '' : ` (${why})`;
  return new FcpError('FCP_ERR_PATH_NO_MATCH', `no match for ${spec}${detail}`, { path: spec });
}
