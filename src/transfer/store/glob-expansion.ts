/**
 * The glob half of a pull's source spec (source-spec.ts): finds what the glob segments match below a base
 * directory. The client chooses the pattern, so its cost is bounded by the tree, not by the pattern
 * (spec/SECURITY.md §10):
 *
 * - The segments run as a set of positions over one walk of the tree (an NFA): each directory the
 *   pattern can reach is read once, whatever number of '**' branches reach it, and each of its names is
 *   tried against each position still alive there. Before, each (segment, directory) pair read and
 *   lstat'ed the directory again: `(**\/*\/)x80nomatch` cost ~160 s of CPU over 1,661 directories.
 * - A work budget: EXPANSION_BASE_STEPS plus EXPANSION_STEPS_PER_ENTRY for each name read. A pattern of
 *   at most 32 glob segments never meets it; an expansion that does is FCP_ERR_LIMIT_EXCEEDED naming it.
 * - The caller's AbortSignal (the requesting connection closed) stops it between two directories, and a
 *   long expansion lets the event loop run every YIELD_EVERY_STEPS steps.
 */

import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { FcpError, toFcpError } from '../../protocol/errors.js';
import { compileNameGlob } from '../glob-match.js';
import { compareUtf8, joinWirePath, parentOf, ROOT_ENTRY } from '../wire-path.js';
import type { ConfinedRoot } from './confined-root.js';
import { operandError } from './operand.js';

/** Upper bound on the sources one remote spec may expand to; each is held in memory until it is walked. */
export const MAX_REMOTE_MATCHES = 100_000;
/** Steps any expansion may take, whatever it read (a small tree with a long pattern). */
export const EXPANSION_BASE_STEPS = 65_536;
/** Steps allowed per name read: a name costs one per live pattern position, at most one per segment. */
export const EXPANSION_STEPS_PER_ENTRY = 32;
/** How often a long expansion lets other sessions run (each directory read already waits on I/O). */
const YIELD_EVERY_STEPS = 16_384;

const GLOBSTAR = '**';
const STAR = '*';

/** What an expansion needs besides the tree and the segments. */
export interface ExpansionOptions {
  /** The spec as the client sent it, for errors. */
  readonly spec: string;
  /** A trailing '/': only directories match. */
  readonly dirsOnly: boolean;
  /** Directories that could not be read and names that cannot cross the wire, below the base. */
  readonly onWarning: (err: FcpError) => void;
  /** Aborted when nobody waits for the answer any more; the expansion rejects with its reason. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Glob segments in a form that matches the same paths with less work: '**' repeated is one '**'; a run of
 * '*' and '**' segments becomes its '*'s then one '**' ('**\/*\/**' is "one or more directories", as is
 * '*\/**'), so each '*' is tried only at its own depth; at the end, where a match inside a matched
 * directory is dropped, a run with k '*'s (a trailing '**' counting as one) matches what k '*'s do.
 */
export function normaliseGlobs(globs: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < globs.length;) {
    if (!isStarSegment(globs[i]!)) {
      out.push(globs[i++]!);
      continue;
    }
    let stars = 0;
    let globstar = false;
    for (; i < globs.length && isStarSegment(globs[i]!); i++) {
      if (globs[i] === STAR) stars++;
      else globstar = true;
    }
    const trailing = i === globs.length;
    // A trailing '**' alone matches what '*' does once nested matches are dropped.
    if (trailing && globstar && globs[i - 1] === GLOBSTAR) stars++;
    for (let s = 0; s < stars; s++) out.push(STAR);
    if (globstar && !trailing) out.push(GLOBSTAR);
  }
  return out;
}

function isStarSegment(segment: string): boolean {
  return segment === STAR || segment === GLOBSTAR;
}

/** One run of glob matching (see the file's comment). */
export class GlobExpansion {
  readonly #root: ConfinedRoot;
  readonly #globs: readonly string[];
  readonly #matchers: readonly ((name: string) => boolean)[];
  readonly #opts: ExpansionOptions;
  /** rel -> whether it is a real directory. */
  readonly #matches = new Map<string, boolean>();
  #steps = 0;
  #allowed = EXPANSION_BASE_STEPS;
  #nextYield = YIELD_EVERY_STEPS;
  /** The directory the spec named, which must be readable (see from()). */
  #base = ROOT_ENTRY;
  /** Directories read so far, for the error that stops an expansion. */
  #dirsRead = 0;

  /** `globs` must be normalised (normaliseGlobs): no '**' at the end nor twice in a row. */
  constructor(root: ConfinedRoot, globs: readonly string[], opts: ExpansionOptions) {
    this.#root = root;
    this.#globs = globs;
    this.#matchers = globs.map(compileSegment);
    this.#opts = opts;
  }

