/**
 * One entry per message type: its layout's bound, encoder and decoder side by side, so that a new message
 * or a changed layout touches one place (spec/PROTOCOL.md §3). `messages.ts` gathers the entries into the
 * table the frame decoder and the connection use.
 */
import type { PayloadReader, PayloadWriter } from '../byte-io.js';

export interface MessageCodec<M extends { type: number }> {
  readonly type: M['type'];
  /**
   * Largest payload this type may announce. The frame decoder checks it against the header's length before
   * it buffers a single payload byte (STYLE rule 3), so a 64 KiB ATTACH is refused at once.
   */
  readonly maxPayload: number;
  /** Writes the payload. Absent for DATA, whose bytes are never copied into a message (writeDataPrefix). */
  readonly encode?: (w: PayloadWriter, msg: M) => void;
  /** Reads exactly the layout; the caller rejects bytes left over. Throws FCP_ERR_PROTO_* on anything else. */
  readonly decode: (r: PayloadReader) => M;
}
