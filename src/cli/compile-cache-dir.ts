/**
 * Where the code cache (compile-cache.ts) lives: `$XDG_CACHE_HOME/fcp/v8`, else `~/.cache/fcp/v8`, a
 * directory of this user's, mode 0700, below levels no other user can change (private-dir.ts), or nowhere.
 * V8 runs what a cache file holds as it finds it, so a file another user could write or replace would run
 * their code as us: the directory is refused unless it is ours and private and every level above it, up to
 * the root, is ours or root's and writable by nobody else (sticky aside). Nothing is created before the level
 * it goes in has passed that check: root with another user's HOME (`sudo -E`, a service) finds that user's
 * home is not its own and writes nothing there. Every refusal is silent: the program compiles as without one.
 */
import { lstatSync, mkdirSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { parentDirFault, privateDirFault } from '../security/private-dir.js';

/** Set to 1 (any value but 0 or empty): no code cache is read or written. */
export const NO_COMPILE_CACHE_ENV = 'FCP_NO_COMPILE_CACHE';

const DIR_MODE = 0o700;

/** Whether the environment turns the code cache off. */
export function compileCacheOff(env: NodeJS.ProcessEnv): boolean {
  const v = env[NO_COMPILE_CACHE_ENV];
  return v !== undefined && v !== '' && v !== '0';
}

/**
 * The code cache directory for user `uid`, created if missing; undefined when off, when there is no such
 * place, or when it or a level above it is not one other users are kept off.
 */
export function compileCacheDir(env: NodeJS.ProcessEnv, uid: number): string | undefined {
  if (compileCacheOff(env)) return undefined;
  const xdg = env['XDG_CACHE_HOME'];
  const base =
    xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(env['HOME'] ?? homedir(), '.cache');
  try {
    const above = realpathSync(path.dirname(base));
    if (!trustedChain(above, uid)) return undefined;
    const cache = levelBelow(above, path.basename(base), uid);
    if (cache === undefined) return undefined;
    const fcp = levelBelow(cache, 'fcp', uid);
    const dir = fcp === undefined ? undefined : levelBelow(fcp, 'v8', uid);
    return dir !== undefined && privateDirFault(lstatSync(dir), uid) === undefined ? dir : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `name` in the trusted directory `parent`, made (0700) if missing; its real path when it and every level
 * above it is trusted (`~/.cache` may be a link to elsewhere), else undefined.
 */
function levelBelow(parent: string, name: string, uid: number): string | undefined {
  const at = path.join(parent, name);
  try {
    mkdirSync(at, { mode: DIR_MODE });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
  }
  const real = realpathSync(at);
  return trustedChain(real, uid) ? real : undefined;
}

/** Whether `dir` (a real path) and every level above it is ours or root's, and only theirs to change. */
function trustedChain(dir: string, uid: number): boolean {
  // Bounded: each step is one component shorter, and the root is its own parent.
  for (let level = dir; ; level = path.dirname(level)) {
    if (parentDirFault(lstatSync(level), uid) !== undefined) return false;
    if (level === path.dirname(level)) return true;
  }
}
