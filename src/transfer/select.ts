/**
 * One matcher for --include, --exclude, --regex and pull-side selection. Paths are wire paths relative to
 * the transfer root as the walk names them (`push dir` names entries 'dir/a/b', `push dir/` names them 'a/b').
 *
 * Semantics:
 *  - --exclude applies to files, links and directories. An excluded directory is not sent and its subtree is
 *    not walked, so nothing under it can be included again.
 *  - --include applies to files and links (and other non-directories) only; directories are always walked
 *    unless excluded. With one or more --include, a file must match at least one of them.
 *  - --regex applies like --include: with one or more given, a file must match at least one. A regex is a
 *    JavaScript RegExp tested (unanchored, no flags) against the whole relative path.
 *  - A file is sent when it is not excluded, matches an --include (if any) and matches a --regex (if any).
 *  - A glob without '/' matches the name at any depth ('*.log', 'node_modules'). A glob with '/' matches the
 *    whole relative path ('src/*.ts', 'docs/**'). A leading '/' anchors a name to the top:
 *    '/build' matches 'build' but not 'src/build'. A trailing '/' makes the glob match directories only:
 *    'cache/' excludes directories named cache, not files. (An --include ending in '/' is a usage error, since
 *    directories are always walked.)
 *  - '*' and '?' do not cross '/', '**' does; names starting with '.' match like any other.
 *  - Glob syntax and its bounds are glob-match.ts's (no regex is built from a glob: a PULL's come from the
 *    wire). A leading '!' is refused: micromatch, used before, read it as "everything but".
 *  - An invalid pattern or regex is a usage error (FCP_ERR_USAGE).
 */

import { FcpError } from '../protocol/errors.js';
import { compilePathGlob } from './glob-match.js';
import { baseName, ROOT_ENTRY } from './wire-path.js';

export interface SelectOptions {
  include?: readonly string[];
  exclude?: readonly string[];
  regex?: readonly string[];
}

export interface Selector {
  /** Whether a file, link or other non-directory at `rel` is wanted. */
  wantsFile(rel: string): boolean;
  /** Whether the directory at `rel` is wanted (and walked). */
  wantsDir(rel: string): boolean;
}

type Test = (rel: string) => boolean;

/** The selector without patterns. */
const EVERYTHING: Selector = {
  wantsFile: () => true,
  wantsDir: () => true,
};

interface Glob {
  readonly test: Test;
  readonly dirOnly: boolean;
  /** What a test may cost per character of the path (glob-match.ts). */
  readonly size: number;
}

/**
 * The most characters all --include and --exclude patterns may expand to together: a path's tests then cost
 * at most its length times this, however many patterns a PULL carries (its 64 KiB could hold hundreds).
 */
export const MAX_SELECTION_SIZE = 16_384;

/** Compiles the patterns once into a Selector; throws FCP_ERR_USAGE for an invalid one. */
export function createSelector(opts: SelectOptions = {}): Selector {
  const includes = (opts.include ?? []).map(compileInclude);
  const excludes = (opts.exclude ?? []).map((p) => compileGlob(p, '--exclude'));
  const regexes = (opts.regex ?? []).map(compileRegex);
  checkSize([...includes, ...excludes]);

  // Nothing to match: every entry of the list passes here on both sides, so skip the empty scans.
  if (includes.length === 0 && excludes.length === 0 && regexes.length === 0) return EVERYTHING;

  const excludedFile = (rel: string) => excludes.some((g) => !g.dirOnly && g.test(rel));
  const excludedDir = (rel: string) => excludes.some((g) => g.test(rel));

  return {
    wantsFile(rel) {
      if (excludedFile(rel)) return false;
      if (includes.length > 0 && !includes.some((g) => g.test(rel))) return false;
      if (regexes.length > 0 && !regexes.some((r) => r.test(rel))) return false;
      return true;
    },
    wantsDir(rel) {
      // The transfer root is always sent; excluding it would make the whole command a no-op.
      return rel === ROOT_ENTRY || !excludedDir(rel);
    },
  };
}

function checkSize(globs: readonly Glob[]): void {
  const size = globs.reduce((sum, g) => sum + g.size, 0);
  if (size > MAX_SELECTION_SIZE) {
    throw new FcpError(
      'FCP_ERR_USAGE',
      `too many --include/--exclude patterns: they expand to ${size} characters, more than ${MAX_SELECTION_SIZE}`,
    );
  }
}

function compileInclude(pattern: string): Glob {
  const glob = compileGlob(pattern, '--include');
  if (glob.dirOnly) {
    throw new FcpError(
      'FCP_ERR_USAGE',
      `invalid --include pattern ${JSON.stringify(pattern)}: includes select files, and directories are always walked`,
    );
  }
  return glob;
}

function compileGlob(pattern: string, option: string): Glob {
  let body = pattern;
  const dirOnly = body.length > 1 && body.endsWith('/');
  if (dirOnly) body = body.slice(0, -1);
  const anchored = body.startsWith('/');
  if (anchored) body = body.slice(1);
  if (body === '' || body.includes('\0')) {
    throw new FcpError('FCP_ERR_USAGE', `invalid ${option} pattern ${JSON.stringify(pattern)}`);
  }
  if (body.startsWith('!')) {
    // micromatch read a leading '!' as "everything but"; matching it literally instead would silently turn
    // `--exclude '!*.txt'` into its opposite.
    throw new FcpError(
      'FCP_ERR_USAGE',
      `invalid ${option} pattern ${JSON.stringify(pattern)}: a leading "!" (negation) is not supported; write \\! for a name starting with "!"`,
    );
  }
  const { test, size } = compilePathGlob(body, `${option} pattern ${JSON.stringify(pattern)}`);
  // A pattern without '/' is matched against the name alone, at any depth.
  if (!anchored && !body.includes('/')) return { test: (rel) => test(baseName(rel)), dirOnly, size };
  return { test, dirOnly, size };
}

function compileRegex(source: string): RegExp {
  try {
    return new RegExp(source);
  } catch (err) {
    const why = err instanceof Error ? `: ${err.message}` : '';
    throw new FcpError('FCP_ERR_USAGE', `invalid --regex ${JSON.stringify(source)}${why}`, { cause: err });
  }
}
