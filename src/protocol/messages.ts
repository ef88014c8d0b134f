/**
 * Every fcp message: a discriminated union on `type` (the frame flag), with one encoder and one decoder per
 * type. Byte layouts are in spec/PROTOCOL.md §3; each decoder reads exactly its layout and rejects the rest.
 */
import { PayloadReader, PayloadWriter } from './byte-io.js';
import {
  ATTACH_PROOF_SIZE,
  AUTH_KX_SIZE,
  AUTH_NONCE_SIZE,
  AuthMethodCode,
  type AuthMethodCodeValue,
  DATA_PREFIX_SIZE,
  FileKind,
  type FileKindValue,
  MAX_AUTH_KEY_BLOB_BYTES,
  MAX_AUTH_PROOF_BYTES,
  MAX_AUTH_USER_BYTES,
  MAX_HOST_KEY_BYTES,
  MAX_HOST_PROOF_BYTES,
  MAX_PATH_BYTES,
  MAX_PATTERNS,
  MAX_PAYLOAD,
  MSG_TYPE_NAMES,
  MsgType,
  PROTOCOL_MAGIC,
  ReadyAction,
  type ReadyActionValue,
  SESSION_ID_SIZE,
} from './constants.js';
import { FcpError } from './errors.js';

export interface HelloMsg {
  type: typeof MsgType.Hello;
  versionMin: number;
  versionMax: number;
  capabilities: number;
  agent: string;
}
export interface PushMsg {
  type: typeof MsgType.Push;
  flags: number;
  connections: number;
  dest: string;
}
export interface PullMsg {
  type: typeof MsgType.Pull;
  flags: number;
  connections: number;
  source: string;
  include: string[];
  exclude: string[];
}
export interface SessionMsg {
  type: typeof MsgType.Session;
  sessionId: Uint8Array;
  flags: number;
  maxConnections: number;
  pieceSize: number;
}
export interface AttachMsg {
  type: typeof MsgType.Attach;
  sessionId: Uint8Array;
}
export interface DirInfoMsg {
  type: typeof MsgType.DirInfo;
  id: number;
  mode: number;
  mtimeNs: bigint;
  path: string;
}
export interface FileInfoMsg {
  type: typeof MsgType.FileInfo;
  id: number;
  kind: FileKindValue;
  mode: number;
  size: bigint;
  mtimeNs: bigint;
  /** Content hash (spec §4); present only when the session compares by checksum. */
  checksum: bigint | undefined;
  path: string;
  /** Symlink target text, '' for files. */
  linkTarget: string;
}
export interface FileCountMsg {
  type: typeof MsgType.FileCount;
  entries: number;
  bytes: bigint;
}
export interface ReadyEntry {
  id: number;
  action: ReadyActionValue;
  /** Wire error code when action is Fail, else 0. */
  code: number;
}
export interface FileReadyMsg {
  type: typeof MsgType.FileReady;
  entries: ReadyEntry[];
}
export interface DataMsg {
  type: typeof MsgType.Data;
  id: number;
  seq: number;
  offset: number;
  /** A view into the receive buffer: valid only during the frame callback. Copy it to keep it. */
  data: Uint8Array;
}
export interface DoneMsg {
  type: typeof MsgType.Done;
  filesSent: number;
  filesSkipped: number;
  filesFailed: number;
  bytes: bigint;
}
export interface AbortMsg {
  type: typeof MsgType.Abort;
  code: number;
  text: string;
}
export interface PieceRef {
  id: number;
  seq: number;
}
export interface PieceAckMsg {
  type: typeof MsgType.PieceAck;
  pieces: PieceRef[];
}
export interface FileEndMsg {
  type: typeof MsgType.FileEnd;
  id: number;
  /** 0 when the sender read the file intact, else a wire error code (the file is not to be committed). */
  code: number;
  checksum: bigint;
}
export interface DoneEntry {
  id: number;
  code: number;
}
export interface FileDoneMsg {
  type: typeof MsgType.FileDone;
  entries: DoneEntry[];
}
export interface PingMsg {
  type: typeof MsgType.Ping;
}
export interface FileHaveMsg {
  type: typeof MsgType.FileHave;
  id: number;
  /** Bit i (most significant bit first) of `bitmap` stands for piece firstSeq + i: set = already held. */
  firstSeq: number;
  bitmap: Uint8Array;
}

