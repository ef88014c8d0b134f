/** Wire constants of protocol version 2. spec/PROTOCOL.md is the normative text. */

export const DEFAULT_PORT = 7523;

/**
 * The package version: what both commands report (`--version`), what the serve-once bootstrap line carries,
 * and part of the remote install's cache name. One constant, checked against package.json by a test.
 */
export const FCP_VERSION = '0.1.0';

/** `flag` u8 | `chksum` u32 | `length` u16 */
export const FRAME_HEADER_SIZE = 7;
export const MAX_PAYLOAD = 0xffff;

export const PROTOCOL_MAGIC = 'FCP';
// Version 2 added the authentication handshake (spec/SECURITY.md §6); a version 1 peer cannot authenticate.
export const PROTOCOL_VERSION_MIN = 2;
export const PROTOCOL_VERSION_MAX = 2;

/** HELLO capability bits (spec/PROTOCOL.md §3.1): a feature is used when both HELLOs of a connection set it. */
export const Capability = {
  /** On a TLS connection, DATA frames carry chksum 0 and their receiver does not check it (§2). */
  TlsDataUnsummed: 0x0001,
  /**
   * The pushing client may send the head of its list right behind its AUTH_PROOF, before SESSION; the daemon
   * keeps it across AUTH_RETRY (§3.2, SECURITY.md §6.1). Saves the round trip to SESSION on every push.
   */
  ListBeforeSession: 0x0002,
  /**
   * The daemon serves dry-run sessions (TransferFlag.DryRun, §5.6). A client asks for one only of a daemon
   * that sets it: an older daemon ignores flag bits it does not know and would write.
   */
  DryRun: 0x0004,
  /**
   * The sender honours DETACH (§3.2): a receiver may ask it to stop sending on one data connection and close
   * it once its pieces are acknowledged. Without it a pulling client keeps every connection it attached.
   */
  Detach: 0x0008,
  /**
   * The daemon's ATTACH answer carries its own proof of the session secret (§3.2, SECURITY.md §6.4), and a
   * client that offered it refuses an answer without a valid one: a connection that reached someone else
   * (a socket swapped on the remote host, §14.4) can stall a session but never receive its data.
   */
  AttachProven: 0x0010,
  /**
   * The daemon honours TransferFlag.Fsync on a push (§6.3). A client asks for it only of a daemon that sets
   * it: an older daemon ignores flag bits it does not know and would not sync.
   */
  Fsync: 0x0020,
} as const;

/** List entries (DIR_INFO, FILE_INFO) a client may send before SESSION under ListBeforeSession. */
export const MAX_LIST_BEFORE_SESSION = 1024;
/**
 * Frame bytes (header and payload) of those entries: the client announces no further entry once it has
 * sent this much, so only the entry that crossed it may end past it.
 */
export const MAX_LIST_BYTES_BEFORE_SESSION = 256 * 1024;

/**
 * List entries (DIR_INFO, FILE_INFO) a sender may have announced and not yet seen settled by a FILE_READY
 * SKIP or FAIL or by a FILE_DONE (spec/PROTOCOL.md §5.1). The receiver ends a session that crosses it
 * (FCP_ERR_PROTO_WINDOW): its own count of open entries is never above the sender's.
 */
export const LIST_WINDOW = 8192;

/** Files are cut into pieces of this size: the unit of scheduling, acknowledgement and the file checksum. */
export const PIECE_SIZE = 1 << 20;

/** DATA payload: file_id u32 | seq u32 | offset-in-piece u32 | bytes. */
export const DATA_PREFIX_SIZE = 12;
export const MAX_DATA_BYTES = MAX_PAYLOAD - DATA_PREFIX_SIZE;

export const SESSION_ID_SIZE = 16;

/** Limits a decoder enforces on counts inside one message (each also bounded by the 64 KiB frame). */
export const MAX_PATH_BYTES = 4095;
export const MAX_PATTERNS = 256;

/** Handshake field sizes (spec/SECURITY.md §6.1). */
export const AUTH_NONCE_SIZE = 32;
export const AUTH_KX_SIZE = 32;
export const MAX_AUTH_USER_BYTES = 255;
export const MAX_HOST_KEY_BYTES = 1024;
export const MAX_HOST_PROOF_BYTES = 1024;
export const MAX_AUTH_KEY_BLOB_BYTES = 4096;
export const MAX_AUTH_PROOF_BYTES = 4096;
export const ATTACH_PROOF_SIZE = 32;

/** AUTH_PROOF.method */
export const AuthMethodCode = {
  PublicKey: 1,
  Token: 2,
} as const;
export type AuthMethodCodeValue = (typeof AuthMethodCode)[keyof typeof AuthMethodCode];

/** Message types: the frame's `flag` byte. 0x01–0x0c keep fastcopy's numbering. */
export const MsgType = {
  Push: 0x01,
  Pull: 0x02,
  Session: 0x03,
  Attach: 0x04,
  // 0x05 was fastcopy's "transfer mode"; its content lives in the PUSH/PULL flags. Reserved, never sent.
  DirInfo: 0x06,
  FileInfo: 0x07,
  FileCount: 0x08,
  FileReady: 0x09,
  Data: 0x0a,
  Done: 0x0b,
  Abort: 0x0c,
  PieceAck: 0x0d,
  FileEnd: 0x0e,
  FileDone: 0x0f,
  Hello: 0x10,
  Ping: 0x11,
  FileHave: 0x12,
  // Version 2: the authentication handshake (spec/SECURITY.md §6.1).
  AuthStart: 0x13,
  AuthChallenge: 0x14,
  AuthProof: 0x15,
  AuthRetry: 0x16,
  AttachChallenge: 0x17,
  AttachProof: 0x18,
  // Under Capability.Detach: the receiver retires a data connection the sender sends on (§3.2).
  Detach: 0x19,
} as const;

export type MsgTypeValue = (typeof MsgType)[keyof typeof MsgType];

/** Names as the spec writes them: FILE_INFO, PIECE_ACK. */
export const MSG_TYPE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(MsgType).map(([name, value]) => [
    value,
    name.replace(/(?<=[a-z])(?=[A-Z])/g, '_').toUpperCase(),
  ]),
);

/** Bits of PUSH.flags, PULL.flags and SESSION.flags. */
export const TransferFlag = {
  /** Decide "identical" by content hash instead of size + mtime. */
  Checksum: 1 << 0,
  /** The list holds exactly one top-level entry that is not a directory: the destination may name it. */
  SingleFile: 1 << 1,
  /** Decide every entry as a real run would, write nothing, send no data (§5.6). SESSION echoes it. */
  DryRun: 1 << 2,
  /** PUSH: the daemon syncs every file before its rename and each changed directory before DONE (§6.3). */
  Fsync: 1 << 3,
} as const;

/** FILE_INFO.kind */
export const FileKind = {
  File: 1,
  Symlink: 2,
} as const;
export type FileKindValue = (typeof FileKind)[keyof typeof FileKind];

/** FILE_READY entry actions. */
export const ReadyAction = {
  Need: 0,
  Skip: 1,
  Fail: 2,
  /** Need, but the pieces named by the FILE_HAVE messages sent just before are already held (resume). */
  Resume: 3,
} as const;
export type ReadyActionValue = (typeof ReadyAction)[keyof typeof ReadyAction];

/** FILE_INFO.flags */
export const FileInfoFlag = {
  HasChecksum: 1 << 0,
} as const;