  /**
   * The matches below `baseRel`, sorted, without those inside a matched directory. An unreadable directory
   * below it is a warning, but the one the user named failing is the answer itself.
   */
  async from(baseRel: string): Promise<string[]> {
    this.#base = baseRel;
    await this.#visit(baseRel, this.#closed([0]));
    const sorted = [...this.#matches.keys()].sort(compareUtf8);
    return sorted.filter((rel) => !this.#insideMatchedDir(rel));
  }

  /** Reads `dirRel` once and tries each name at each live position; descends where one survives. */
  async #visit(dirRel: string, positions: readonly number[]): Promise<void> {
    this.#checkAborted();
    const entries = await this.#list(dirRel);
    this.#dirsRead++;
    this.#allowed += EXPANSION_STEPS_PER_ENTRY * (entries.length + 1);
    for (const entry of entries) {
      const rel = joinWirePath(dirRel, entry.name);
      const next = this.#step(positions, entry.name, entry.isDir, rel);
      if (this.#account(positions.length)) await this.#yield();
      if (next.length > 0) await this.#visit(rel, next);
    }
  }

  /** The positions alive below `name` (a directory) from `positions`; records it where a match ends. */
  #step(positions: readonly number[], name: string, isDir: boolean, rel: string): number[] {
    const next: number[] = [];
    const last = this.#globs.length - 1;
    for (const i of positions) {
      if (this.#globs[i] === GLOBSTAR) {
        // One more level, through real, non-dot directories only (as a shell's globstar).
        if (isDir && !name.startsWith('.')) next.push(i);
      } else if (this.#matchers[i]!(name)) {
        if (i < last) {
          if (isDir) next.push(i + 1);
        } else if (isDir || !this.#opts.dirsOnly) {
          this.#add(rel, isDir);
        }
      }
    }
    return this.#closed(next);
  }

  /**
   * `positions` (ascending, maybe repeated) once each, plus after each '**' the one after it: '**' matches
   * zero levels too. Kept ascending, so a position is never live twice.
   */
  #closed(positions: readonly number[]): number[] {
    const out: number[] = [];
    const push = (i: number) => {
      if (out.length === 0 || i > out[out.length - 1]!) out.push(i);
    };
    for (const i of positions) {
      push(i);
      if (this.#globs[i] === GLOBSTAR) push(i + 1);
    }
    return out;
  }

  /** Counts `steps` against the budget; true when it is time to let the event loop run. */
  #account(steps: number): boolean {
    this.#steps += steps;
    if (this.#steps > this.#allowed) throw this.#overBudget();
    if (this.#steps < this.#nextYield) return false;
    this.#nextYield = this.#steps + YIELD_EVERY_STEPS;
    return true;
  }

  async #yield(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.#checkAborted();
  }

  #overBudget(): FcpError {
    const { spec } = this.#opts;
    return new FcpError(
      'FCP_ERR_LIMIT_EXCEEDED',
      `pattern ${JSON.stringify(spec)} takes too much work to expand (more than ${EXPANSION_STEPS_PER_ENTRY} ` +
        `steps per name read, after ${this.#dirsRead} directories): use fewer '**' segments`,
      { path: spec },
    );
  }

  /** The signal's reason, saying how far the expansion got (the daemon's log shows it stopped early). */
  #checkAborted(): void {
    const { signal, spec } = this.#opts;
    if (!signal?.aborted) return;
    const why = toFcpError(signal.reason, spec);
    const message = `${why.message} (after reading ${this.#dirsRead} directories)`;
    throw new FcpError(why.code, message, { path: spec, cause: why });
  }

  #insideMatchedDir(rel: string): boolean {
    for (let dir = parentOf(rel); dir !== ROOT_ENTRY; dir = parentOf(dir)) {
      if (this.#matches.get(dir) === true) return true;
    }
    return false;
  }

  #add(rel: string, isDir: boolean): void {
    this.#matches.set(rel, isDir);
    if (this.#matches.size > MAX_REMOTE_MATCHES) {
      throw new FcpError('FCP_ERR_LIMIT_EXCEEDED', `more than ${MAX_REMOTE_MATCHES} matches`, { path: rel });
    }
  }

  /**
   * Names in a directory that can cross the wire (valid UTF-8), in byte order, and whether each is a real
   * directory (the type readdir gives, lstat's where the file system gives none: never a link's target).
   */
  async #list(dirRel: string): Promise<{ name: string; isDir: boolean }[]> {
    let raw: Dirent[];
    try {
      // Typed loosely by @types/node for the buffer encoding; the names are Buffers.
      raw = (await readdir(this.#root.resolve(dirRel), {
        encoding: 'buffer',
        withFileTypes: true,
      })) as unknown as Dirent[];
    } catch (err) {
      if (dirRel === this.#base) throw operandError(err, this.#opts.spec);
      this.#opts.onWarning(toFcpError(err, dirRel));
      return [];
    }
    const named = raw.map((d) => ({ bytes: d.name as unknown as Buffer, isDir: d.isDirectory() }));
    const entries: { name: string; isDir: boolean }[] = [];
    for (const { bytes, isDir } of named.sort((a, b) => Buffer.compare(a.bytes, b.bytes))) {
      const name = bytes.toString('utf8');
      if (Buffer.from(name, 'utf8').equals(bytes)) {
        entries.push({ name, isDir });
      } else {
        const rel = joinWirePath(dirRel, name);
        this.#opts.onWarning(
          new FcpError('FCP_ERR_PATH_ENCODING', `file name is not valid UTF-8: ${rel}`, { path: rel }),
        );
      }
    }
    return entries;
  }
}

/** A matcher for one glob segment; a name equal to the segment as typed matches too (compileNameGlob). */
function compileSegment(segment: string): (name: string) => boolean {
  return compileNameGlob(segment, `pattern ${JSON.stringify(segment)}`).test;
}
