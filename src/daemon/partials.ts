/**
 * Partial files the daemon kept for resume (a push that was interrupted), and their expiry. Each kept
 * partial is appended to `<state dir>/partials.jsonl` (partial-record.ts); a sweep at start-up and every
 * hour removes those whose files have not changed for `maxAgeMs` (README "Resume"), and forgets entries
 * that are gone. Both reach the files from the served root down without following a link
 * (partial-walk.ts, spec/SECURITY.md §11 "The partial sweep").
 */
import { appendFile, mkdir, readFile, realpath, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SweptDir, type SeenFile } from './partial-walk.js';
import { formatRecord, type PartialRecord, parseRecord, recordPath, recordUnder } from './partial-record.js';

const SWEEP_INTERVAL_MS = 60 * 60 * 1000;

type Outcome = 'kept' | 'removed' | 'gone';

export class PartialRegistry {
  readonly #file: string;
  readonly #maxAgeMs: number;
  readonly #log: (line: string) => void;
  readonly #servedRoot: string;
  #timer: NodeJS.Timeout | undefined;
  #writes: Promise<void> = Promise.resolve();

  /** `servedRoot`: the daemon's --root, or '/' when it serves its account's whole view. */
  constructor(stateDir: string, maxAgeMs: number, log: (line: string) => void, servedRoot = '/') {
    this.#file = path.join(stateDir, 'partials.jsonl');
    this.#maxAgeMs = maxAgeMs;
    this.#log = log;
    this.#servedRoot = path.resolve(servedRoot);
  }

  /**
   * Remembers a partial kept at these absolute paths (the receiver's, under the served root), with the
   * identity of its files now. Writes are serialised so lines never interleave.
   */
  record(tempAbs: string, sidecarAbs: string): void {
    this.#writes = this.#writes
      .then(async () => {
        const root = await realpath(this.#servedRoot);
        const record = recordUnder(root, tempAbs, sidecarAbs);
        if (record === undefined) throw new Error(`not under the served root ${root}`);
        const line = formatRecord(identified(record));
        await mkdir(path.dirname(this.#file), { recursive: true, mode: 0o700 });
        await appendFile(this.#file, line, { mode: 0o600 });
      })
      .catch((err: Error) => this.#log(`cannot record partial ${tempAbs}: ${err.message}`));
  }

  /** Sweeps now and then every hour. */
  start(): void {
    void this.sweep();
    this.#timer = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  /** Removes expired partials; returns how many were removed. */
  async sweep(nowMs = Date.now()): Promise<number> {
    let removed = 0;
    await (this.#writes = this.#writes.then(async () => {
      let text: string;
      let root: string;
      try {
        text = await readFile(this.#file, 'utf8');
        root = await realpath(this.#servedRoot);
      } catch {
        return; // no record yet, or no root to sweep under (the file stays as it is)
      }
      const keep = new Map<string, string>();
      for (const line of text.split('\n')) {
        const record = line.trim() === '' ? undefined : parseRecord(line, root);
        if (record === undefined) continue;
        if (record === 'other') {
          keep.set(line, `${line}\n`); // another root's: not ours to sweep, nor to forget
          continue;
        }
        const outcome = this.#sweepOne(record, nowMs);
        if (outcome === 'kept') keep.set(recordPath(record), formatRecord(record));
        if (outcome === 'removed') removed++;
      }
      await writeFile(`${this.#file}.tmp`, [...keep.values()].join(''), { mode: 0o600 });
      await rename(`${this.#file}.tmp`, this.#file);
    }));
    return removed;
  }

  /** One record: its directory held from the root down; only the files it recorded are aged and removed. */
  #sweepOne(record: PartialRecord, nowMs: number): Outcome {
    let dir: SweptDir;
    try {
      dir = SweptDir.open(record.root, record.dir);
    } catch (err) {
      this.#log(`partial record dropped, not swept: ${recordPath(record)}: ${(err as Error).message}`);
      return 'gone';
    }
    try {
      const ours = recordedFiles(dir, record);
      if (ours.length === 0) return 'gone'; // resumed, committed or removed by hand
      const newest = Math.max(...ours.map(([, seen]) => seen.mtimeMs));
      if (nowMs - newest < this.#maxAgeMs) return 'kept';
      for (const [name] of ours) dir.remove(name);
      this.#log(`removed stale partial ${recordPath(record)}`);
      return 'removed';
    } finally {
      dir.close();
    }
  }
}

/** The record's files that are still there and still the ones it names (same device and inode). */
function recordedFiles(dir: SweptDir, record: PartialRecord): Array<[string, SeenFile]> {
  const found: Array<[string, SeenFile]> = [];
  for (const [name, id] of [
    [record.temp, record.tempId],
    [record.sidecar, record.sidecarId],
  ] as const) {
    const seen = dir.look(name);
    if (seen !== undefined && (id === undefined || id === seen.id)) found.push([name, seen]);
  }
  return found;
}

/** `record` with the ids of its files as they are now, looked up from the root down like the sweep. */
function identified(record: PartialRecord): PartialRecord {
  const dir = SweptDir.open(record.root, record.dir);
  try {
    const temp = dir.look(record.temp);
    const sidecar = dir.look(record.sidecar);
    if (temp === undefined && sidecar === undefined) throw new Error('no such files');
    // A half not there yet (its open still under way) is later swept by name, inside the root all the same.
    return {
      ...record,
      ...(temp === undefined ? {} : { tempId: temp.id }),
      ...(sidecar === undefined ? {} : { sidecarId: sidecar.id }),
    };
  } finally {
    dir.close();
  }
}
