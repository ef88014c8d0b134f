/**
 * The remote operand a client names for fcpd: a push's destination or a pull's source spec. It is checked
 * here the same way whatever the daemon serves (served-tree.ts decides where it is resolved); what the
 * transfer then names below it is a wire path (wire-path.ts), checked far more strictly.
 */

import { FcpError, toFcpError } from '../../protocol/errors.js';
import type { ConfinedRoot } from './confined-root.js';

/** A remote operand after its checks. */
export interface Operand {
  /** As the client typed it, for messages. */
  readonly spec: string;
  readonly absolute: boolean;
  /** Its names, without empty and '.' segments. */
  readonly segments: readonly string[];
  /** It names a directory's contents, not the directory itself (rsync's trailing '/', '/.', '.', ''). */
  readonly contents: boolean;
}

/**
 * Checks a remote operand: NUL and '..' are refused outright (fatal FCP_ERR_PATH_UNSAFE), never normalised
 * away: a path the user typed with '..' means something else to the kernel than to a lexical normaliser
 * once a symlink is on the way, and an absolute path says the same without the doubt.
 */
export function parseOperand(spec: string): Operand {
  if (spec.includes('\0')) {
    throw new FcpError('FCP_ERR_PATH_UNSAFE', 'unsafe path: contains a NUL byte', {
      path: spec,
      fatal: true,
    });
  }
  const typed = spec.split('/');
  if (typed.includes('..')) {
    throw new FcpError('FCP_ERR_PATH_UNSAFE', 'unsafe path: ".." segment', { path: spec, fatal: true });
  }
  return {
    spec,
    absolute: spec.startsWith('/'),
    segments: typed.filter((s) => s !== '' && s !== '.'),
    contents: namesContents(spec),
  };
}

/** Like rsync, a trailing '/' (or '/.', or a bare '.') means "the contents of this directory". */
export function namesContents(spec: string): boolean {
  return spec === '' || spec === '.' || spec.endsWith('/') || spec.endsWith('/.');
}

/**
 * The segments of an operand below a confined root (`fcpd --root`): a relative operand is relative to it,
 * an absolute one must lie inside it, as the root's real path or the path it was opened as, else
 * FCP_ERR_PATH_OUTSIDE_ROOT naming the root.
 */
export function segmentsBelow(root: ConfinedRoot, operand: Operand): readonly string[] {
  if (!operand.absolute) return operand.segments;
  for (const candidate of new Set([root.path, root.openedAs])) {
    const rootSegments = candidate.split('/').filter((s) => s !== '');
    if (rootSegments.every((s, i) => operand.segments[i] === s))
      return operand.segments.slice(rootSegments.length);
  }
  throw new FcpError(
    'FCP_ERR_PATH_OUTSIDE_ROOT',
    `${operand.spec} is outside the served root ${root.openedAs}`,
    { path: operand.spec, fatal: true },
  );
}

/**
 * `err` as a fatal error about the operand `shown`, whose message names it: an ABORT carries only its text
 * to the client, and "permission denied" alone does not say where.
 */
export function operandError(err: unknown, shown: string): FcpError {
  const e = toFcpError(err, shown);
  const message = e.message.includes(shown) ? e.message : `${shown}: ${e.message}`;
  return new FcpError(e.code, message, { path: shown, fatal: true, cause: err });
}