/** Client -> daemon, right after HELLO on a control connection (spec/SECURITY.md §6.1). */
export interface AuthStartMsg {
  type: typeof MsgType.AuthStart;
  clientNonce: Uint8Array;
  clientKx: Uint8Array;
  /** The account the client asks for; empty = whichever the daemon serves. */
  user: string;
}
export interface AuthChallengeMsg {
  type: typeof MsgType.AuthChallenge;
  serverNonce: Uint8Array;
  serverKx: Uint8Array;
  /** DER SubjectPublicKeyInfo of the daemon's Ed25519 host key. */
  hostKey: Uint8Array;
  hostProof: Uint8Array;
  /** Absolute path of the daemon's local token file, '' when it has none. */
  tokenPath: string;
}
export interface AuthProofMsg {
  type: typeof MsgType.AuthProof;
  method: AuthMethodCodeValue;
  /** SSH public key blob (publickey), empty for a token proof. */
  keyBlob: Uint8Array;
  proof: Uint8Array;
}
export interface AuthRetryMsg {
  type: typeof MsgType.AuthRetry;
  attemptsLeft: number;
}
export interface AttachChallengeMsg {
  type: typeof MsgType.AttachChallenge;
  nonce: Uint8Array;
}
export interface AttachProofMsg {
  type: typeof MsgType.AttachProof;
  proof: Uint8Array;
}

export type Message =
  | HelloMsg
  | PushMsg
  | PullMsg
  | SessionMsg
  | AttachMsg
  | DirInfoMsg
  | FileInfoMsg
  | FileCountMsg
  | FileReadyMsg
  | DataMsg
  | DoneMsg
  | AbortMsg
  | PieceAckMsg
  | FileEndMsg
  | FileDoneMsg
  | PingMsg
  | FileHaveMsg
  | AuthStartMsg
  | AuthChallengeMsg
  | AuthProofMsg
  | AuthRetryMsg
  | AttachChallengeMsg
  | AttachProofMsg;

/** Entries per batched message, chosen so the largest batch stays well inside one frame. */
export const MAX_READY_ENTRIES = Math.floor((MAX_PAYLOAD - 2) / 7);
export const MAX_ACK_ENTRIES = Math.floor((MAX_PAYLOAD - 2) / 8);
export const MAX_DONE_ENTRIES = Math.floor((MAX_PAYLOAD - 2) / 6);
/** Bitmap bytes one FILE_HAVE can carry. */
export const MAX_HAVE_BYTES = MAX_PAYLOAD - 8;

/**
 * Largest payload each type may announce. The decoder checks this against the header's length before it
 * buffers a single payload byte (STYLE rule 3), so a 64 KiB ATTACH is refused at once.
 */
export const MAX_PAYLOAD_BY_TYPE: Readonly<Record<number, number>> = {
  [MsgType.Hello]: 3 + 2 + 2 + 4 + 2 + 255,
  [MsgType.Push]: MAX_PAYLOAD,
  [MsgType.Pull]: MAX_PAYLOAD,
  [MsgType.Session]: SESSION_ID_SIZE + 4 + 2 + 4,
  [MsgType.Attach]: SESSION_ID_SIZE,
  [MsgType.DirInfo]: 4 + 4 + 8 + 4 + 2 + MAX_PATH_BYTES,
  [MsgType.FileInfo]: 4 + 1 + 4 + 8 + 8 + 4 + 8 + 1 + 2 + MAX_PATH_BYTES + 2 + MAX_PATH_BYTES,
  [MsgType.FileCount]: 4 + 8,
  [MsgType.FileReady]: 2 + MAX_READY_ENTRIES * 7,
  [MsgType.Data]: MAX_PAYLOAD,
  [MsgType.Done]: 4 + 4 + 4 + 8,
  [MsgType.Abort]: 2 + 2 + 1024,
  [MsgType.PieceAck]: 2 + MAX_ACK_ENTRIES * 8,
  [MsgType.FileEnd]: 4 + 2 + 8,
  [MsgType.FileDone]: 2 + MAX_DONE_ENTRIES * 6,
  [MsgType.Ping]: 0,
  [MsgType.FileHave]: MAX_PAYLOAD,
  [MsgType.AuthStart]: AUTH_NONCE_SIZE + AUTH_KX_SIZE + 2 + MAX_AUTH_USER_BYTES,
  [MsgType.AuthChallenge]:
    AUTH_NONCE_SIZE + AUTH_KX_SIZE + 2 + MAX_HOST_KEY_BYTES + 2 + MAX_HOST_PROOF_BYTES + 2 + MAX_PATH_BYTES,
  [MsgType.AuthProof]: 1 + 2 + MAX_AUTH_KEY_BLOB_BYTES + 2 + MAX_AUTH_PROOF_BYTES,
  [MsgType.AuthRetry]: 1,
  [MsgType.AttachChallenge]: AUTH_NONCE_SIZE,
  [MsgType.AttachProof]: ATTACH_PROOF_SIZE,
};

