/**
 * What fcpd serves to the operand a client names (a push's destination, a pull's source spec): either one
 * directory every path is confined to (`--root DIR`), or, by default, whatever its account may open, as
 * sshd and sftp serve it. spec/SECURITY.md §11 states the rule both follow:
 *
 *   - the operand: checked by operand.ts (no NUL, no '..'), then resolved under --root level by level with
 *     every symbolic link refused, or, serving the account, by the kernel with the account's rights (links
 *     the client named are followed, as `scp file host:/path` does; relative paths start at its home);
 *   - everything below it that the peer's wire paths name: confined under the operand's real path by
 *     ConfinedRoot (no '..', no absolute path, every level lstat'ed, links refused, O_NOFOLLOW), both ways.
 */

import path from 'node:path';
import type { FcpError } from '../../protocol/errors.js';
import { ConfinedRoot } from './confined-root.js';
import {
  type Destination,
  type PlannedDestination,
  planAccountDestination,
  planServedDestination,
  resolveAccountDestination,
  resolveServedDestination,
} from './destination.js';
import { expandAccountSources, expandRemoteSources, type SourceRoot } from './source-spec.js';

/** The operands a daemon resolves, one contract for both ways of serving. */
export interface ServedTree {
  /** What is served, as the daemon's start-up line names it. */
  readonly description: string;
  /** Where a push to `spec` writes (README "Paths, like rsync"). */
  destination(spec: string, singleFile: boolean): Promise<Destination>;
  /** destination() for a dry run: nothing made; a PlannedDestination when the directory would be. */
  plannedDestination(spec: string, singleFile: boolean): Promise<Destination | PlannedDestination>;
  /** What a pull of `spec` sends (source-spec.ts); stops, rejecting, once `signal` is aborted. */
  sources(spec: string, onWarning: (err: FcpError) => void, signal?: AbortSignal): Promise<SourceRoot[]>;
}

/** `--root DIR`: every operand lies inside DIR, reached without passing through a symbolic link. */
class ConfinedTree implements ServedTree {
  readonly #root: ConfinedRoot;
  readonly description: string;

  constructor(root: ConfinedRoot) {
    this.#root = root;
    this.description = root.path;
  }

  destination(spec: string, singleFile: boolean): Promise<Destination> {
    return resolveServedDestination(this.#root, spec, singleFile);
  }

  plannedDestination(spec: string, singleFile: boolean): Promise<Destination | PlannedDestination> {
    return planServedDestination(this.#root, spec, singleFile);
  }

  async sources(
    spec: string,
    onWarning: (err: FcpError) => void,
    signal?: AbortSignal,
  ): Promise<SourceRoot[]> {
    // The walk checks each top is still inside the root when it reads it (a local user may swap a level).
    const within = this.#root.path;
    return (await expandRemoteSources(this.#root, spec, onWarning, signal)).map((s) => ({ ...s, within }));
  }
}

/** The default: what the account may open; absolute operands are absolute, relative ones start at home. */
class AccountTree implements ServedTree {
  readonly #home: string;
  readonly description: string;

  constructor(home: string) {
    this.#home = home;
    this.description = `/ (relative paths from ${home})`;
  }

  destination(spec: string, singleFile: boolean): Promise<Destination> {
    return resolveAccountDestination(this.#home, spec, singleFile);
  }

  plannedDestination(spec: string, singleFile: boolean): Promise<Destination | PlannedDestination> {
    return planAccountDestination(this.#home, spec, singleFile);
  }

  sources(spec: string, onWarning: (err: FcpError) => void, signal?: AbortSignal): Promise<SourceRoot[]> {
    return expandAccountSources(this.#home, spec, onWarning, signal);
  }
}

/** How a daemon is told what to serve: `root` confines to that directory, else `home` starts relative paths. */
export type ServedTreeOptions = { root: string } | { home: string };

/**
 * Opens what a daemon serves. A --root directory must exist (and is resolved through links once, as the
 * operator chose it); a home need not: sshd too lets an account without one in, and absolute paths work.
 */
export async function openServedTree(opts: ServedTreeOptions): Promise<ServedTree> {
  if ('root' in opts) return new ConfinedTree(await ConfinedRoot.open(opts.root));
  return new AccountTree(path.resolve(opts.home));
}
