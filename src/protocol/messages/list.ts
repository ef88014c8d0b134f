/**
 * The list and the receiver's answers to it: DIR_INFO, FILE_INFO, FILE_COUNT, FILE_READY, FILE_HAVE
 * (spec/PROTOCOL.md §3.4–§3.5, §6).
 */
import {
  FileKind,
  type FileKindValue,
  MAX_PATH_BYTES,
  MAX_PAYLOAD,
  MsgType,
  ReadyAction,
  type ReadyActionValue,
} from '../constants.js';
import { FcpError } from '../errors.js';
import type { MessageCodec } from './codec.js';
import { readTime, writeCount, writeTime } from './fields.js';

/** FILE_READY entries per message, chosen so the largest batch stays well inside one frame. */
export const MAX_READY_ENTRIES = Math.floor((MAX_PAYLOAD - 2) / 7);
/** Bitmap bytes one FILE_HAVE can carry. */
export const MAX_HAVE_BYTES = MAX_PAYLOAD - 8;

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
export interface FileHaveMsg {
  type: typeof MsgType.FileHave;
  id: number;
  /** Bit i (most significant bit first) of `bitmap` stands for piece firstSeq + i: set = already held. */
  firstSeq: number;
  bitmap: Uint8Array;
}

export const dirInfoCodec: MessageCodec<DirInfoMsg> = {
  type: MsgType.DirInfo,
  maxPayload: 4 + 4 + 8 + 4 + 2 + MAX_PATH_BYTES,
  encode(w, msg) {
    w.u32(msg.id).u32(msg.mode);
    writeTime(w, msg.mtimeNs);
    w.str16(msg.path);
  },
  decode(r) {
    const id = r.u32('id');
    const mode = r.u32('mode');
    const mtimeNs = readTime(r);
    return { type: MsgType.DirInfo, id, mode, mtimeNs, path: r.str16('path', MAX_PATH_BYTES) };
  },
};

export const fileInfoCodec: MessageCodec<FileInfoMsg> = {
  type: MsgType.FileInfo,
  maxPayload: 4 + 1 + 4 + 8 + 8 + 4 + 8 + 1 + 2 + MAX_PATH_BYTES + 2 + MAX_PATH_BYTES,
  encode(w, msg) {
    w.u32(msg.id).u8(msg.kind).u32(msg.mode).u64(msg.size);
    writeTime(w, msg.mtimeNs);
    w.u64(msg.checksum ?? 0n).u8(msg.checksum === undefined ? 0 : 1);
    w.str16(msg.path).str16(msg.linkTarget);
  },
  decode(r) {
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
    const checksum = hasSum ? sum : undefined;
    return { type: MsgType.FileInfo, id, kind, mode, size, mtimeNs, checksum, path, linkTarget };
  },
};

export const fileCountCodec: MessageCodec<FileCountMsg> = {
  type: MsgType.FileCount,
  maxPayload: 4 + 8,
  encode(w, msg) {
    w.u32(msg.entries).u64(msg.bytes);
  },
  decode(r) {
    return { type: MsgType.FileCount, entries: r.u32('entries'), bytes: r.u64('bytes') };
  },
};

export const fileReadyCodec: MessageCodec<FileReadyMsg> = {
  type: MsgType.FileReady,
  maxPayload: 2 + MAX_READY_ENTRIES * 7,
  encode(w, msg) {
    writeCount(w, msg.entries.length, MAX_READY_ENTRIES, 'FILE_READY entries');
    for (const e of msg.entries) w.u32(e.id).u8(e.action).u16(e.code);
  },
  decode(r) {
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
    return { type: MsgType.FileReady, entries };
  },
};

export const fileHaveCodec: MessageCodec<FileHaveMsg> = {
  type: MsgType.FileHave,
  maxPayload: MAX_PAYLOAD,
  encode(w, msg) {
    if (msg.bitmap.byteLength === 0)
      throw new FcpError('FCP_ERR_PROTO_MALFORMED', 'FILE_HAVE with an empty bitmap');
    w.u32(msg.id).u32(msg.firstSeq).bytes(msg.bitmap);
  },
  decode(r) {
    const id = r.u32('id');
    const firstSeq = r.u32('first seq');
    if (r.remaining === 0) throw new FcpError('FCP_ERR_PROTO_MALFORMED', 'FILE_HAVE with an empty bitmap');
    return { type: MsgType.FileHave, id, firstSeq, bitmap: Uint8Array.from(r.rest()) };
  },
};
