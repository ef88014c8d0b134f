/**
 * The names a receiver keeps beside a file while it arrives: the temporary it writes and renames, and the
 * piece index of a partial one (spec/PROTOCOL.md §7).
 */

import { createHash, randomBytes } from 'node:crypto';
import { FcpError } from '../../protocol/errors.js';
import {
  baseName,
  joinWirePath,
  MAX_NAME_BYTES,
  MAX_PATH_BYTES,
  parentOf,
  ROOT_ENTRY,
  type SafePath,
} from '../wire-path.js';

const TEMP_PREFIX = '.';
const TEMP_SUFFIX = '.fcp-part';
// Same length as TEMP_SUFFIX, so whenever one name fits in NAME_MAX the other does too.
const SIDECAR_SUFFIX = '.fcp-meta';

/**
 * The wire path of the temporary file a receiver writes before renaming it onto `rel`: same directory
 * (so the rename stays on one filesystem), named `.<base>.fcp-part`, or `.fcp-<16 hex>.fcp-part` when
 * that would exceed NAME_MAX.
 */
export function tempNameFor(rel: SafePath): SafePath {
  return siblingName(rel, TEMP_SUFFIX);
}

/**
 * A temporary of this session's own, `.<base>.<8 hex>.fcp-part`, for a file whose shared temporary a live
 * session holds (partial-claims.ts): never resumed, never kept, so no other session looks for it.
 */
export function privateTempNameFor(rel: SafePath): SafePath {
  return siblingName(rel, `.${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`);
}

/**
 * The wire path of the piece index kept beside a partial temporary file (`.<base>.fcp-meta`), so an
 * interrupted transfer resumes with only its missing pieces (spec/PROTOCOL.md §7).
 */
export function sidecarNameFor(rel: SafePath): SafePath {
  return siblingName(rel, SIDECAR_SUFFIX);
}

/**
 * A sibling of a checked path is built without checking it again: the new last segment is '.' + a checked
 * segment (never '.' or '..', no '/' or NUL) + suffix, kept within NAME_MAX by the hash; only the whole
 * path's length needs a look.
 */
function siblingName(rel: SafePath, suffix: string): SafePath {
  if (rel === ROOT_ENTRY) {
    throw new FcpError('FCP_ERR_PATH_UNSAFE', 'the root has no temporary name', { path: rel });
  }
  const base = baseName(rel);
  let name = `${TEMP_PREFIX}${base}${suffix}`;
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) {
    const digest = createHash('sha256').update(base, 'utf8').digest('hex').slice(0, 16);
    name = `.fcp-${digest}${suffix}`;
  }
  const sibling = joinWirePath(parentOf(rel), name);
  if (sibling.length * 3 > MAX_PATH_BYTES && Buffer.byteLength(sibling, 'utf8') > MAX_PATH_BYTES) {
    throw new FcpError(
      'FCP_ERR_PATH_UNSAFE',
      `unsafe path: temporary name longer than ${MAX_PATH_BYTES} bytes`,
      {
        path: rel,
      },
    );
  }
  return sibling as SafePath;
}
