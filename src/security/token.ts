/**
 * The same-host credential (spec/SECURITY.md §5.4): a random 32-byte token the daemon writes at start to
 * `<stateDir>/fcpd-token-<port>` with mode 0600, together with its host key fingerprint. A client running as
 * the same user on the same machine reads it (only that user and root can) and proves knowledge with an HMAC
 * over the handshake transcript; the token itself never crosses the wire.
 */
import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';
import { authError } from './auth-errors.js';
import { ownedByUs, readPrivateFileOwned, replacePrivateFile } from './private-file.js';

export const TOKEN_SIZE = 32;
const TOKEN_NAME_RE = /^fcpd-token-[0-9]{1,5}$/;
const TOKEN_LINE_RE = /^fcpd-token-v1 ([0-9a-f]{64}) (SHA256:[A-Za-z0-9+/]{43})\n?$/;
const MAX_TOKEN_FILE_BYTES = 256;

export interface LocalToken {
  readonly path: string;
  readonly token: Buffer;
  /** The host key fingerprint of the daemon that wrote the token: the only daemon it is ever used with. */
  readonly hostFingerprint: string;
  /** Who owns the file (the daemon's account). */
  readonly ownerUid: number;
}

/** `fcpd-token-<port>`. */
export function tokenFileName(port: number): string {
  return `fcpd-token-${port}`;
}

/**
 * Writes a fresh token for the daemon on `port` (replacing a stale one atomically). The daemon calls this after
 * dropping privileges, so the file belongs to the served account, and removes it when it stops.
 */
export async function createLocalToken(
  stateDir: string,
  port: number,
  hostFingerprint: string,
): Promise<LocalToken> {
  const path = join(stateDir, tokenFileName(port));
  const token = randomBytes(TOKEN_SIZE);
  await replacePrivateFile(path, `fcpd-token-v1 ${token.toString('hex')} ${hostFingerprint}\n`);
  return { path, token, hostFingerprint, ownerUid: process.geteuid?.() ?? 0 };
}

/** Removes the token file; a missing file is fine. */
export async function removeLocalToken(path: string): Promise<void> {
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/**
 * The client's side: reads the token file a daemon named in its challenge. Accepted only when the path is
 * absolute, its name is `fcpd-token-<port>`, and it is a regular 0600 file owned by this user (root included:
 * spec/SECURITY.md §5.4), not a symlink, holding a well-formed token. Anything else throws; the client then
 * goes on to its SSH keys.
 */
export async function readLocalToken(path: string): Promise<LocalToken> {
  if (!isAbsolute(path) || !TOKEN_NAME_RE.test(basename(path))) {
    throw authError(
      'FCP_ERR_AUTH_INSECURE_FILE',
      `refusing to read ${JSON.stringify(path)} as a token file`,
      { path },
    );
  }
  const { text, uid } = await readPrivateFileOwned(path, MAX_TOKEN_FILE_BYTES, ownedByUs);
  const m = TOKEN_LINE_RE.exec(text);
  if (m === null) throw authError('FCP_ERR_AUTH_MALFORMED', `${path} is not an fcpd token file`, { path });
  return { path, token: Buffer.from(m[1]!, 'hex'), hostFingerprint: m[2]!, ownerUid: uid };
}