export function isKnownType(flag: number): boolean {
  return MAX_PAYLOAD_BY_TYPE[flag] !== undefined;
}

export function typeName(flag: number): string {
  return MSG_TYPE_NAMES[flag] ?? `0x${flag.toString(16).padStart(2, '0')}`;
}

const NS_PER_SEC = 1_000_000_000n;

function writeTime(w: PayloadWriter, ns: bigint): void {
  // Seconds floor towards -inf so pre-1970 times keep a non-negative nanosecond part.
  let sec = ns / NS_PER_SEC;
  let nsec = ns % NS_PER_SEC;
  if (nsec < 0n) {
    nsec += NS_PER_SEC;
    sec -= 1n;
  }
  w.i64(sec).u32(Number(nsec));
}

function readTime(r: PayloadReader): bigint {
  const sec = r.i64('mtime seconds');
  const nsec = r.u32('mtime nanoseconds');
  if (nsec >= 1_000_000_000) throw new FcpError('FCP_ERR_PROTO_MALFORMED', 'mtime nanoseconds out of range');
  return sec * NS_PER_SEC + BigInt(nsec);
}

function writeStrings(w: PayloadWriter, list: readonly string[]): void {
  if (list.length > MAX_PATTERNS)
    throw new FcpError('FCP_ERR_PROTO_OVERSIZED', `more than ${MAX_PATTERNS} patterns`);
  w.u16(list.length);
  for (const s of list) w.str16(checkedPath(s, 'pattern'));
}

/** The encoder enforces what the decoder will: a peer never has to reject what we could have refused. */
function checkedPath(s: string, what: string): string {
  if (Buffer.byteLength(s, 'utf8') > MAX_PATH_BYTES) {
    throw new FcpError('FCP_ERR_PROTO_OVERSIZED', `${what} longer than ${MAX_PATH_BYTES} bytes`);
  }
  return s;
}

function writeCount(w: PayloadWriter, n: number, max: number, what: string): void {
  if (n > max) throw new FcpError('FCP_ERR_PROTO_OVERSIZED', `${n} ${what} in one message (max ${max})`);
  w.u16(n);
}

function readStrings(r: PayloadReader, what: string): string[] {
  const n = r.u16(`${what} count`);
  if (n > MAX_PATTERNS) throw new FcpError('FCP_ERR_PROTO_MALFORMED', `more than ${MAX_PATTERNS} ${what}`);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(r.str16(what, MAX_PATH_BYTES));
  return out;
}

/** The encoder refuses what the decoder would: a fixed-size field of the wrong size, a field over its cap. */
function fixed(b: Uint8Array, size: number, what: string): Uint8Array {
  if (b.byteLength !== size) throw new FcpError('FCP_ERR_PROTO_MALFORMED', `${what} must be ${size} bytes`);
  return b;
}

function capped(b: Uint8Array, max: number, what: string): Uint8Array {
  if (b.byteLength > max) throw new FcpError('FCP_ERR_PROTO_OVERSIZED', `${what} longer than ${max} bytes`);
  return b;
}

function cappedText(s: string, max: number, what: string): string {
  if (Buffer.byteLength(s, 'utf8') > max) {
    throw new FcpError('FCP_ERR_PROTO_OVERSIZED', `${what} longer than ${max} bytes`);
  }
  return s;
}

function copied(r: PayloadReader, n: number, what: string): Uint8Array {
  return Uint8Array.from(r.bytes(n, what));
}

function sessionIdOf(r: PayloadReader): Uint8Array {
  return Uint8Array.from(r.bytes(SESSION_ID_SIZE, 'session id'));
}

