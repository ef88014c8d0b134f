/**
 * Partial files the daemon kept for resume (a push that was interrupted), and their expiry. Each kept
 * partial is appended to `<state dir>/partials.jsonl`; a sweep at start-up and every hour removes those whose
 * piece index has not changed for `maxAgeMs` (README "Resume"), and forgets entries that are gone.
 */
import { appendFile, lstat, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

const SWEEP_INTERVAL_MS = 60 * 60 * 1000;
const KEPT_SUFFIXES = ['.fcp-part', '.fcp-meta'];

interface Entry {
  temp: string;
  sidecar: string;
}

export class PartialRegistry {
  readonly #file: string;
  readonly #maxAgeMs: number;
  readonly #log: (line: string) => void;
  #timer: NodeJS.Timeout | undefined;
  #writes: Promise<void> = Promise.resolve();

  constructor(stateDir: string, maxAgeMs: number, log: (line: string) => void) {
    this.#file = path.join(stateDir, 'partials.jsonl');
    this.#maxAgeMs = maxAgeMs;
    this.#log = log;
  }

  /** Remembers a kept partial. Writes are serialised so lines never interleave. */
  record(temp: string, sidecar: string): void {
    const line = `${JSON.stringify({ temp, sidecar } satisfies Entry)}\n`;
    this.#writes = this.#writes
      .then(async () => {
        await mkdir(path.dirname(this.#file), { recursive: true, mode: 0o700 });
        await appendFile(this.#file, line, { mode: 0o600 });
      })
      .catch((err: Error) => this.#log(`cannot record partial ${temp}: ${err.message}`));
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
      try {
        text = await readFile(this.#file, 'utf8');
      } catch {
        return;
      }
      const keep = new Map<string, Entry>();
      for (const line of text.split('\n')) {
        const entry = parseEntry(line);
        if (entry === undefined) continue;
        const age = await ageMs(entry, nowMs);
        if (age === undefined) continue; // already gone: resumed, committed or removed by hand
        if (age < this.#maxAgeMs) {
          keep.set(entry.temp, entry);
          continue;
        }
        await unlinkQuiet(entry.temp);
        await unlinkQuiet(entry.sidecar);
        removed++;
        this.#log(`removed stale partial ${entry.temp}`);
      }
      const rest = [...keep.values()].map((e) => `${JSON.stringify(e)}\n`).join('');
      await writeFile(`${this.#file}.tmp`, rest, { mode: 0o600 });
      await rename(`${this.#file}.tmp`, this.#file);
    }));
    return removed;
  }
}

function parseEntry(line: string): Entry | undefined {
  if (line.trim() === '') return undefined;
  try {
    const e = JSON.parse(line) as Partial<Entry>;
    if (typeof e.temp !== 'string' || typeof e.sidecar !== 'string') return undefined;
    // Only ever remove what the daemon itself names as temporaries.
    if (
      !KEPT_SUFFIXES.some((s) => e.temp!.endsWith(s)) ||
      !KEPT_SUFFIXES.some((s) => e.sidecar!.endsWith(s))
    ) {
      return undefined;
    }
    return { temp: e.temp, sidecar: e.sidecar };
  } catch {
    return undefined;
  }
}

/** Age of the newest of the two files, or undefined when neither exists any more. */
async function ageMs(entry: Entry, nowMs: number): Promise<number | undefined> {
  let newest: number | undefined;
  for (const p of [entry.temp, entry.sidecar]) {
    try {
      const st = await lstat(p);
      if (!st.isFile()) continue;
      newest = Math.max(newest ?? 0, st.mtimeMs);
    } catch {
      // missing: that half is gone
    }
  }
  return newest === undefined ? undefined : nowMs - newest;
}

async function unlinkQuiet(p: string): Promise<void> {
  try {
    const st = await lstat(p);
    if (st.isFile()) await unlink(p);
  } catch {
    // gone already
  }
}
