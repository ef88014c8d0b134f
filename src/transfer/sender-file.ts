/**
 * What the sender's three loops share: one announced entry (SendFile) as it moves from the list through the
 * read-ahead to the sockets, a piece read for sending, and the engine services they all use (SendContext).
 */
import type { FcpError } from '../protocol/index.js';
import type { FramedConn } from '../transport/framed-conn.js';
import type { RateLimit } from '../transport/rate-limit.js';
import { pieceCount, pieceLength, type Hasher } from './checksum.js';
import type { TransferEvent } from './events.js';
import type { Source, SourceEntry, SourceFile } from './store/source.js';

/** What a file's piece hashes are until the receiver asks for its data (see ReadAhead.want). */
const NO_PIECES_HASHED = new Uint8Array(0);
const NO_PIECE_HASHES = new BigUint64Array(0);

export interface SendFile {
  id: number;
  entry: SourceEntry;
  size: number;
  pieces: number;
  /** Announcements of this path so far (a damaged file is announced again under a new id). */
  attempt: number;
  /** Next piece never scheduled yet. */
  nextSeq: number;
  /** Pieces whose hash is known (read at least once). */
  hashedCount: number;
  /** Per piece, 1 once hashed; allocated when the receiver asks for the data (empty until then). */
  hashed: Uint8Array;
  hashes: BigUint64Array;
  /** Pieces the receiver already holds from an interrupted run (FILE_HAVE): read for the hash, not sent. */
  have: Uint8Array | undefined;
  resumed: boolean;
  readsInFlight: number;
  handle: Promise<SourceFile> | undefined;
  /** Set once the file failed on our side; FILE_END carries it. */
  failure: FcpError | undefined;
  endSent: boolean;
  failureSent: boolean;
}

export interface ReadPiece {
  file: SendFile;
  seq: number;
  /** The piece's bytes; with `framed`, the piece laid out as its DATA frames (protocol/data-frames.ts). */
  data: Buffer;
  framed: boolean;
  /** Bytes of file data in the piece. */
  bytes: number;
}

/** The engine's services, handed to each loop (the Sender owns them). */
export interface SendContext {
  readonly control: FramedConn;
  readonly hasher: Hasher;
  readonly source: Source;
  /** --bwlimit: the pumps pay for each piece before writing it. */
  readonly rateLimit: RateLimit | undefined;
  /** Reports what happened (events.ts); the engine's stats and its listeners take it. */
  readonly emit: (event: TransferEvent) => void;
  /** A problem that fails nothing: emit() of a 'warning'. */
  readonly warn: (err: FcpError) => void;
  /** The session is over (succeeded or failed): every loop stops. */
  finished(): boolean;
  /** Ends the session with a fatal error. */
  fail(err: unknown): void;
}

export function newSendFile(id: number, entry: SourceEntry, attempt: number): SendFile {
  const size = Number(entry.size);
  return {
    id,
    entry,
    size,
    pieces: entry.kind === 'file' ? pieceCount(size) : 0,
    attempt,
    nextSeq: 0,
    hashedCount: 0,
    hashed: NO_PIECES_HASHED,
    hashes: NO_PIECE_HASHES,
    have: undefined,
    resumed: false,
    readsInFlight: 0,
    handle: undefined,
    failure: undefined,
    endSent: false,
    failureSent: false,
  };
}

/**
 * What the list keeps of an announced entry until the receiver answers: the entry itself, on its first
 * attempt, until the receiver asks for its data (then, or at FILE_HAVE, it becomes a SendFile); a SendFile
 * from the start when it is announced again. On a loopback re-run thousands of entries wait for their
 * answer at once, long enough for V8 to copy each twice and promote it: a SendFile of 17 fields per
 * skipped entry was a third of what the client's GC copied.
 */
export type Listed = SendFile | SourceEntry;

export function isSendFile(listed: Listed): listed is SendFile {
  return 'attempt' in listed;
}

export function entryOf(listed: Listed): SourceEntry {
  return isSendFile(listed) ? listed.entry : listed;
}

export function attemptOf(listed: Listed): number {
  return isSendFile(listed) ? listed.attempt : 1;
}

/** Bytes of data of a listed regular file (0 for a link or directory). */
export function listedSize(listed: Listed): number {
  const entry = entryOf(listed);
  return entry.kind === 'file' ? Number(entry.size) : 0;
}

/** Bytes of `file` the receiver already holds from an interrupted run (FILE_HAVE). */
export function heldBytes(file: SendFile): number {
  if (file.have === undefined) return 0;
  let n = 0;
  for (let seq = 0; seq < file.pieces; seq++) if (file.have[seq]) n += pieceLength(file.size, seq);
  return n;
}
