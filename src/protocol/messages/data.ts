/**
 * File data and its bookkeeping: DATA, PIECE_ACK, FILE_END, FILE_DONE (spec/PROTOCOL.md §3.6–§3.7).
 */
import { DATA_PREFIX_SIZE, MAX_PAYLOAD, MsgType } from '../constants.js';
import type { MessageCodec } from './codec.js';
import { writeCount } from './fields.js';

/** Entries per batched message, chosen so the largest batch stays well inside one frame. */
export const MAX_ACK_ENTRIES = Math.floor((MAX_PAYLOAD - 2) / 8);
export const MAX_DONE_ENTRIES = Math.floor((MAX_PAYLOAD - 2) / 6);

export interface DataMsg {
  type: typeof MsgType.Data;
  id: number;
  seq: number;
  offset: number;
  /** A view into the receive buffer: valid only during the frame callback. Copy it to keep it. */
  data: Uint8Array;
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

/** DATA has no encoder: its file bytes go out as their own buffer behind writeDataPrefix (STYLE rule 5). */
export const dataCodec: MessageCodec<DataMsg> = {
  type: MsgType.Data,
  maxPayload: MAX_PAYLOAD,
  decode(r) {
    const id = r.u32('id');
    const seq = r.u32('seq');
    const offset = r.u32('offset');
    return { type: MsgType.Data, id, seq, offset, data: r.rest() };
  },
};

/** The 12 bytes that precede a DATA frame's file bytes. */
export function encodeDataPrefix(id: number, seq: number, offset: number): Buffer {
  const b = Buffer.allocUnsafe(DATA_PREFIX_SIZE);
  writeDataPrefix(b, id, seq, offset);
  return b;
}

/** Writes the DATA prefix into `out` at `at` (its start unless given). */
export function writeDataPrefix(out: Buffer, id: number, seq: number, offset: number, at = 0): void {
  out.writeUInt32BE(id, at);
  out.writeUInt32BE(seq, at + 4);
  out.writeUInt32BE(offset, at + 8);
}

export const pieceAckCodec: MessageCodec<PieceAckMsg> = {
  type: MsgType.PieceAck,
  maxPayload: 2 + MAX_ACK_ENTRIES * 8,
  encode(w, msg) {
    writeCount(w, msg.pieces.length, MAX_ACK_ENTRIES, 'PIECE_ACK entries');
    for (const p of msg.pieces) w.u32(p.id).u32(p.seq);
  },
  decode(r) {
    const n = r.u16('count');
    const pieces: PieceRef[] = [];
    for (let i = 0; i < n; i++) pieces.push({ id: r.u32('id'), seq: r.u32('seq') });
    return { type: MsgType.PieceAck, pieces };
  },
};

export const fileEndCodec: MessageCodec<FileEndMsg> = {
  type: MsgType.FileEnd,
  maxPayload: 4 + 2 + 8,
  encode(w, msg) {
    w.u32(msg.id).u16(msg.code).u64(msg.checksum);
  },
  decode(r) {
    return { type: MsgType.FileEnd, id: r.u32('id'), code: r.u16('code'), checksum: r.u64('checksum') };
  },
};

export const fileDoneCodec: MessageCodec<FileDoneMsg> = {
  type: MsgType.FileDone,
  maxPayload: 2 + MAX_DONE_ENTRIES * 6,
  encode(w, msg) {
    writeCount(w, msg.entries.length, MAX_DONE_ENTRIES, 'FILE_DONE entries');
    for (const e of msg.entries) w.u32(e.id).u16(e.code);
  },
  decode(r) {
    const n = r.u16('count');
    const entries: DoneEntry[] = [];
    for (let i = 0; i < n; i++) entries.push({ id: r.u32('id'), code: r.u16('code') });
    return { type: MsgType.FileDone, entries };
  },
};
