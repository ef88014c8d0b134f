/**
 * The one error class every module throws, and the look-ups over the code tables (error-codes.ts).
 *
 * An errno the table lacks becomes FCP_ERR_INTERNAL (with the OS's message and the original error as its
 * cause) rather than widening the closed type of a code.
 */

import {
  AREAS,
  ERRNO_CODES,
  ERROR_CODES,
  SOCKET_CODES,
  type ErrorArea,
  type ErrorCode,
  type ErrorCodeInfo,
  type ExitClass,
  type FcpErrorCode,
} from './error-codes.js';

export * from './error-codes.js';

const CODES: Readonly<Record<ErrorCode, ErrorCodeInfo>> = { ...ERROR_CODES, ...ERRNO_CODES };

const AREA_OF_BYTE = new Map<number, ErrorArea>(
  Object.entries(AREAS).map(([area, byte]) => [byte, area as ErrorArea]),
);

const WIRE_TO_NAME = new Map<number, ErrorCode>(
  Object.entries(CODES).map(([name, info]) => [info.wire, name as ErrorCode]),
);

export interface FcpErrorOptions {
  path?: string | undefined;
  cause?: unknown;
  /** Overrides the table's fatality, e.g. an unsafe *root* path is fatal though unsafe entries are not. */
  fatal?: boolean;
}

/** The one error class of fcp. `code` is an FCP_ERR_* name or an errno name such as ENOENT. */
export class FcpError extends Error {
  readonly code: ErrorCode;
  readonly fatal: boolean;
  readonly path: string | undefined;

  constructor(code: ErrorCode, message?: string, options: FcpErrorOptions = {}) {
    super(message ?? describeCode(code), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FcpError';
    this.code = code;
    this.path = options.path;
    this.fatal = options.fatal ?? isFatalCode(code);
  }

  /** The u16 sent on the wire for this error. */
  get wireCode(): number {
    return wireCodeOf(this.code);
  }
}

export function isFcpCode(code: string): code is FcpErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/** True for the codes an FcpError may carry: the FCP_ERR_* table and ERRNO_CODES. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(CODES, code);
}

/** The table's fatality; a code from outside the type (a cast) is not fatal, as an unknown errno was. */
export function isFatalCode(code: ErrorCode): boolean {
  return isErrorCode(code) ? CODES[code].fatal : false;
}

/** The area of a code, read from its wire number; FCP_ERR_INTERNAL's for a code outside the type. */
export function errorArea(code: ErrorCode): ErrorArea {
  return AREA_OF_BYTE.get(wireCodeOf(code) >> 8) ?? 'INTERNAL';
}

/**
 * The exit status a code stands for, from the tables: FCP_ERR_*, errno and socket names. Undefined for a
 * name fcp does not know. Takes any string: it also reads the codes of node's own errors.
 */
export function exitClassOf(code: string): ExitClass | undefined {
  if (isErrorCode(code)) return CODES[code].exit;
  return Object.hasOwn(SOCKET_CODES, code) ? SOCKET_CODES[code as keyof typeof SOCKET_CODES] : undefined;
}

export function describeCode(code: ErrorCode): string {
  // An errno from the wire (a FAIL answer carries only its code) reads in words, as a local one does.
  return isErrorCode(code) ? CODES[code].text : code;
}

export function wireCodeOf(code: ErrorCode): number {
  return isErrorCode(code) ? CODES[code].wire : ERROR_CODES.FCP_ERR_INTERNAL.wire;
}

/** Maps a wire number back to its name; unknown numbers (a newer peer) become FCP_ERR_INTERNAL. */
export function codeFromWire(wire: number): ErrorCode {
  return WIRE_TO_NAME.get(wire) ?? 'FCP_ERR_INTERNAL';
}

/**
 * Wraps anything thrown into an FcpError, keeping errno names (`err.code` of node's fs errors) as they are.
 * An errno the table lacks is the catch-all FCP_ERR_INTERNAL, with the OS's message and the original error
 * as its cause (so the exit status can still be read from the cause). Used where a foreign error crosses
 * into code that reports or sends errors.
 */
export function toFcpError(err: unknown, path?: string): FcpError {
  if (err instanceof FcpError) return err;
  const code =
    typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
  if (code !== undefined && isErrorCode(code)) {
    return new FcpError(code, foreignMessage(err, code), { path, cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new FcpError('FCP_ERR_INTERNAL', message, { path, cause: err });
}

/** The errno name (`ENOENT`) a node error carries, if any. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** An errno reads as the table's words; a foreign error carrying one of our codes keeps its own message. */
function foreignMessage(err: unknown, code: ErrorCode): string {
  if (!isFcpCode(code)) return CODES[code].text;
  return err instanceof Error ? err.message : code;
}
