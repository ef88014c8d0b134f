/**
 * The sender's list loop: walks the sources and announces each entry (DIR_INFO/FILE_INFO) on the control
 * connection, at most LIST_WINDOW unanswered at a time (fewer, and a byte bound, before SESSION), and keeps
 * the unresolved entries until the receiver's FILE_READY, FILE_HAVE and FILE_DONE settle them. A file that
 * arrived damaged or changed while read is announced again under a new id (spec/PROTOCOL.md §5, §7).
 */
import {
  codeFromWire,
  type DirInfoMsg,
  FcpError,
  type FileHaveMsg,
  type FileInfoMsg,
  type FrameBatch,
  FileKind,
  type FileReadyMsg,
  LIST_WINDOW,
  MAX_LIST_BYTES_BEFORE_SESSION,
  MsgType,
  ReadyAction,
  toFcpError,
  wireCodeOf,
} from '../protocol/index.js';
import { Signal } from './engine.js';
import type { Selector } from './select.js';
import { listedKind } from './events.js';
import {
  attemptOf,
  entryOf,
  heldBytes,
  isSendFile,
  type Listed,
  listedSize,
  newSendFile,
  type SendContext,
  type SendFile,
} from './sender-file.js';
import type { LimitVerdict, SendLimit } from './send-limit.js';
import type { SourceRoot } from './store/source-spec.js';
import type { SourceEntry } from './store/source.js';
import { SendWindow } from './send-window.js';

/** A file that arrives damaged or changes while it is read is sent again, up to this many times in all. */
const MAX_FILE_ATTEMPTS = 3;
const RETRYABLE_FILE_CODES = new Set([
  wireCodeOf('FCP_ERR_FILE_CHECKSUM'),
  wireCodeOf('FCP_ERR_FILE_CHANGED'),
]);

export interface AnnouncerOptions {
  sources: readonly SourceRoot[];
  selector: Selector;
  /** Announce content hashes so the receiver compares by checksum (--checksum). */
  checksum: boolean;
  /** See SenderOptions.preSessionEntries. */
  preSessionEntries: number | undefined;
  /** The receiver wants this file's data (FILE_READY NEED or RESUME). */
  onWanted: (file: SendFile) => void;
  /** The entry is settled: whatever it holds open may go. */
  onSettled: (file: SendFile) => void;
  /** The list or the set of unresolved entries changed outside a message: the session may be complete. */
  onChange: () => void;
  /** --limit: files past it are not announced but reported as not sent. */
  limit?: SendLimit | undefined;
}

export class Announcer {
  readonly #ctx: SendContext;
  readonly #opts: AnnouncerOptions;
  /** Every announced entry not yet resolved by the receiver (a SendFile once its data is wanted). */
  readonly #unresolved = new Map<number, Listed>();
  /** Entries that may be unanswered after SESSION, within LIST_WINDOW (send-window.ts). */
  readonly #window = new SendWindow();
  readonly #resolved = new Signal();
  #nextId = 1;
  #announcing = 0;
  #listDone = false;
  /** Entries that may wait unanswered before SESSION (LIST_WINDOW after it). */
  readonly #preSessionEntries: number;
  #granted: boolean;
  /** The control connection's messageBytesSent when the list started (bytes before SESSION are bounded). */
  readonly #listBytesBase: number;
  /** Where a run of announcements is encoded before its one write. */
  readonly #batch: FrameBatch;

  constructor(ctx: SendContext, opts: AnnouncerOptions) {
    this.#ctx = ctx;
    this.#opts = opts;
    this.#granted = opts.preSessionEntries === undefined;
    this.#preSessionEntries = opts.preSessionEntries ?? LIST_WINDOW;
    this.#listBytesBase = ctx.control.messageBytesSent;
    this.#batch = ctx.control.newBatch();
  }

  /** The whole list went out, SESSION granted it, and the receiver settled every entry. */
  get complete(): boolean {
    return this.#granted && this.#listDone && this.#unresolved.size === 0 && this.#announcing === 0;
  }

