/**
 * Errors of the security layer (spec/SECURITY.md §9). The codes live in ERROR_CODES (src/protocol/errors.ts)
 * with every other code; `authError` builds the fatal FcpError each of them is.
 */
import { ERROR_CODES, FcpError, type FcpErrorCode } from '../protocol/errors.js';

export type AuthErrorCode = Extract<FcpErrorCode, `FCP_ERR_AUTH_${string}`>;

/** A fatal FcpError with one of the FCP_ERR_AUTH_* codes; the message defaults to the table's text. */
export function authError(
  code: AuthErrorCode,
  message?: string,
  options: { path?: string; cause?: unknown } = {},
): FcpError {
  return new FcpError(code, message ?? ERROR_CODES[code].text, { ...options, fatal: true });
}
