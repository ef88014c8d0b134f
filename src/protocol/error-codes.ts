/**
 * The closed table of fcp error codes: each code's u16 wire number, whether it is fatal to the session, the
 * exit status the CLIs give it and its one-line meaning. Filesystem errno names (ENOENT, EACCES, ...) pass
 * through unchanged and have a row each too, so a remote "disk full" reaches the user as ENOSPC. The type of
 * a code is closed: a typo does not compile. spec/ERRORS.md lists every code; a unit test keeps the two
 * equal. The error class and the look-ups over these tables are in errors.ts.
 */

/**
 * What an error makes the CLI exit with, by the name of its exit status (src/cli/exit-codes.ts). INTERNAL
 * means the code itself does not decide: the error's `cause` does if it can, else the run exits with 70.
 */
export type ExitClass =
  'USAGE' | 'PATH' | 'PARTIAL' | 'CONNECT' | 'PROTOCOL' | 'REFUSED' | 'AUTH' | 'INTERNAL' | 'INTERRUPTED';

export interface ErrorCodeInfo {
  /** Number carried on the wire; its high byte is the area (see AREAS). */
  readonly wire: number;
  /** A fatal error ends the session; a non-fatal one fails a single file and the transfer goes on. */
  readonly fatal: boolean;
  /** The exit status when this error stops a run. */
  readonly exit: ExitClass;
  /** One-line meaning, also used when the peer sends a code without text. */
  readonly text: string;
}

