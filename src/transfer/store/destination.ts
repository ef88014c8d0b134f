/**
 * Where a receiver writes: the destination directory it is confined to and, for a single file whose
 * destination names the file itself, the name to write it under. rsync's rules (README "Paths"):
 *   - a single non-directory source and a destination that is not an existing directory and has no trailing
 *     '/': the destination is the file's new name (its directory must exist);
 *   - otherwise the destination is a directory; it is created if missing (one level: its parent must exist).
 */
import type { Stats } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { FcpError } from '../../protocol/index.js';
import { ConfinedRoot } from './confined-root.js';
import { namesContents, operandError, parseOperand, segmentsBelow } from './operand.js';
import { baseName, checkWirePath, parentOf, ROOT_ENTRY } from '../wire-path.js';

export interface Destination {
  root: ConfinedRoot;
  singleName: string | undefined;
  /** The directory this run made the destination in (absolute), when it made it: --fsync syncs it too. */
  madeIn?: string | undefined;
}

/**
 * A dry run's destination directory that does not exist yet: it would be made in `madeIn`, an existing
 * directory, whose file system answers the dry run's free-space question (a real run makes the
 * destination first and asks it there).
 */
export interface PlannedDestination {
  root: undefined;
  singleName: undefined;
  madeIn: string;
}

/**
 * What a missing destination directory gets: made (a real run), or only planned (a dry run, which writes
 * nothing: the plan functions then answer a PlannedDestination, "it would be made and hold nothing yet").
 */
type MissingDir = 'make' | 'plan';

/**
 * Turns an operand a client sent into a checked wire path relative to a confined root (`fcpd --root`):
 * absolute inside the root, or relative to it. '..' is refused outright rather than normalised away.
 */
export function servedRelative(served: ConfinedRoot, spec: string): string {
  const rest = segmentsBelow(served, parseOperand(spec));
  const rel = rest.length === 0 ? ROOT_ENTRY : rest.join('/');
  try {
    return checkWirePath(rel);
  } catch (err) {
    throw operandError(err, spec);
  }
}

/**
 * The daemon's side of a push under `--root`: every level from the root to the destination is lstat'ed,
 * a symbolic link refused.
 */
export async function resolveServedDestination(
  servedRoot: ConfinedRoot,
  spec: string,
  singleFile: boolean,
): Promise<Destination> {
  return (await servedDestination(servedRoot, spec, singleFile, 'make')) as Destination;
}

/** resolveServedDestination for a dry run: the same checks, nothing made. */
export function planServedDestination(
  servedRoot: ConfinedRoot,
  spec: string,
  singleFile: boolean,
): Promise<Destination | PlannedDestination> {
  return servedDestination(servedRoot, spec, singleFile, 'plan');
}

async function servedDestination(
  servedRoot: ConfinedRoot,
  spec: string,
  singleFile: boolean,
  missing: MissingDir,
): Promise<Destination | PlannedDestination> {
  // Nothing a previous session verified is trusted: the tree may have changed since. Each level is held
  // open as it is verified, and the destination is opened through them (confined-root.ts).
  const served = servedRoot.freshHeld();
  try {
    return await servedIn(served, spec, singleFile, missing);
  } finally {
    served.release();
  }
}

async function servedIn(
  served: ConfinedRoot,
  spec: string,
  singleFile: boolean,
  missing: MissingDir,
): Promise<Destination | PlannedDestination> {
  const rel = servedRelative(served, spec);
  const trailing = namesContents(spec);
  const st = await fatalOnError(served.inspect(rel), spec);
  if (singleFile && !trailing && rel !== ROOT_ENTRY && !st?.isDirectory()) {
    const parent = parentOf(rel);
    const pst = await fatalOnError(served.inspect(parent), spec);
    if (!pst?.isDirectory()) throw missingParent(spec);
    return { root: await fatalOnError(served.subRoot(parent), spec), singleName: baseName(rel) };
  }
  if (st === undefined) {
    const pst = rel === ROOT_ENTRY ? undefined : await fatalOnError(served.inspect(parentOf(rel)), spec);
    if (!pst?.isDirectory()) throw missingParent(spec);
    if (missing === 'plan') return planned(served.resolve(parentOf(rel)));
    await fatalOnError(served.ensureDir(rel), spec);
    return {
      // Through the level just made and held, never its path again: a link swapped in there is not followed.
      root: await fatalOnError(served.subRoot(rel), spec),
      singleName: undefined,
      madeIn: served.resolve(parentOf(rel)),
    };
  } else if (!st.isDirectory()) {
    throw new FcpError('ENOTDIR', `destination ${spec} is not a directory`, { path: spec, fatal: true });
  }
  return { root: await fatalOnError(served.subRoot(rel), spec), singleName: undefined };
}

