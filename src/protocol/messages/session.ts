/**
 * Opening and ending a session: HELLO, PUSH, PULL, SESSION, ATTACH, DETACH, DONE, ABORT, PING
 * (spec/PROTOCOL.md §3.1–§3.3, §3.8).
 */
import {
  ATTACH_PROOF_SIZE,
  MAX_PATH_BYTES,
  MAX_PAYLOAD,
  MsgType,
  PROTOCOL_MAGIC,
  SESSION_ID_SIZE,
} from '../constants.js';
import { FcpError } from '../errors.js';
import type { MessageCodec } from './codec.js';
import {
  checkedPath,
  copied,
  fixed,
  readStrings,
  sessionIdOf,
  truncateUtf8,
  writeStrings,
} from './fields.js';

const MAX_AGENT_BYTES = 255;
const MAX_ABORT_TEXT_BYTES = 1024;

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
  /** Only in the daemon's answer, under Capability.AttachProven: its proof of the session secret (§3.2). */
  proof?: Uint8Array;
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
export interface PingMsg {
  type: typeof MsgType.Ping;
}
/** Receiver -> sender, on the data connection it names by arriving there (§3.2). */
export interface DetachMsg {
  type: typeof MsgType.Detach;
}

export const helloCodec: MessageCodec<HelloMsg> = {
  type: MsgType.Hello,
  maxPayload: 3 + 2 + 2 + 4 + 2 + MAX_AGENT_BYTES,
  encode(w, msg) {
    w.bytes(Buffer.from(PROTOCOL_MAGIC, 'latin1')).u16(msg.versionMin).u16(msg.versionMax);
    w.u32(msg.capabilities).str16(truncateUtf8(msg.agent, MAX_AGENT_BYTES));
  },
  decode(r) {
    const magic = Buffer.from(r.bytes(3, 'magic')).toString('latin1');
    if (magic !== PROTOCOL_MAGIC) throw new FcpError('FCP_ERR_PROTO_NOT_FCP', 'bad HELLO magic');
    const versionMin = r.u16('version min');
    const versionMax = r.u16('version max');
    if (versionMin > versionMax)
      throw new FcpError('FCP_ERR_PROTO_MALFORMED', 'HELLO version range is empty');
    return {
      type: MsgType.Hello,
      versionMin,
      versionMax,
      capabilities: r.u32('capabilities'),
      agent: r.str16('agent', MAX_AGENT_BYTES),
    };
  },
};

export const pushCodec: MessageCodec<PushMsg> = {
  type: MsgType.Push,
  maxPayload: MAX_PAYLOAD,
  encode(w, msg) {
    w.u32(msg.flags).u16(msg.connections).str16(checkedPath(msg.dest, 'dest'));
  },
  decode(r) {
    return {
      type: MsgType.Push,
      flags: r.u32('flags'),
      connections: r.u16('connections'),
      dest: r.str16('dest', MAX_PATH_BYTES),
    };
  },
};

export const pullCodec: MessageCodec<PullMsg> = {
  type: MsgType.Pull,
  maxPayload: MAX_PAYLOAD,
  encode(w, msg) {
    w.u32(msg.flags).u16(msg.connections).str16(checkedPath(msg.source, 'source'));
    writeStrings(w, msg.include);
    writeStrings(w, msg.exclude);
  },
  decode(r) {
    const flags = r.u32('flags');
    const connections = r.u16('connections');
    const source = r.str16('source', MAX_PATH_BYTES);
    const include = readStrings(r, 'include patterns');
    const exclude = readStrings(r, 'exclude patterns');
    return { type: MsgType.Pull, flags, connections, source, include, exclude };
  },
};

export const sessionCodec: MessageCodec<SessionMsg> = {
  type: MsgType.Session,
  maxPayload: SESSION_ID_SIZE + 4 + 2 + 4,
  encode(w, msg) {
    w.bytes(msg.sessionId).u32(msg.flags).u16(msg.maxConnections).u32(msg.pieceSize);
  },
  decode(r) {
    return {
      type: MsgType.Session,
      sessionId: sessionIdOf(r),
      flags: r.u32('flags'),
      maxConnections: r.u16('max connections'),
      pieceSize: r.u32('piece size'),
    };
  },
};

export const attachCodec: MessageCodec<AttachMsg> = {
  type: MsgType.Attach,
  maxPayload: SESSION_ID_SIZE + ATTACH_PROOF_SIZE,
  encode(w, msg) {
    w.bytes(msg.sessionId);
    if (msg.proof !== undefined) w.bytes(fixed(msg.proof, ATTACH_PROOF_SIZE, 'attach answer proof'));
  },
  decode(r) {
    const sessionId = sessionIdOf(r);
    if (r.remaining === 0) return { type: MsgType.Attach, sessionId };
    return { type: MsgType.Attach, sessionId, proof: copied(r, ATTACH_PROOF_SIZE, 'attach answer proof') };
  },
};

export const doneCodec: MessageCodec<DoneMsg> = {
  type: MsgType.Done,
  maxPayload: 4 + 4 + 4 + 8,
  encode(w, msg) {
    w.u32(msg.filesSent).u32(msg.filesSkipped).u32(msg.filesFailed).u64(msg.bytes);
  },
  decode(r) {
    return {
      type: MsgType.Done,
      filesSent: r.u32('files sent'),
      filesSkipped: r.u32('files skipped'),
      filesFailed: r.u32('files failed'),
      bytes: r.u64('bytes'),
    };
  },
};

export const abortCodec: MessageCodec<AbortMsg> = {
  type: MsgType.Abort,
  maxPayload: 2 + 2 + MAX_ABORT_TEXT_BYTES,
  encode(w, msg) {
    w.u16(msg.code).str16(truncateUtf8(msg.text, MAX_ABORT_TEXT_BYTES));
  },
  decode(r) {
    return { type: MsgType.Abort, code: r.u16('code'), text: r.str16('text', MAX_ABORT_TEXT_BYTES) };
  },
};

export const pingCodec: MessageCodec<PingMsg> = {
  type: MsgType.Ping,
  maxPayload: 0,
  encode() {},
  decode() {
    return { type: MsgType.Ping };
  },
};

export const detachCodec: MessageCodec<DetachMsg> = {
  type: MsgType.Detach,
  maxPayload: 0,
  encode() {},
  decode() {
    return { type: MsgType.Detach };
  },
};
