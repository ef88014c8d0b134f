/**
 * Paths as they cross the wire: relative to the transfer root, '/'-separated, UTF-8, and hostile until
 * `checkWirePath` has passed them. See STYLE.md rule 7 and spec/security.md.
 */

import { FcpError } from '../protocol/errors.js';

/** The transfer root itself, e.g. `push dir/` sends dir's contents plus "." for dir's own mode and mtime. */
export const ROOT_ENTRY = '.';

/** Linux PATH_MAX less the terminating NUL. */
export const MAX_PATH_BYTES = 4095;
/** Linux NAME_MAX. */
export const MAX_NAME_BYTES = 255;

// A lone UTF-16 surrogate cannot come out of a UTF-8 decode, and would be written to disk as U+FFFD, so two
// different wire names could land on one file. With the u flag a well-formed pair is one code point and
// does not match.
const LONE_SURROGATE = /\p{Cs}/u;

declare const checked: unique symbol;

/**
 * A wire path that checkWirePath has passed, or a name derived from one by a join that keeps every rule
 * (parentOf, a safe sibling name): it can be resolved under a root without being checked again. Only this
 * module and confined-root.ts make one.
 */
export type SafePath = string & { readonly [checked]: true };

/** Returns `p` if it is a safe relative wire path, else throws FCP_ERR_PATH_UNSAFE naming the reason. */
export function checkWirePath(p: string): SafePath {
  if (p === ROOT_ENTRY) return p as SafePath;
  const reason = unsafeReason(p);
  if (reason !== undefined) throw new FcpError('FCP_ERR_PATH_UNSAFE', `unsafe path: ${reason}`, { path: p });
  return p as SafePath;
}

function unsafeReason(p: string): string | undefined {
  if (p.length === 0) return 'empty';
  if (p.includes('\0')) return 'contains a NUL byte';
  if (p.startsWith('/')) return 'absolute';
  if (p.endsWith('/')) return 'trailing slash';
  if (LONE_SURROGATE.test(p)) return 'not valid unicode';
  if (Buffer.byteLength(p, 'utf8') > MAX_PATH_BYTES) return `longer than ${MAX_PATH_BYTES} bytes`;
  // Segment by segment without split(): every path of every list entry passes here, on both ends.
  for (let start = 0; start <= p.length;) {
    let end = p.indexOf('/', start);
    if (end === -1) end = p.length;
    const len = end - start;
    if (len === 0) return 'empty segment';
    if (len <= 2 && p.startsWith(len === 1 ? '.' : '..', start)) {
      return len === 1 ? '"." segment' : '".." segment';
    }
    // A UTF-8 character is at most 3 bytes per UTF-16 unit, so short names skip the byte count.
    if (len * 3 > MAX_NAME_BYTES && Buffer.byteLength(p.slice(start, end), 'utf8') > MAX_NAME_BYTES) {
      return `name longer than ${MAX_NAME_BYTES} bytes`;
    }
    start = end + 1;
  }
  return undefined;
}

/** The directory holding `rel`: 'a/b/c' -> 'a/b', 'a' -> '.', '.' -> '.'. A safe path's parent is safe. */
export function parentOf(rel: SafePath): SafePath;
export function parentOf(rel: string): string;
export function parentOf(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash === -1 ? ROOT_ENTRY : rel.slice(0, slash);
}

/** The last segment of `rel`: 'a/b' -> 'b', 'a' -> 'a', '.' -> '.'. */
export function baseName(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

/** Joins a directory wire path and one name; the root '.' disappears: join('.', 'x') = 'x'. */
export function joinWirePath(dir: string, name: string): string {
  return dir === ROOT_ENTRY ? name : `${dir}/${name}`;
}

/**
 * Orders strings by their UTF-8 bytes (equal to code point order), as rsync and `LC_ALL=C ls` do. Plain `<`
 * compares UTF-16 units, which puts U+E000..U+FFFF after astral characters.
 */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