/**
 * The daemon's side of a push when it serves its account's whole view (no `--root`): an absolute operand
 * is that path, a relative one starts at `home`, and the kernel resolves it with the account's rights,
 * following the links the client named, as scp does. Only what the transfer names below it is confined.
 */
export async function resolveAccountDestination(
  home: string,
  spec: string,
  singleFile: boolean,
): Promise<Destination> {
  const operand = parseOperand(spec);
  const abs = path.resolve(operand.absolute ? '/' : home, ...operand.segments);
  return (await kernelDestination(abs, operand.contents, singleFile, spec, 'make')) as Destination;
}

/** resolveAccountDestination for a dry run: the same checks, nothing made. */
export function planAccountDestination(
  home: string,
  spec: string,
  singleFile: boolean,
): Promise<Destination | PlannedDestination> {
  const operand = parseOperand(spec);
  const abs = path.resolve(operand.absolute ? '/' : home, ...operand.segments);
  return kernelDestination(abs, operand.contents, singleFile, spec, 'plan');
}

/** The client's side of a pull: the user's own path, which may pass through links the user made. */
export async function resolveLocalDestination(dest: string, singleFile: boolean): Promise<Destination> {
  return (await kernelDestination(
    path.resolve(dest),
    namesContents(dest),
    singleFile,
    dest,
    'make',
  )) as Destination;
}

/** resolveLocalDestination for a dry run: the same checks, nothing made. */
export function planLocalDestination(
  dest: string,
  singleFile: boolean,
): Promise<Destination | PlannedDestination> {
  return kernelDestination(path.resolve(dest), namesContents(dest), singleFile, dest, 'plan');
}

/**
 * The rsync rules on a path the kernel resolves (links followed): `abs` is the destination, `shown` what
 * the user typed, for messages. The destination found becomes a ConfinedRoot at its real path, holding the
 * levels it verifies (heldRoot).
 */
async function kernelDestination(
  abs: string,
  trailing: boolean,
  singleFile: boolean,
  shown: string,
  missing: MissingDir,
): Promise<Destination | PlannedDestination> {
  const st = await statOrMissing(abs, shown);
  if (singleFile && !trailing && !st?.isDirectory()) {
    const parent = path.dirname(abs);
    if (!(await statOrMissing(parent, shown))?.isDirectory()) throw missingParent(shown);
    return { root: await heldRoot(parent), singleName: path.basename(abs) };
  }
  if (st === undefined) {
    if (!(await statOrMissing(path.dirname(abs), shown))?.isDirectory()) throw missingParent(shown);
    if (missing === 'plan') return planned(path.dirname(abs));
    await mkdir(abs).catch((err: unknown) => {
      throw operandError(err, shown);
    });
    return { root: await heldRoot(abs), singleName: undefined, madeIn: path.dirname(abs) };
  } else if (!st.isDirectory()) {
    throw new FcpError('ENOTDIR', `destination ${shown} is not a directory`, { path: shown, fatal: true });
  }
  return { root: await heldRoot(abs), singleName: undefined };
}

/**
 * The destination as a root whose levels another local user could swap are held open as they are verified
 * or made, with every level below them, as under a daemon's --root: a local user who can write somewhere
 * in the destination (a shared team directory) and swaps a level for a link between our checks and our
 * writes only makes those writes fail; nothing is created where the link leads (spec/SECURITY.md §11).
 * A private tree (the user's home, a path of root's) is reached by path, at its cost before holding. By
 * path where nothing can be held (no /proc).
 */
async function heldRoot(dir: string): Promise<ConfinedRoot> {
  return (await ConfinedRoot.open(dir)).freshHoldingExposed();
}

function planned(madeIn: string): PlannedDestination {
  return { root: undefined, singleName: undefined, madeIn };
}

/** stat() (links followed); undefined when missing, a fatal error naming `shown` otherwise (EACCES...). */
async function statOrMissing(abs: string, shown: string): Promise<Stats | undefined> {
  try {
    return await stat(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw operandError(err, shown);
  }
}

function missingParent(spec: string): FcpError {
  return new FcpError('ENOENT', `destination directory for ${spec} does not exist`, {
    path: spec,
    fatal: true,
  });
}

async function fatalOnError<T>(p: Promise<T>, spec: string): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw operandError(err, spec);
  }
}
