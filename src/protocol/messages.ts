/**
 * Every fcp message: a discriminated union on `type` (the frame flag), and the table of their codecs. Each
 * message's layout, bound, encoder and decoder sit together in messages/ (grouped by area); byte layouts
 * are in spec/PROTOCOL.md §3. Each decoder reads exactly its layout and rejects the rest.
 */
import { PayloadReader, PayloadWriter } from './byte-io.js';
import { MSG_TYPE_NAMES } from './constants.js';
import { FcpError } from './errors.js';
import {
  type AttachChallengeMsg,
  type AttachProofMsg,
  type AuthChallengeMsg,
  type AuthProofMsg,
  type AuthRetryMsg,
  type AuthStartMsg,
  attachChallengeCodec,
  attachProofCodec,
  authChallengeCodec,
  authProofCodec,
  authRetryCodec,
  authStartCodec,
} from './messages/auth.js';
import type { MessageCodec } from './messages/codec.js';
import {
  type DataMsg,
  dataCodec,
  type FileDoneMsg,
  type FileEndMsg,
  fileDoneCodec,
  fileEndCodec,
  type PieceAckMsg,
  pieceAckCodec,
} from './messages/data.js';
import {
  type DirInfoMsg,
  dirInfoCodec,
  type FileCountMsg,
  type FileHaveMsg,
  type FileInfoMsg,
  type FileReadyMsg,
  fileCountCodec,
  fileHaveCodec,
  fileInfoCodec,
  fileReadyCodec,
} from './messages/list.js';
import {
  type AbortMsg,
  type AttachMsg,
  abortCodec,
  attachCodec,
  type DetachMsg,
  detachCodec,
  type DoneMsg,
  doneCodec,
  type HelloMsg,
  helloCodec,
  type PingMsg,
  type PullMsg,
  type PushMsg,
  pingCodec,
  pullCodec,
  pushCodec,
  type SessionMsg,
  sessionCodec,
} from './messages/session.js';

export type * from './messages/auth.js';
export type { MessageCodec } from './messages/codec.js';
export { MAX_ACK_ENTRIES, MAX_DONE_ENTRIES, encodeDataPrefix, writeDataPrefix } from './messages/data.js';
export type * from './messages/data.js';
export { truncateUtf8 } from './messages/fields.js';
export { MAX_HAVE_BYTES, MAX_READY_ENTRIES } from './messages/list.js';
export type * from './messages/list.js';
export type * from './messages/session.js';

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
  | AttachProofMsg
  | DetachMsg;

/** Every codec, one per type. A test checks that each MsgType but the reserved 0x05 has exactly one. */
export const MESSAGE_CODECS = [
  helloCodec,
  pushCodec,
  pullCodec,
  sessionCodec,
  attachCodec,
  doneCodec,
  abortCodec,
  pingCodec,
  dirInfoCodec,
  fileInfoCodec,
  fileCountCodec,
  fileReadyCodec,
  fileHaveCodec,
  dataCodec,
  pieceAckCodec,
  fileEndCodec,
  fileDoneCodec,
  authStartCodec,
  authChallengeCodec,
  authProofCodec,
  authRetryCodec,
  attachChallengeCodec,
  attachProofCodec,
  detachCodec,
] as const;

// Indexed by the flag byte: one array load per frame instead of a switch over every type. Each entry is
// filed under its own type, so the message handed to it is always of that entry's type (hence the cast).
const CODEC_BY_TYPE: (MessageCodec<Message> | undefined)[] = [];
for (const codec of MESSAGE_CODECS) CODEC_BY_TYPE[codec.type] = codec as unknown as MessageCodec<Message>;

/**
 * Largest payload each type may announce. The decoder checks this against the header's length before it
 * buffers a single payload byte (STYLE rule 3), so a 64 KiB ATTACH is refused at once.
 */
export const MAX_PAYLOAD_BY_TYPE: Readonly<Record<number, number>> = Object.fromEntries(
  MESSAGE_CODECS.map((codec) => [codec.type, codec.maxPayload]),
);

export function isKnownType(flag: number): boolean {
  return CODEC_BY_TYPE[flag] !== undefined;
}

export function typeName(flag: number): string {
  return MSG_TYPE_NAMES[flag] ?? `0x${flag.toString(16).padStart(2, '0')}`;
}

/** Encodes everything but DATA (whose bytes are never copied: see encodeDataPrefix). */
export function encodeMessage(msg: Exclude<Message, DataMsg>): Buffer {
  return encodeMessageInto(new PayloadWriter(), msg);
}

/**
 * encodeMessage into `w` (emptied first), for a caller encoding many: the result is a view of `w`'s
 * buffer, valid until `w` is used again.
 */
export function encodeMessageInto(w: PayloadWriter, msg: Exclude<Message, DataMsg>): Buffer {
  const codec = CODEC_BY_TYPE[msg.type];
  if (codec?.encode === undefined) {
    throw new FcpError('FCP_ERR_PROTO_UNKNOWN_FLAG', `cannot encode message type ${typeName(msg.type)}`);
  }
  w.reset();
  codec.encode(w, msg);
  const payload = w.finish();
  if (payload.length > codec.maxPayload) {
    throw new FcpError('FCP_ERR_PROTO_OVERSIZED', `${typeName(msg.type)} payload of ${payload.length} bytes`);
  }
  return payload;
}

/** Decodes one payload. Throws FcpError FCP_ERR_PROTO_* on anything that is not exactly a valid message. */
export function decodeMessage(type: number, payload: Uint8Array): Message {
  const codec = CODEC_BY_TYPE[type];
  if (codec === undefined) {
    throw new FcpError('FCP_ERR_PROTO_UNKNOWN_FLAG', `unknown message type ${typeName(type)}`);
  }
  const r = new PayloadReader(payload);
  const msg = codec.decode(r);
  r.end(typeName(type));
  return msg;
}
