/**
 * Error codes of the security layer (spec/SECURITY.md §9). Phase B moves this table into ERROR_CODES in
 * src/protocol/errors.ts and spec/ERRORS.md; until then `authError` builds FcpErrors that are fatal, as every
 * one of these is.
 */
import { type ErrorCodeInfo, FcpError } from '../protocol/errors.js';

export const AUTH_ERROR_CODES = {
  FCP_ERR_AUTH_DENIED: {
    wire: 0x0901,
    fatal: true,
    text: 'authentication refused: no offered key is authorized',
  },
  FCP_ERR_AUTH_HOST_KEY_CHANGED: {
    wire: 0x0902,
    fatal: true,
    text: 'the daemon host key differs from the one pinned in known_hosts',
  },
  FCP_ERR_AUTH_NO_IDENTITY: {
    wire: 0x0903,
    fatal: true,
    text: 'no SSH key or local token to authenticate with',
  },
  FCP_ERR_AUTH_KEY_ENCRYPTED: {
    wire: 0x0904,
    fatal: true,
    text: 'the private key file is encrypted: load it into ssh-agent with ssh-add',
  },
  FCP_ERR_AUTH_MALFORMED: { wire: 0x0905, fatal: true, text: 'malformed key, signature or agent message' },
  FCP_ERR_AUTH_AGENT: { wire: 0x0906, fatal: true, text: 'ssh-agent failed' },
  FCP_ERR_AUTH_INSECURE_FILE: {
    wire: 0x0907,
    fatal: true,
    text: 'a key or token file has unsafe ownership or permissions',
  },
  FCP_ERR_AUTH_CHANNEL: {
    wire: 0x0908,
    fatal: true,
    text: 'encryption mismatch: both ends must agree on TLS or --no-encryption',
  },
  FCP_ERR_AUTH_HOST_PROOF: { wire: 0x0909, fatal: true, text: 'the daemon failed to prove its host key' },
  FCP_ERR_AUTH_PRIVILEGES: { wire: 0x090a, fatal: true, text: 'cannot drop root privileges safely' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type AuthErrorCode = keyof typeof AUTH_ERROR_CODES;

/** A fatal FcpError with one of the codes above; the message defaults to the table's text. */
export function authError(
  code: AuthErrorCode,
  message?: string,
  options: { path?: string; cause?: unknown } = {},
): FcpError {
  return new FcpError(code, message ?? AUTH_ERROR_CODES[code].text, { ...options, fatal: true });
}