/** Encodes everything but DATA (whose bytes are never copied: see encodeDataPrefix). */
export function encodeMessage(msg: Exclude<Message, DataMsg>): Buffer {
  const w = new PayloadWriter();
  switch (msg.type) {
    case MsgType.Hello:
      w.bytes(Buffer.from(PROTOCOL_MAGIC, 'latin1')).u16(msg.versionMin).u16(msg.versionMax);
      w.u32(msg.capabilities).str16(truncateUtf8(msg.agent, 255));
      break;
    case MsgType.Push:
      w.u32(msg.flags).u16(msg.connections).str16(checkedPath(msg.dest, 'dest'));
      break;
    case MsgType.Pull:
      w.u32(msg.flags).u16(msg.connections).str16(checkedPath(msg.source, 'source'));
      writeStrings(w, msg.include);
      writeStrings(w, msg.exclude);
      break;
    case MsgType.Session:
      w.bytes(msg.sessionId).u32(msg.flags).u16(msg.maxConnections).u32(msg.pieceSize);
      break;
    case MsgType.Attach:
      w.bytes(msg.sessionId);
      break;
    case MsgType.DirInfo:
      w.u32(msg.id).u32(msg.mode);
      writeTime(w, msg.mtimeNs);
      w.str16(msg.path);
      break;
    case MsgType.FileInfo:
      w.u32(msg.id).u8(msg.kind).u32(msg.mode).u64(msg.size);
      writeTime(w, msg.mtimeNs);
      w.u64(msg.checksum ?? 0n).u8(msg.checksum === undefined ? 0 : 1);
      w.str16(msg.path).str16(msg.linkTarget);
      break;
    case MsgType.FileCount:
      w.u32(msg.entries).u64(msg.bytes);
      break;
    case MsgType.FileReady:
      writeCount(w, msg.entries.length, MAX_READY_ENTRIES, 'FILE_READY entries');
      for (const e of msg.entries) w.u32(e.id).u8(e.action).u16(e.code);
      break;
    case MsgType.Done:
      w.u32(msg.filesSent).u32(msg.filesSkipped).u32(msg.filesFailed).u64(msg.bytes);
      break;
    case MsgType.Abort:
      w.u16(msg.code).str16(truncateUtf8(msg.text, 1024));
      break;
    case MsgType.PieceAck:
      writeCount(w, msg.pieces.length, MAX_ACK_ENTRIES, 'PIECE_ACK entries');
      for (const p of msg.pieces) w.u32(p.id).u32(p.seq);
      break;
    case MsgType.FileEnd:
      w.u32(msg.id).u16(msg.code).u64(msg.checksum);
      break;
    case MsgType.FileDone:
      writeCount(w, msg.entries.length, MAX_DONE_ENTRIES, 'FILE_DONE entries');
      for (const e of msg.entries) w.u32(e.id).u16(e.code);
      break;
    case MsgType.Ping:
      break;
    case MsgType.FileHave:
      if (msg.bitmap.byteLength === 0)
        throw new FcpError('FCP_ERR_PROTO_MALFORMED', 'FILE_HAVE with an empty bitmap');
      w.u32(msg.id).u32(msg.firstSeq).bytes(msg.bitmap);
      break;
    case MsgType.AuthStart:
      w.bytes(fixed(msg.clientNonce, AUTH_NONCE_SIZE, 'client nonce'));
      w.bytes(fixed(msg.clientKx, AUTH_KX_SIZE, 'client key share'));
      w.str16(cappedText(msg.user, MAX_AUTH_USER_BYTES, 'user'));
      break;
    case MsgType.AuthChallenge:
      w.bytes(fixed(msg.serverNonce, AUTH_NONCE_SIZE, 'server nonce'));
      w.bytes(fixed(msg.serverKx, AUTH_KX_SIZE, 'server key share'));
      w.bytes16(capped(msg.hostKey, MAX_HOST_KEY_BYTES, 'host key'));
      w.bytes16(capped(msg.hostProof, MAX_HOST_PROOF_BYTES, 'host proof'));
      w.str16(checkedPath(msg.tokenPath, 'token path'));
      break;
    case MsgType.AuthProof:
      w.u8(msg.method);
      w.bytes16(capped(msg.keyBlob, MAX_AUTH_KEY_BLOB_BYTES, 'key blob'));
      w.bytes16(capped(msg.proof, MAX_AUTH_PROOF_BYTES, 'proof'));
      break;
    case MsgType.AuthRetry:
      w.u8(msg.attemptsLeft);
      break;
    case MsgType.AttachChallenge:
      w.bytes(fixed(msg.nonce, AUTH_NONCE_SIZE, 'attach nonce'));
      break;
    case MsgType.AttachProof:
      w.bytes(fixed(msg.proof, ATTACH_PROOF_SIZE, 'attach proof'));
      break;
  }
  const payload = w.finish();
  const max = MAX_PAYLOAD_BY_TYPE[msg.type] ?? MAX_PAYLOAD;
  if (payload.length > max) {
    throw new FcpError('FCP_ERR_PROTO_OVERSIZED', `${typeName(msg.type)} payload of ${payload.length} bytes`);
  }
  return payload;
}