export const ERROR_CODES = {
  // Protocol: the peer broke the framing or the state machine. The connection is closed.
  FCP_ERR_PROTO_BAD_CHECKSUM: {
    wire: 0x0101,
    fatal: true,
    exit: 'PROTOCOL',
    text: 'frame checksum mismatch',
  },
  FCP_ERR_PROTO_UNKNOWN_FLAG: { wire: 0x0102, fatal: true, exit: 'PROTOCOL', text: 'unknown frame type' },
  FCP_ERR_PROTO_OVERSIZED: {
    wire: 0x0103,
    fatal: true,
    exit: 'PROTOCOL',
    text: 'frame longer than its type allows',
  },
  FCP_ERR_PROTO_MALFORMED: { wire: 0x0104, fatal: true, exit: 'PROTOCOL', text: 'malformed message payload' },
  FCP_ERR_PROTO_UNEXPECTED: {
    wire: 0x0105,
    fatal: true,
    exit: 'PROTOCOL',
    text: 'message not valid in this state',
  },
  FCP_ERR_PROTO_VERSION: {
    wire: 0x0106,
    fatal: true,
    exit: 'PROTOCOL',
    text: 'no protocol version in common',
  },
  FCP_ERR_PROTO_TRUNCATED: {
    wire: 0x0107,
    fatal: true,
    exit: 'PROTOCOL',
    text: 'connection closed in the middle of a frame',
  },
  FCP_ERR_PROTO_NOT_FCP: {
    wire: 0x0108,
    fatal: true,
    exit: 'PROTOCOL',
    text: 'peer is not speaking the fcp protocol',
  },
  FCP_ERR_PROTO_WINDOW: {
    wire: 0x0109,
    fatal: true,
    exit: 'PROTOCOL',
    text: 'peer sent more list entries than the protocol lets it leave unanswered',
  },
  // Network and session lifecycle.
  FCP_ERR_NET_CONNECT: { wire: 0x0201, fatal: true, exit: 'CONNECT', text: 'cannot connect to the daemon' },
  FCP_ERR_NET_CLOSED: { wire: 0x0202, fatal: true, exit: 'PROTOCOL', text: 'connection closed by peer' },
  FCP_ERR_NET_TIMEOUT: { wire: 0x0203, fatal: true, exit: 'PROTOCOL', text: 'peer stopped responding' },
  FCP_ERR_SESSION_UNKNOWN: { wire: 0x0301, fatal: true, exit: 'REFUSED', text: 'unknown session' },
  FCP_ERR_SESSION_LIMIT: {
    wire: 0x0302,
    fatal: true,
    exit: 'REFUSED',
    text: 'daemon is at its session limit',
  },
  FCP_ERR_SESSION_SOCKETS: {
    wire: 0x0303,
    fatal: true,
    exit: 'REFUSED',
    text: 'too many connections for this session',
  },
  FCP_ERR_SESSION_ABORTED: { wire: 0x0304, fatal: true, exit: 'REFUSED', text: 'session aborted by peer' },
  FCP_ERR_SESSION_SHUTDOWN: { wire: 0x0305, fatal: true, exit: 'REFUSED', text: 'daemon is shutting down' },
  // fcp cancel: the receiver keeps verified pieces for a resume (CANCELLED) or removes its partials (DISCARDED).
  FCP_ERR_SESSION_CANCELLED: { wire: 0x0306, fatal: true, exit: 'INTERRUPTED', text: 'transfer cancelled' },
  FCP_ERR_SESSION_DISCARDED: {
    wire: 0x0307,
    fatal: true,
    exit: 'INTERRUPTED',
    text: 'transfer cancelled, partial files discarded',
  },
  FCP_ERR_SESSION_DRY_RUN: {
    wire: 0x0308,
    fatal: true,
    exit: 'REFUSED',
    text: 'the daemon cannot do a dry run',
  },
  FCP_ERR_SESSION_FSYNC: {
    wire: 0x0309,
    fatal: true,
    exit: 'REFUSED',
    text: 'the daemon cannot sync what it writes (--fsync)',
  },
  // Paths: hostile or impossible names. Fatal when they concern the session's root, per file otherwise.
  FCP_ERR_PATH_UNSAFE: {
    wire: 0x0401,
    fatal: false,
    exit: 'PATH',
    text: 'unsafe path (absolute, "..", NUL or empty segment)',
  },
  FCP_ERR_PATH_OUTSIDE_ROOT: {
    wire: 0x0402,
    fatal: true,
    exit: 'PATH',
    text: 'path is outside the served root',
  },
  FCP_ERR_PATH_SYMLINK: {
    wire: 0x0403,
    fatal: false,
    exit: 'PATH',
    text: 'path passes through a symbolic link',
  },
  FCP_ERR_PATH_DUPLICATE: {
    wire: 0x0404,
    fatal: false,
    exit: 'PATH',
    text: 'path appears twice in one transfer',
  },
  FCP_ERR_PATH_NO_MATCH: { wire: 0x0405, fatal: true, exit: 'PATH', text: 'no file matches' },
  FCP_ERR_PATH_TYPE: {
    wire: 0x0406,
    fatal: false,
    exit: 'PATH',
    text: 'destination exists with another file type',
  },
  FCP_ERR_PATH_UNSUPPORTED: {
    wire: 0x0407,
    fatal: false,
    exit: 'PATH',
    text: 'unsupported file type (device, FIFO or socket)',
  },
  FCP_ERR_PATH_ENCODING: { wire: 0x0408, fatal: false, exit: 'PATH', text: 'file name is not valid UTF-8' },
  // Files: data did not arrive intact.
  FCP_ERR_FILE_CHECKSUM: {
    wire: 0x0501,
    fatal: false,
    exit: 'PARTIAL',
    text: 'file checksum mismatch after transfer',
  },
  FCP_ERR_FILE_CHANGED: {
    wire: 0x0502,
    fatal: false,
    exit: 'PARTIAL',
    text: 'source file changed while it was being sent',
  },
  FCP_ERR_FILE_RANGE: {
    wire: 0x0503,
    fatal: true,
    exit: 'PROTOCOL',
    text: 'data outside the announced file size',
  },
  // Limits and local problems.
  FCP_ERR_LIMIT_EXCEEDED: {
    wire: 0x0601,
    fatal: true,
    exit: 'REFUSED',
    text: 'announced count or size is over a limit',
  },
  FCP_ERR_USAGE: { wire: 0x0701, fatal: true, exit: 'USAGE', text: 'invalid arguments' },
  FCP_ERR_INTERNAL: { wire: 0x0f01, fatal: true, exit: 'INTERNAL', text: 'internal error' },
  // Authentication and the secure channel (spec/SECURITY.md §9). All fatal.
  FCP_ERR_AUTH_DENIED: {
    wire: 0x0901,
    fatal: true,
    exit: 'AUTH',
    text: 'authentication refused: no offered key is authorized',
  },
  FCP_ERR_AUTH_HOST_KEY_CHANGED: {
    wire: 0x0902,
    fatal: true,
    exit: 'AUTH',
    text: 'the daemon host key differs from the one pinned in known_hosts',
  },
  FCP_ERR_AUTH_NO_IDENTITY: {
    wire: 0x0903,
    fatal: true,
    exit: 'AUTH',
    text: 'no SSH key or local token to authenticate with',
  },
  FCP_ERR_AUTH_KEY_ENCRYPTED: {
    wire: 0x0904,
    fatal: true,
    exit: 'AUTH',
    text: 'the private key file is encrypted: load it into ssh-agent with ssh-add',
  },
  FCP_ERR_AUTH_MALFORMED: {
    wire: 0x0905,
    fatal: true,
    exit: 'AUTH',
    text: 'malformed key, signature or agent message',
  },
  FCP_ERR_AUTH_AGENT: { wire: 0x0906, fatal: true, exit: 'AUTH', text: 'ssh-agent failed' },
  FCP_ERR_AUTH_INSECURE_FILE: {
    wire: 0x0907,
    fatal: true,
    exit: 'AUTH',
    text: 'a key or token file has unsafe ownership or permissions',
  },
  FCP_ERR_AUTH_CHANNEL: {
    wire: 0x0908,
    fatal: true,
    exit: 'AUTH',
    text: 'encryption mismatch: both ends must agree on TLS or --no-encryption',
  },
  FCP_ERR_AUTH_HOST_PROOF: {
    wire: 0x0909,
    fatal: true,
    exit: 'AUTH',
    text: 'the daemon failed to prove its host key',
  },
  FCP_ERR_AUTH_PRIVILEGES: {
    wire: 0x090a,
    fatal: true,
    exit: 'USAGE',
    text: 'cannot drop root privileges safely',
  },
  FCP_ERR_AUTH_HOST_KEY_UNVERIFIED: {
    wire: 0x090b,
    fatal: true,
    exit: 'AUTH',
    text: 'a daemon on this host run by another account is not trusted on first use',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type FcpErrorCode = keyof typeof ERROR_CODES;

/**
 * The errno names that cross the wire as themselves; their numbers are fcp's, not the OS's. Per-file by
 * default: the receiver decides when one ends the session (ENOSPC while writing, spec/PROTOCOL.md §6.2).
 */
export const ERRNO_CODES = {
  ENOENT: { wire: 0x0801, fatal: false, exit: 'PATH', text: 'no such file or directory' },
  EACCES: { wire: 0x0802, fatal: false, exit: 'PATH', text: 'permission denied' },
  EPERM: { wire: 0x0803, fatal: false, exit: 'PATH', text: 'operation not permitted' },
  ENOSPC: { wire: 0x0804, fatal: false, exit: 'PATH', text: 'no space left on device' },
  EDQUOT: { wire: 0x0805, fatal: false, exit: 'PATH', text: 'disk quota exceeded' },
  EROFS: { wire: 0x0806, fatal: false, exit: 'PATH', text: 'read-only file system' },
  EEXIST: { wire: 0x0807, fatal: false, exit: 'PATH', text: 'file exists' },
  EISDIR: { wire: 0x0808, fatal: false, exit: 'PATH', text: 'is a directory' },
  ENOTDIR: { wire: 0x0809, fatal: false, exit: 'PATH', text: 'not a directory' },
  ENOTEMPTY: { wire: 0x080a, fatal: false, exit: 'PATH', text: 'directory not empty' },
  ENAMETOOLONG: { wire: 0x080b, fatal: false, exit: 'PATH', text: 'file name too long' },
  ELOOP: { wire: 0x080c, fatal: false, exit: 'PATH', text: 'too many levels of symbolic links' },
  // A failing disk: the storage where the path lives cannot be used, as a full or read-only one; not a bug.
  EIO: { wire: 0x080d, fatal: false, exit: 'PATH', text: 'input/output error' },
  // Not a property of the path: the process or the system is in trouble.
  EMFILE: { wire: 0x080e, fatal: false, exit: 'INTERNAL', text: 'too many open files' },
  ENFILE: { wire: 0x080f, fatal: false, exit: 'INTERNAL', text: 'too many open files in the system' },
  EFBIG: { wire: 0x0810, fatal: false, exit: 'PATH', text: 'file too large' },
  EBUSY: { wire: 0x0811, fatal: false, exit: 'INTERNAL', text: 'resource busy' },
  ETXTBSY: { wire: 0x0812, fatal: false, exit: 'INTERNAL', text: 'text file busy' },
  EXDEV: { wire: 0x0813, fatal: false, exit: 'INTERNAL', text: 'cross-device link' },
  EINVAL: { wire: 0x0814, fatal: false, exit: 'INTERNAL', text: 'invalid argument' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrnoCode = keyof typeof ERRNO_CODES;

/** Every code an FcpError can carry: one of ours, or a passed-through errno name. */
export type ErrorCode = FcpErrorCode | ErrnoCode;

/**
 * Socket error names node reports before fcp wraps them (toFcpError makes them FCP_ERR_INTERNAL with the
 * original as cause). They never cross the wire and are no FcpError's code; only their exit status is fcp's.
 */
export const SOCKET_CODES = {
  // fcpd: the port or address it was told to listen on cannot be bound; the user must choose another.
  EADDRINUSE: 'USAGE',
  EADDRNOTAVAIL: 'USAGE',
  ECONNREFUSED: 'CONNECT',
  EHOSTUNREACH: 'CONNECT',
  ENETUNREACH: 'CONNECT',
  ENOTFOUND: 'CONNECT',
  EAI_AGAIN: 'CONNECT',
  ETIMEDOUT: 'CONNECT',
  // A connection that broke mid-transfer, as FCP_ERR_NET_CLOSED.
  ECONNRESET: 'PROTOCOL',
  EPIPE: 'PROTOCOL',
} as const satisfies Record<string, ExitClass>;

/** The area of a code, the high byte of its wire number (spec/ERRORS.md, "Wire numbers"). */
export const AREAS = {
  PROTO: 0x01,
  NET: 0x02,
  SESSION: 0x03,
  PATH: 0x04,
  FILE: 0x05,
  LIMIT: 0x06,
  USAGE: 0x07,
  ERRNO: 0x08,
  AUTH: 0x09,
  INTERNAL: 0x0f,
} as const;

export type ErrorArea = keyof typeof AREAS;
