/**
 * Writes one file's verified pieces to its temporary file: one write in flight per file, and the pieces that
 * queued up meanwhile go out together, each run of consecutive pieces as one positioned writev, its piece
 * index records as one more write.
 *
 * Why one at a time: buffered writes to one file hold its inode lock exclusively (ext4, xfs and tmpfs
 * alike), so parallel writes to the same file gain nothing, and the waiting thread-pool threads spin on the
 * lock, burning CPU the network side needs. Why coalesce: every async fs call is a thread-pool wake-up,
 * which costs tens to hundreds of microseconds on a VM; eight connections deliver pieces of a big file
 * roughly in order, so a queue of them is mostly one run.
 */
import type { FileHandle } from 'node:fs/promises';
import { PIECE_SIZE } from '../../protocol/index.js';
import type { PieceIndex } from './piece-index.js';
import { writevFully } from './vector-io.js';

/** At most this many pieces in one writev (well under IOV_MAX = 1024). */
const MAX_RUN_PIECES = 16;

interface Queued {
  seq: number;
  data: Buffer;
  hash: bigint;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface PieceWriterTarget {
  /** The temporary file, opened on first use. */
  open(): Promise<FileHandle>;
  /** The piece index to record written pieces in, if the file keeps one. */
  index(): Promise<PieceIndex> | undefined;
}

export class PieceWriter {
  readonly #target: PieceWriterTarget;
  #queue: Queued[] = [];
  #busy = false;
  #stopped: Error | undefined;

  constructor(target: PieceWriterTarget) {
    this.#target = target;
  }

  /**
   * Queues piece `seq`; resolves once its bytes are written and its index record is queued behind them.
   * `data` must stay untouched until then.
   */
  write(seq: number, data: Buffer, hash: bigint): Promise<void> {
    if (this.#stopped !== undefined) return Promise.reject(this.#stopped);
    return new Promise((resolve, reject) => {
      this.#queue.push({ seq, data, hash, resolve, reject });
      if (!this.#busy) void this.#drain();
    });
  }

  /**
   * The file is closed or given up on: queued pieces are rejected with `err` and nothing new starts (a
   * queued write must never reopen, and so truncate, a temporary file kept for resume). A run already in
   * flight finishes on the descriptor it has.
   */
  stop(err: Error): void {
    this.#stopped ??= err;
    const queued = this.#queue;
    this.#queue = [];
    for (const p of queued) p.reject(err);
  }

  async #drain(): Promise<void> {
    this.#busy = true;
    try {
      while (this.#queue.length > 0 && this.#stopped === undefined) {
        const batch = this.#queue;
        this.#queue = [];
        batch.sort((a, b) => a.seq - b.seq);
        for (let i = 0; i < batch.length;) {
          let j = i + 1;
          while (j < batch.length && j - i < MAX_RUN_PIECES && batch[j]!.seq === batch[j - 1]!.seq + 1) j++;
          const run = batch.slice(i, j);
          if (this.#stopped !== undefined) {
            // Stopped while an earlier run of this batch was being written.
            for (const p of run) p.reject(this.#stopped);
            i = j;
            continue;
          }
          try {
            await this.#writeRun(run);
            for (const p of run) p.resolve();
          } catch (err) {
            for (const p of run) p.reject(err);
          }
          i = j;
        }
      }
    } finally {
      this.#busy = false;
    }
  }

  async #writeRun(run: Queued[]): Promise<void> {
    const fh = await this.#target.open();
    const index = this.#target.index();
    await writevFully(
      fh,
      run.map((p) => p.data),
      run[0]!.seq * PIECE_SIZE,
    );
    if (index !== undefined) {
      await (
        await index
      ).recordRun(
        run[0]!.seq,
        run.map((p) => p.hash),
      );
    }
  }
}