/** The 12 bytes that precede a DATA frame's file bytes. */
export function encodeDataPrefix(id: number, seq: number, offset: number): Buffer {
  const b = Buffer.allocUnsafe(DATA_PREFIX_SIZE);
  writeDataPrefix(b, id, seq, offset);
  return b;
}

/** Writes the DATA prefix at the start of `out`. */
export function writeDataPrefix(out: Buffer, id: number, seq: number, offset: number): void {
  out.writeUInt32BE(id, 0);
  out.writeUInt32BE(seq, 4);
  out.writeUInt32BE(offset, 8);
}

/** Decodes one payload. Throws FcpError FCP_ERR_PROTO_* on anything that is not exactly a valid message. */
export function decodeMessage(type: number, payload: Uint8Array): Message {
  const r = new PayloadReader(payload);
  const msg = decodeBody(type, r);
  r.end(typeName(type));
  return msg;
}

function decodeBody(type: number, r: PayloadReader): Message {
  switch (type) {
    case MsgType.Hello: {
      const magic = Buffer.from(r.bytes(3, 'magic')).toString('latin1');
      if (magic !== PROTOCOL_MAGIC) throw new FcpError('FCP_ERR_PROTO_NOT_FCP', 'bad HELLO magic');
      const versionMin = r.u16('version min');
      const versionMax = r.u16('version max');
      if (versionMin > versionMax)
        throw new FcpError('FCP_ERR_PROTO_MALFORMED', 'HELLO version range is empty');
      return {
        type,
        versionMin,
        versionMax,
        capabilities: r.u32('capabilities'),
        agent: r.str16('agent', 255),
      };
    }
    case MsgType.Push:
      return {
        type,
        flags: r.u32('flags'),
        connections: r.u16('connections'),
        dest: r.str16('dest', MAX_PATH_BYTES),
      };
    case MsgType.Pull: {
      const flags = r.u32('flags');
      const connections = r.u16('connections');
      const source = r.str16('source', MAX_PATH_BYTES);
      const include = readStrings(r, 'include patterns');
      const exclude = readStrings(r, 'exclude patterns');
      return { type, flags, connections, source, include, exclude };
    }
    case MsgType.Session:
      return {
        type,
        sessionId: sessionIdOf(r),
        flags: r.u32('flags'),
        maxConnections: r.u16('max connections'),
        pieceSize: r.u32('piece size'),
      };
    case MsgType.Attach:
      return { type, sessionId: sessionIdOf(r) };
    case MsgType.DirInfo: {
      const id = r.u32('id');
      const mode = r.u32('mode');
      const mtimeNs = readTime(r);
      return { type, id, mode, mtimeNs, path: r.str16('path', MAX_PATH_BYTES) };
    }
    case MsgType.FileInfo: {
      const id = r.u32('id');
      const kind = r.u8('kind');
      if (kind !== FileKind.File && kind !== FileKind.Symlink) {
        throw new FcpError('FCP_ERR_PROTO_MALFORMED', `unknown file kind ${kind}`);
      }
      const mode = r.u32('mode');
      const size = r.u64('size');
      const mtimeNs = readTime(r);
      const sum = r.u64('checksum');
      const hasSum = r.u8('checksum flag');
      if (hasSum > 1) throw new FcpError('FCP_ERR_PROTO_MALFORMED', 'bad checksum flag');
      const path = r.str16('path', MAX_PATH_BYTES);
      const linkTarget = r.str16('link target', MAX_PATH_BYTES);
      return { type, id, kind, mode, size, mtimeNs, checksum: hasSum ? sum : undefined, path, linkTarget };
    }
    case MsgType.FileCount:
      return { type, entries: r.u32('entries'), bytes: r.u64('bytes') };
    case MsgType.FileReady: {
      const n = r.u16('count');
      const entries: ReadyEntry[] = [];
      for (let i = 0; i < n; i++) {
        const id = r.u32('id');
        const action = r.u8('action');
        if (action > ReadyAction.Resume) {
          throw new FcpError('FCP_ERR_PROTO_MALFORMED', `unknown FILE_READY action ${action}`);
        }
        entries.push({ id, action: action as ReadyActionValue, code: r.u16('code') });
      }
      return { type, entries };
    }
    case MsgType.Data: {
      const id = r.u32('id');
      const seq = r.u32('seq');
      const offset = r.u32('offset');
      return { type, id, seq, offset, data: r.rest() };
    }
    case MsgType.Done:
      return {
        type,
        filesSent: r.u32('files sent'),
        filesSkipped: r.u32('files skipped'),
        filesFailed: r.u32('files failed'),
        bytes: r.u64('bytes'),
      };
    case MsgType.Abort:
      return { type, code: r.u16('code'), text: r.str16('text', 1024) };
    case MsgType.PieceAck: {
      const n = r.u16('count');
      const pieces: PieceRef[] = [];
      for (let i = 0; i < n; i++) pieces.push({ id: r.u32('id'), seq: r.u32('seq') });
      return { type, pieces };
    }
    case MsgType.FileEnd:
      return { type, id: r.u32('id'), code: r.u16('code'), checksum: r.u64('checksum') };
    case MsgType.FileDone: {
      const n = r.u16('count');
      const entries: DoneEntry[] = [];
      for (let i = 0; i < n; i++) entries.push({ id: r.u32('id'), code: r.u16('code') });
      return { type, entries };
    }
    case MsgType.Ping:
      return { type };
    case MsgType.FileHave: {
      const id = r.u32('id');
      const firstSeq = r.u32('first seq');
      if (r.remaining === 0) throw new FcpError('FCP_ERR_PROTO_MALFORMED', 'FILE_HAVE with an empty bitmap');
      return { type, id, firstSeq, bitmap: Uint8Array.from(r.rest()) };
    }
    case MsgType.AuthStart:
      return {
        type,
        clientNonce: copied(r, AUTH_NONCE_SIZE, 'client nonce'),
        clientKx: copied(r, AUTH_KX_SIZE, 'client key share'),
        user: r.str16('user', MAX_AUTH_USER_BYTES),
      };
    case MsgType.AuthChallenge:
      return {
        type,
        serverNonce: copied(r, AUTH_NONCE_SIZE, 'server nonce'),
        serverKx: copied(r, AUTH_KX_SIZE, 'server key share'),
        hostKey: r.bytes16('host key', MAX_HOST_KEY_BYTES),
        hostProof: r.bytes16('host proof', MAX_HOST_PROOF_BYTES),
        tokenPath: r.str16('token path', MAX_PATH_BYTES),
      };
    case MsgType.AuthProof: {
      const method = r.u8('method');
      if (method !== AuthMethodCode.PublicKey && method !== AuthMethodCode.Token) {
        throw new FcpError('FCP_ERR_PROTO_MALFORMED', `unknown authentication method ${method}`);
      }
      return {
        type,
        method,
        keyBlob: r.bytes16('key blob', MAX_AUTH_KEY_BLOB_BYTES),
        proof: r.bytes16('proof', MAX_AUTH_PROOF_BYTES),
      };
    }
    case MsgType.AuthRetry:
      return { type, attemptsLeft: r.u8('attempts left') };
    case MsgType.AttachChallenge:
      return { type, nonce: copied(r, AUTH_NONCE_SIZE, 'attach nonce') };
    case MsgType.AttachProof:
      return { type, proof: copied(r, ATTACH_PROOF_SIZE, 'attach proof') };
    default:
      throw new FcpError('FCP_ERR_PROTO_UNKNOWN_FLAG', `unknown message type ${typeName(type)}`);
  }
}

/** Cuts a string to at most maxBytes of UTF-8 without splitting a character. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  let out = '';
  let used = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (used + n > maxBytes) break;
    out += ch;
    used += n;
  }
  return out;
}
