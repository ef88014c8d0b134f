/**
 * The push list a client may send between a refused login proof and its next one (ListBeforeSession): kept,
 * unread and bounded, until a proof is accepted (spec/PROTOCOL.md §3.2).
 */
import {
  encodeMessage,
  FcpError,
  FRAME_HEADER_SIZE,
  MAX_LIST_BEFORE_SESSION,
  MAX_LIST_BYTES_BEFORE_SESSION,
  MAX_PAYLOAD_BY_TYPE,
  type Message,
  MsgType,
} from '../protocol/index.js';

/** Entries the client may send past MAX_LIST_BYTES_BEFORE_SESSION: the one that crossed it. */
const MAX_SET_ASIDE_ENTRY_BYTES =
  MAX_LIST_BYTES_BEFORE_SESSION + FRAME_HEADER_SIZE + MAX_PAYLOAD_BY_TYPE[MsgType.FileInfo]!;

/**
 * The push list a client sent between a refused proof and its next one (ListBeforeSession), kept for the
 * session: at most MAX_LIST_BEFORE_SESSION entries of MAX_SET_ASIDE_ENTRY_BYTES and one FILE_COUNT, which is
 * what an honest client sends before SESSION (PROTOCOL.md §3.2). Anything past that is a protocol error.
 */
export class SetAsideList {
  readonly messages: Message[] = [];
  readonly #allowed: boolean;
  #entries = 0;
  #entryBytes = 0;
  #counts = 0;

  constructor(allowed: boolean) {
    this.#allowed = allowed;
  }

  /** False for anything but a list message (the caller decides what it is); throws past the bounds. */
  take(msg: Message): boolean {
    if (!this.#allowed) return false;
    if (msg.type === MsgType.FileCount) {
      if (++this.#counts > 1) throw tooMuchList('a second FILE_COUNT');
    } else if (msg.type === MsgType.DirInfo || msg.type === MsgType.FileInfo) {
      this.#entryBytes += FRAME_HEADER_SIZE + encodeMessage(msg).length;
      if (++this.#entries > MAX_LIST_BEFORE_SESSION) {
        throw tooMuchList(`more than ${MAX_LIST_BEFORE_SESSION} entries`);
      }
      if (this.#entryBytes > MAX_SET_ASIDE_ENTRY_BYTES) throw tooMuchList('more list bytes than allowed');
    } else {
      return false;
    }
    this.messages.push(msg);
    return true;
  }
}

function tooMuchList(what: string): FcpError {
  return new FcpError('FCP_ERR_PROTO_UNEXPECTED', `${what} before SESSION`);
}
