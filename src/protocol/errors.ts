/**
 * The closed table of fcp error codes and the one error class every module throws.
 *
 * Each code has a u16 wire number (sent in ABORT and per-file results) and says whether it is fatal to the
 * session. Filesystem errno names (ENOENT, EACCES, ...) pass through unchanged and have wire numbers too, so a
 * remote "disk full" reaches the user as ENOSPC. spec/ERRORS.md lists every code; a unit test keeps the two equal.
 */

export interface ErrorCodeInfo {
  /** Number carried on the wire. */
  readonly wire: number;
  /** A fatal error ends the session; a non-fatal one fails a single file and the transfer goes on. */
  readonly fatal: boolean;
  /** One-line meaning, also used when the peer sends a code without text. */
  readonly text: string;
}

export const ERROR_CODES = {
  // Protocol: the peer broke the framing or the state machine. The connection is closed.
  FCP_ERR_PROTO_BAD_CHECKSUM: { wire: 0x0101, fatal: true, text: 'frame checksum mismatch' },
  FCP_ERR_PROTO_UNKNOWN_FLAG: { wire: 0x0102, fatal: true, text: 'unknown frame type' },
  FCP_ERR_PROTO_OVERSIZED: { wire: 0x0103, fatal: true, text: 'frame longer than its type allows' },
  FCP_ERR_PROTO_MALFORMED: { wire: 0x0104, fatal: true, text: 'malformed message payload' },
  FCP_ERR_PROTO_UNEXPECTED: { wire: 0x0105, fatal: true, text: 'message not valid in this state' },
  FCP_ERR_PROTO_VERSION: { wire: 0x0106, fatal: true, text: 'no protocol version in common' },
  FCP_ERR_PROTO_TRUNCATED: { wire: 0x0107, fatal: true, text: 'connection closed in the middle of a frame' },
  FCP_ERR_PROTO_NOT_FCP: { wire: 0x0108, fatal: true, text: 'peer is not speaking the fcp protocol' },
  FCP_ERR_PROTO_WINDOW: {
    wire: 0x0109,
    fatal: true,
    text: 'peer sent more list entries than the protocol lets it leave unanswered',
  },
  // Network and session lifecycle.
  FCP_ERR_NET_CONNECT: { wire: 0x0201, fatal: true, text: 'cannot connect to the daemon' },
  FCP_ERR_NET_CLOSED: { wire: 0x0202, fatal: true, text: 'connection closed by peer' },
  FCP_ERR_NET_TIMEOUT: { wire: 0x0203, fatal: true, text: 'peer stopped responding' },
  FCP_ERR_SESSION_UNKNOWN: { wire: 0x0301, fatal: true, text: 'unknown session' },
  FCP_ERR_SESSION_LIMIT: { wire: 0x0302, fatal: true, text: 'daemon is at its session limit' },
  FCP_ERR_SESSION_SOCKETS: { wire: 0x0303, fatal: true, text: 'too many connections for this session' },
  FCP_ERR_SESSION_ABORTED: { wire: 0x0304, fatal: true, text: 'session aborted by peer' },
  FCP_ERR_SESSION_SHUTDOWN: { wire: 0x0305, fatal: true, text: 'daemon is shutting down' },
  // Paths: hostile or impossible names. Fatal when they concern the session's root, per file otherwise.
  FCP_ERR_PATH_UNSAFE: {
    wire: 0x0401,
    fatal: false,
    text: 'unsafe path (absolute, "..", NUL or empty segment)',
  },
  FCP_ERR_PATH_OUTSIDE_ROOT: { wire: 0x0402, fatal: true, text: 'path is outside the served root' },
  FCP_ERR_PATH_SYMLINK: { wire: 0x0403, fatal: false, text: 'path passes through a symbolic link' },
  FCP_ERR_PATH_DUPLICATE: { wire: 0x0404, fatal: false, text: 'path appears twice in one transfer' },
  FCP_ERR_PATH_NO_MATCH: { wire: 0x0405, fatal: true, text: 'no file matches' },
  FCP_ERR_PATH_TYPE: { wire: 0x0406, fatal: false, text: 'destination exists with another file type' },
  FCP_ERR_PATH_UNSUPPORTED: {
    wire: 0x0407,
    fatal: false,
    text: 'unsupported file type (device, FIFO or socket)',
  },
  FCP_ERR_PATH_ENCODING: { wire: 0x0408, fatal: false, text: 'file name is not valid UTF-8' },
  // Files: data did not arrive intact.
  FCP_ERR_FILE_CHECKSUM: { wire: 0x0501, fatal: false, text: 'file checksum mismatch after transfer' },
  FCP_ERR_FILE_CHANGED: { wire: 0x0502, fatal: false, text: 'source file changed while it was being sent' },
  FCP_ERR_FILE_RANGE: { wire: 0x0503, fatal: true, text: 'data outside the announced file size' },
  // Limits and local problems.
  FCP_ERR_LIMIT_EXCEEDED: { wire: 0x0601, fatal: true, text: 'announced count or size is over a limit' },
  FCP_ERR_USAGE: { wire: 0x0701, fatal: true, text: 'invalid arguments' },
  FCP_ERR_INTERNAL: { wire: 0x0f01, fatal: true, text: 'internal error' },
  // Authentication and the secure channel (spec/SECURITY.md §9). All fatal.
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

export type FcpErrorCode = keyof typeof ERROR_CODES;

/** errno names that cross the wire as themselves; their numbers are fcp's, not the OS's. */
export const ERRNO_WIRE: Readonly<Record<string, number>> = {
  ENOENT: 0x0801,
  EACCES: 0x0802,
  EPERM: 0x0803,
  ENOSPC: 0x0804,
  EDQUOT: 0x0805,
  EROFS: 0x0806,
  EEXIST: 0x0807,
  EISDIR: 0x0808,
  ENOTDIR: 0x0809,
  ENOTEMPTY: 0x080a,
  ENAMETOOLONG: 0x080b,
  ELOOP: 0x080c,
  EIO: 0x080d,
  EMFILE: 0x080e,
  ENFILE: 0x080f,
  EFBIG: 0x0810,
  EBUSY: 0x0811,
  ETXTBSY: 0x0812,
  EXDEV: 0x0813,
  EINVAL: 0x0814,
};

const WIRE_TO_NAME = new Map<number, string>();
for (const [name, info] of Object.entries(ERROR_CODES)) WIRE_TO_NAME.set(info.wire, name);
for (const [name, wire] of Object.entries(ERRNO_WIRE)) WIRE_TO_NAME.set(wire, name);

/** Every code an FcpError can carry: one of ours, or a passed-through errno name. */
export type AnyErrorCode = FcpErrorCode | (string & {});

export interface FcpErrorOptions {
  path?: string | undefined;
  cause?: unknown;
  /** Overrides the table's fatality, e.g. an unsafe *root* path is fatal though unsafe entries are not. */
  fatal?: boolean;
}

/** The one error class of fcp. `code` is an FCP_ERR_* name or an errno name such as ENOENT. */
export class FcpError extends Error {
  readonly code: AnyErrorCode;
  readonly fatal: boolean;
  readonly path: string | undefined;

  constructor(code: AnyErrorCode, message?: string, options: FcpErrorOptions = {}) {
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

export function isFatalCode(code: string): boolean {
  return isFcpCode(code) ? ERROR_CODES[code].fatal : false;
}

export function describeCode(code: string): string {
  if (isFcpCode(code)) return ERROR_CODES[code].text;
  // An errno from the wire (a FAIL answer carries only its code) reads in words, as a local one does.
  return Object.hasOwn(ERRNO_TEXT, code) ? ERRNO_TEXT[code]! : code;
}

export function wireCodeOf(code: string): number {
  if (isFcpCode(code)) return ERROR_CODES[code].wire;
  return Object.hasOwn(ERRNO_WIRE, code) ? ERRNO_WIRE[code]! : ERROR_CODES.FCP_ERR_INTERNAL.wire;
}

/** Maps a wire number back to its name; unknown numbers (a newer peer) become FCP_ERR_INTERNAL. */
export function codeFromWire(wire: number): AnyErrorCode {
  return WIRE_TO_NAME.get(wire) ?? 'FCP_ERR_INTERNAL';
}

/**
 * Wraps anything thrown into an FcpError, keeping errno names (`err.code` of node's fs errors) as they are.
 * Used where a foreign error crosses into code that reports or sends errors.
 */
export function toFcpError(err: unknown, path?: string): FcpError {
  if (err instanceof FcpError) return err;
  const code =
    typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
  if (code !== undefined && (Object.hasOwn(ERRNO_WIRE, code) || isFcpCode(code))) {
    return new FcpError(code, errnoMessage(err, code), { path, cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new FcpError('FCP_ERR_INTERNAL', message, { path, cause: err });
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EEXIST: 'file exists',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  ENOTEMPTY: 'directory not empty',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links',
  EIO: 'input/output error',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EFBIG: 'file too large',
  EBUSY: 'resource busy',
  ETXTBSY: 'text file busy',
  EXDEV: 'cross-device link',
  EINVAL: 'invalid argument',
};

function errnoMessage(err: unknown, code: string): string {
  if (Object.hasOwn(ERRNO_TEXT, code)) return ERRNO_TEXT[code]!;
  return err instanceof Error ? err.message : code;
}