  /** Whether `file` is still the current announcement of its path, not yet settled. */
  isUnresolved(file: SendFile): boolean {
    return this.#unresolved.get(file.id) === file;
  }

  /** The unresolved entries whose data was wanted: those that may hold something open. */
  *unresolvedFiles(): IterableIterator<SendFile> {
    for (const listed of this.#unresolved.values()) if (isSendFile(listed)) yield listed;
  }

  /** SESSION arrived (preSessionEntries): the list may run the whole window ahead now. */
  grant(): void {
    this.#granted = true;
    this.#resolved.wake();
  }

  /** Wakes a list loop waiting for room (the session ended). */
  wake(): void {
    this.#resolved.wake();
  }

  async run(): Promise<void> {
    let entries = 0;
    let bytes = 0n;
    for (const source of this.#opts.sources) {
      for await (const batch of this.#ctx.source.walk(source, this.#opts.selector, this.#ctx.warn)) {
        const listable = batch.filter((entry) => this.#listable(entry));
        for (const entry of listable) {
          entries++;
          if (entry.kind === 'file') bytes += entry.size;
        }
        await this.#announceAll(listable);
        if (this.#ctx.finished()) return;
      }
    }
    // An empty window before SESSION holds back FILE_COUNT too: the daemon expects no list at all then.
    const held = (): boolean => !this.#granted && this.#preSessionEntries === 0;
    if (held()) this.#reportHeld();
    while (held() && !this.#ctx.finished()) await this.#resolved.wait();
    if (this.#ctx.finished()) return;
    this.#ctx.control.send({ type: MsgType.FileCount, entries, bytes });
    this.#listDone = true;
    this.#ctx.emit({ type: 'list-complete' });
    this.#opts.onChange();
  }

  /**
   * Announces `entries` in order, waiting only while the unanswered window or the socket is full. Without
   * --checksum a run of them is encoded into one batch of frames and goes out in one write (with TLS, full
   * records); a socket past its high-water mark is waited for between batches. With it, each file is
   * hashed first, one at a time.
   */
  async #announceAll(entries: readonly SourceEntry[]): Promise<void> {
    const control = this.#ctx.control;
    let next = 0;
    while (next < entries.length) {
      if (!this.#mayAnnounce() && !this.#granted) this.#reportHeld();
      while (!this.#mayAnnounce() && !this.#ctx.finished()) await this.#resolved.wait();
      if (this.#ctx.finished()) return;
      let turn: LimitVerdict = 'go';
      if (this.#opts.checksum) {
        turn = this.#limitTurn(entries[next]!);
        if (turn === 'go') await this.#announce(entries[next]!, 1);
        if (turn !== 'wait') next++;
      } else {
        const batch = this.#batch;
        while (next < entries.length && this.#mayAnnounce()) {
          turn = this.#limitTurn(entries[next]!);
          if (turn === 'wait') break;
          if (turn === 'go') batch.add(this.#register(entries[next]!, 1, undefined));
          next++;
        }
        if (!control.sendBatch(batch)) await control.drained();
      }
      // --limit: every file being decided might still be needed; the next waits for one that is not.
      if (turn === 'wait' && !this.#ctx.finished()) await this.#resolved.wait();
    }
  }

  /**
   * --limit's verdict on the next entry in walk order ('go' for what it does not count); a file it leaves
   * out is reported here as not sent.
   */
  #limitTurn(entry: SourceEntry): LimitVerdict {
    const limit = this.#opts.limit;
    if (limit === undefined || entry.kind !== 'file') return 'go';
    const turn = limit.admit();
    if (turn === 'leave-out') this.#ctx.emit({ type: 'not-sent', path: entry.rel, size: Number(entry.size) });
    return turn;
  }

  /** --limit: a file announced for the first time is decided (needed or not); its successor may go. */
  #decided(listed: Listed, needed: boolean): void {
    if (this.#opts.limit === undefined || attemptOf(listed) !== 1 || entryOf(listed).kind !== 'file') return;
    this.#opts.limit.decided(needed);
    this.#resolved.wake();
  }

  /** Whether one more entry may go out now: the unanswered window, and before SESSION its byte bound. */
  #mayAnnounce(): boolean {
    // A file being announced again holds the slot its first id left (the receiver counts it open from the
    // moment its new FILE_INFO arrives), so a re-announce can never take the window past LIST_WINDOW.
    const open = this.#unresolved.size + this.#announcing;
    if (this.#granted) return open < this.#window.size;
    // Frames encoded into the batch and not yet written count as sent.
    const sent = this.#ctx.control.messageBytesSent + this.#batch.length - this.#listBytesBase;
    return open < this.#preSessionEntries && sent < MAX_LIST_BYTES_BEFORE_SESSION;
  }

  /**
   * Reports that the list stops here until SESSION: called right where the loop decides to wait instead of
   * writing, so a listener knows every entry it was going to send before SESSION has been written.
   */
  #reportHeld(): void {
    if (this.#ctx.finished()) return;
    this.#ctx.emit({ type: 'list-held', entries: this.#nextId - 1 });
  }

  /** False (after a warning) for what cannot be sent: FIFOs, sockets, devices. */
  #listable(entry: SourceEntry): boolean {
    if (entry.kind !== 'other') return true;
    this.#ctx.warn(new FcpError('FCP_ERR_PATH_UNSUPPORTED', undefined, { path: entry.rel }));
    return false;
  }

  /** Announces an entry, with its content hash under --checksum; waits while the socket is full. */
  async #announce(entry: SourceEntry, attempt: number): Promise<void> {
    let checksum: bigint | undefined;
    if (this.#opts.checksum && entry.kind === 'file') {
      try {
        checksum = await this.#ctx.source.hashWhole(entry, this.#ctx.hasher);
      } catch (err) {
        if (attempt === 1) this.#opts.limit?.decided(false);
        this.#ctx.emit({ type: 'failed', path: entry.rel, error: toFcpError(err, entry.rel) });
        return;
      }
    }
    if (this.#ctx.finished()) return;
    if (!this.#announceNow(entry, attempt, checksum)) await this.#ctx.control.drained();
  }

  /** Sends DIR_INFO or FILE_INFO for a new id; false when the caller should wait for drained(). */
  #announceNow(entry: SourceEntry, attempt: number, checksum: bigint | undefined): boolean {
    return this.#ctx.control.send(this.#register(entry, attempt, checksum));
  }

  /** Takes a new id for `entry`, holding it unresolved; returns its DIR_INFO or FILE_INFO. */
  #register(entry: SourceEntry, attempt: number, checksum: bigint | undefined): DirInfoMsg | FileInfoMsg {
    const id = this.#nextId++;
    this.#unresolved.set(id, attempt === 1 ? entry : newSendFile(id, entry, attempt));
    if (attempt === 1) this.#ctx.emit({ type: 'listed', path: entry.rel, kind: listedKind(entry.kind) });
    return entry.kind === 'dir'
      ? {
          type: MsgType.DirInfo,
          id,
          mode: entry.mode,
          mtimeNs: entry.mtimeNs,
          path: entry.rel,
        }
      : {
          type: MsgType.FileInfo,
          id,
          kind: entry.kind === 'symlink' ? FileKind.Symlink : FileKind.File,
          mode: entry.mode,
          size: entry.kind === 'file' ? entry.size : 0n,
          mtimeNs: entry.mtimeNs,
          checksum,
          path: entry.rel,
          linkTarget: entry.linkTarget ?? '',
        };
  }

  /** Announces a file again under a new id, from a fresh lstat (it may have changed). */
  #reannounce(listed: Listed): void {
    const previous = entryOf(listed);
    this.#announcing++;
    this.#ctx.source
      .restat(previous)
      .then(async (st) => {
        if (st.kind !== 'file') throw new FcpError('FCP_ERR_FILE_CHANGED', 'no longer a regular file');
        const entry: SourceEntry = {
          ...previous,
          size: st.size,
          mtimeNs: st.mtimeNs,
          mode: st.mode,
        };
        await this.#announce(entry, attemptOf(listed) + 1);
      })
      .catch((err) => {
        this.#ctx.emit({ type: 'failed', path: previous.rel, error: toFcpError(err, previous.rel) });
      })
      .finally(() => {
        this.#announcing--;
        this.#resolved.wake();
        this.#opts.onChange();
      });
  }

  onFileHave(msg: FileHaveMsg): void {
    const listed = this.#unresolved.get(msg.id);
    if (listed === undefined || entryOf(listed).kind !== 'file') {
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `FILE_HAVE for id ${msg.id}, which is not an open file`);
    }
    const file = this.#wanted(msg.id, listed);
    file.have ??= new Uint8Array(file.pieces);
    for (let i = 0; i < msg.bitmap.length * 8; i++) {
      if ((msg.bitmap[i >> 3]! & (0x80 >> (i & 7))) === 0) continue;
      const seq = msg.firstSeq + i;
      if (seq >= file.pieces)
        throw new FcpError('FCP_ERR_PROTO_MALFORMED', `FILE_HAVE piece ${seq} past the end`);
      file.have[seq] = 1;
    }
  }

  /** The receiver's decisions: data wanted (handed to onWanted), skipped, or failed on its side. */
  onFileReady(msg: FileReadyMsg): void {
    for (const e of msg.entries) {
      const listed = this.#unresolved.get(e.id);
      if (listed === undefined)
        throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `FILE_READY for unknown id ${e.id}`);
      const entry = entryOf(listed);
      if (e.action === ReadyAction.Need || e.action === ReadyAction.Resume) {
        if (entry.kind !== 'file') continue; // a link or directory is settled by FILE_DONE alone
        const file = this.#wanted(e.id, listed);
        this.#window.dataWanted();
        if (e.action === ReadyAction.Need) file.have = undefined;
        file.resumed = file.have !== undefined;
        this.#decided(file, true);
        this.#opts.onWanted(file);
        continue;
      }
      this.#decided(listed, false);
      this.#window.settledWithoutData();
      this.#take(e.id);
      if (e.action === ReadyAction.Skip) {
        const size = listedSize(listed);
        this.#ctx.emit({ type: 'skipped', path: entry.rel, kind: listedKind(entry.kind), size });
      } else this.#failed(entry, e.code);
    }
  }

  /** FILE_DONE for one entry: written, failed for good, or damaged and worth another attempt. */
  onFileDone(id: number, code: number): void {
    const listed = this.#take(id);
    const entry = entryOf(listed);
    if (code === 0) {
      const resumedBytes = isSendFile(listed) && listed.resumed ? heldBytes(listed) : 0;
      this.#ctx.emit({
        type: 'finished',
        path: entry.rel,
        kind: listedKind(entry.kind),
        size: listedSize(listed),
        resumedBytes,
      });
      return;
    }
    if (RETRYABLE_FILE_CODES.has(code) && attemptOf(listed) < MAX_FILE_ATTEMPTS && !this.#ctx.finished()) {
      const why = new FcpError(codeFromWire(code), undefined, { path: entry.rel });
      this.#ctx.warn(new FcpError(why.code, `${why.message}; sending it again`, { path: entry.rel }));
      this.#reannounce(listed);
      return;
    }
    this.#failed(entry, code);
  }

  /** The unresolved entry `id` as a SendFile, made now if its data was not wanted before. */
  #wanted(id: number, listed: Listed): SendFile {
    if (isSendFile(listed)) return listed;
    const file = newSendFile(id, listed, 1);
    this.#unresolved.set(id, file);
    return file;
  }

  #take(id: number): Listed {
    const listed = this.#unresolved.get(id);
    if (listed === undefined)
      throw new FcpError('FCP_ERR_PROTO_UNEXPECTED', `answer for unknown or settled id ${id}`);
    this.#unresolved.delete(id);
    if (isSendFile(listed)) this.#opts.onSettled(listed);
    this.#resolved.wake();
    return listed;
  }

  #failed(entry: SourceEntry, wireCode: number): void {
    const error = new FcpError(codeFromWire(wireCode), undefined, { path: entry.rel });
    this.#ctx.emit({ type: 'failed', path: entry.rel, error });
  }
}
