// Tools for the reliability suites (issue 4): a fcpd child on a port of our choosing that can be SIGKILLed
// and restarted on the same port, an fcp child that can be killed mid-transfer, the piece index read from
// outside (spec/PROTOCOL.md §7.1), the daemon's per-session log lines parsed into byte counts, and /proc
// figures. Every wait is bounded; nothing here asserts on time.
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { open, readdir, readFile, utimes } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FCP_BIN, FCPD_BIN, type RunResult, spawnNode } from './cli.js';
import type { Direction, ProxyConnection } from './fault-proxy.js';

export const MiB = 1 << 20;
/** spec/PROTOCOL.md §4: version 1 pieces. */
export const PIECE = MiB;
export const HOST = '127.0.0.1';

const READY_LINE = /^fcpd listening on 127\.0\.0\.1:(\d+)$/m;
const READY_TIMEOUT_MS = 10_000;
const KILL_TIMEOUT_MS = 5_000;
const STDIO_GRACE_MS = 2_000;
const META_HEADER = 32;
const META_RECORD = 16;

/** Resolves when `ready()` holds, polling every `everyMs`; rejects after `timeoutMs`. */
export async function waitUntil(
  ready: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs: number,
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Rejects with a clear message if `p` has not settled within `ms`. */
export async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Writes `size` random bytes (incompressible, every piece different) with a fixed whole-second mtime. */
export async function writeRandomFile(abs: string, size: number, mtimeSec = 1_700_000_000): Promise<void> {
  const fh = await open(abs, 'w', 0o644);
  try {
    for (let left = size; left > 0;) {
      const chunk = randomBytes(Math.min(left, 4 * MiB));
      let written = 0;
      while (written < chunk.length) written += (await fh.write(chunk, written)).bytesWritten;
      left -= chunk.length;
    }
  } finally {
    await fh.close();
  }
  await utimes(abs, mtimeSec, mtimeSec);
}

export async function sha256File(abs: string): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(abs, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 * MiB);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

/** The temporary file and piece index of `dest` (spec/PROTOCOL.md §6.2, §7.1). */
export function partialOf(dest: string): { part: string; meta: string } {
  const dir = path.dirname(dest);
  const name = path.basename(dest);
  return { part: path.join(dir, `.${name}.fcp-part`), meta: path.join(dir, `.${name}.fcp-meta`) };
}

/** Piece numbers the index records as written (state 1); empty when there is no index yet. */
export async function recordedPieces(metaAbs: string): Promise<number[]> {
  let buf: Buffer;
  try {
    buf = await readFile(metaAbs);
  } catch {
    return [];
  }
  if (buf.length < META_HEADER || buf.toString('latin1', 0, 8) !== 'FCPMETA1') return [];
  const out: number[] = [];
  for (let seq = 0; META_HEADER + (seq + 1) * META_RECORD <= buf.length; seq++) {
    if (buf[META_HEADER + seq * META_RECORD + 8] === 1) out.push(seq);
  }
  return out;
}

/** Bytes covered by pieces `seqs` of a file of `size` bytes (the last piece may be short). */
export function piecesBytes(seqs: readonly number[], size: number): number {
  return seqs.reduce((n, seq) => n + Math.max(0, Math.min(PIECE, size - seq * PIECE)), 0);
}

/**
 * The recorded pieces once the index has stopped changing (two reads `gapMs` apart agree): writes that were
 * in flight when a session died may still land just after it.
 */
export async function settledRecordedPieces(metaAbs: string, gapMs = 100): Promise<number[]> {
  let last = await recordedPieces(metaAbs);
  for (let i = 0; i < 50; i++) {
    await sleep(gapMs);
    const now = await recordedPieces(metaAbs);
    if (now.length === last.length) return now;
    last = now;
  }
  throw new Error(`${metaAbs} kept changing`);
}

/** Names of fcp temporaries (.fcp-part, .fcp-meta) anywhere under `root`. */
export async function leftoverTemporaries(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true });
  return entries.filter((e) => e.endsWith('.fcp-part') || e.endsWith('.fcp-meta')).sort();
}

/** One "session done" / "session failed" line of fcpd's log. */
export interface SessionLine {
  kind: 'push' | 'pull';
  ok: boolean;
  sent: number;
  skipped: number;
  failed: number;
  /** Bytes of file data this session's engine counted: received on push, acknowledged on pull. */
  bytes: number;
  line: string;
}

const SESSION_END =
  /(push|pull): session (done|failed)[^\n]*?\((\d+) sent, (\d+) skipped, (\d+) failed, (\d+) bytes, [\d.]+ s\)$/gm;

export function sessionEnds(log: string): SessionLine[] {
  return [...log.matchAll(SESSION_END)].map((m) => ({
    kind: m[1] as 'push' | 'pull',
    ok: m[2] === 'done',
    sent: Number(m[3]),
    skipped: Number(m[4]),
    failed: Number(m[5]),
    bytes: Number(m[6]),
    line: m[0],
  }));
}

/** Sessions the daemon started: each is one line, written at its end (README; -v adds a start line). */
export function sessionStarts(log: string): number {
  return sessionEnds(log).length;
}

const IEC: Readonly<Record<string, number>> = { B: 1, KiB: 1024, MiB: MiB, GiB: 1024 * MiB };

/** "95.0 MiB" -> bytes (as precise as the 3 printed digits). */
export function parseIec(text: string): number {
  const m = /^([\d.]+) (B|KiB|MiB|GiB)$/.exec(text.trim());
  if (m === null) throw new Error(`not a size: ${JSON.stringify(text)}`);
  return Number(m[1]) * IEC[m[2]!]!;
}

/** Bytes sent and bytes resumed from fcp's summary line; undefined without one. */
export function summaryBytes(stdout: string): { sent: number; resumed: number } | undefined {
  const m = /^fcp: [\d,]+ files? sent, [\d,]+ skipped, [\d,]+ failed, (.+?) in [^\n]*$/m.exec(stdout);
  if (m === null) return undefined;
  const resumed = /, (\S+ \S+) resumed \(not sent again\)$/m.exec(m[0]);
  return { sent: parseIec(m[1]!), resumed: resumed === null ? 0 : parseIec(resumed[1]!) };
}

/** A child process whose output is collected; `done` resolves like cli.ts's runNode. */
export interface RunningChild {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  done: Promise<RunResult>;
  /** SIGKILL now (if still running) and wait for it to be gone. */
  kill(): Promise<RunResult>;
}

function runChild(script: string, args: readonly string[], env: Record<string, string>, timeoutMs: number) {
  const started = performance.now();
  const child = spawnNode(script, args, { env });
  let out = '';
  let err = '';
  let timedOut = false;
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const done = new Promise<RunResult>((resolve, reject) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: out, stderr: err, timedOut, durationMs: performance.now() - started });
    };
    child.once('error', reject);
    // 'close' comes once stdout and stderr are read to their end; a grandchild that inherited them could
    // hold that back forever, so 'exit' plus a grace period settles it too.
    child.once('close', finish);
    child.once('exit', (code, signal) => {
      setTimeout(() => finish(code, signal), STDIO_GRACE_MS).unref();
    });
  });
  done.catch(() => {});
  const running: RunningChild = {
    child,
    stdout: () => out,
    stderr: () => err,
    done,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return bounded(done, KILL_TIMEOUT_MS, `pid ${child.pid} to die after SIGKILL`);
    },
  };
  return running;
}

/**
 * Starts `fcp ARGS` (`env` added to its environment) and returns at once; killed with SIGKILL after
 * `timeoutMs` if still running.
 */
export function startFcp(
  args: readonly string[],
  timeoutMs: number,
  env: Record<string, string> = {},
): RunningChild {
  return runChild(FCP_BIN, args, env, timeoutMs);
}

export interface Fcpd extends RunningChild {
  port: number;
  pid: number;
  remote(p: string): string;
  /** Signal, then wait (SIGKILL after `ms`); resolves with how it ended. */
  stop(signal?: NodeJS.Signals, ms?: number): Promise<RunResult>;
}

/**
 * Starts fcpd on `port` (0 for any) serving `root`, with its state (pid file, partials.jsonl) in
 * `stateDir`, and waits for its readiness line. Killing it and starting another on the same port is how the
 * tests restart a daemon.
 */
export async function startFcpd(opts: {
  root: string;
  stateDir: string;
  port?: number;
  args?: readonly string[];
}): Promise<Fcpd> {
  const args = ['--port', String(opts.port ?? 0), '--bind', HOST, '--root', opts.root, ...(opts.args ?? [])];
  // A daemon has no natural end: the harness timeout is only a backstop against a leak.
  const run = runChild(FCPD_BIN, args, { FCPD_STATE_DIR: opts.stateDir }, 10 * 60_000);
  let port: number;
  try {
    await Promise.race([
      waitUntil(() => READY_LINE.test(run.stdout()), 'fcpd readiness line', READY_TIMEOUT_MS),
      run.done.then((r) => {
        throw new Error(`fcpd exited before it was ready (${r.code}/${r.signal}):\n${r.stderr}`);
      }),
    ]);
    port = Number(READY_LINE.exec(run.stdout())![1]);
  } catch (err) {
    await run.kill().catch(() => {});
    throw err;
  }
  return {
    ...run,
    port,
    pid: run.child.pid!,
    remote: (p) => `${HOST}:${port}:${p}`,
    async stop(signal: NodeJS.Signals = 'SIGTERM', ms = 15_000) {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill(signal);
      try {
        return await bounded(run.done, ms, `fcpd to exit after ${signal}`);
      } catch {
        return run.kill();
      }
    },
  };
}

/** Open descriptors of a live process (Linux /proc). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident set size of a live process in KiB (Linux /proc). */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Number(m[1]);
}

const FRAME_HEADER = 7;

interface StreamState {
  pos: number;
  header: number[];
  type: number;
  payloadLeft: number;
}

/**
 * Follows the frames (spec/PROTOCOL.md §2) of every proxied stream through the fault proxy's tap: which
 * message types went by, and which frame held a given stream offset. The tap sees bytes after the faults,
 * so a stream is trusted only up to its first corrupted header.
 */
export class FrameSpy {
  readonly #streams = new Map<string, StreamState>();
  readonly #seen = new Set<string>();
  readonly #marks = new Map<string, { offset: number; type: number | undefined; inPayload: boolean }>();

  /** Pass as the proxy's onForward. */
  readonly tap = (connection: ProxyConnection, direction: Direction, chunk: Buffer): void => {
    const key = `${connection.index}/${direction}`;
    let st = this.#streams.get(key);
    if (st === undefined) {
      st = { pos: 0, header: [], type: 0, payloadLeft: 0 };
      this.#streams.set(key, st);
    }
    const mark = this.#marks.get(key);
    for (let i = 0; i < chunk.length;) {
      if (st.payloadLeft > 0) {
        const n = Math.min(st.payloadLeft, chunk.length - i);
        if (mark !== undefined && mark.offset >= st.pos && mark.offset < st.pos + n) {
          mark.type = st.type;
          mark.inPayload = true;
        }
        st.pos += n;
        i += n;
        st.payloadLeft -= n;
        continue;
      }
      if (mark !== undefined && mark.offset === st.pos) mark.type = chunk[i]!;
      st.header.push(chunk[i]!);
      st.pos++;
      i++;
      if (st.header.length === FRAME_HEADER) {
        st.type = st.header[0]!;
        st.payloadLeft = (st.header[5]! << 8) | st.header[6]!;
        st.header = [];
        this.#seen.add(`${key}/${st.type}`);
      }
    }
  };

  /** Remembers which frame will hold byte `offset` of a stream; call before the bytes flow. */
  watchOffset(connection: number, direction: Direction, offset: number): void {
    this.#marks.set(`${connection}/${direction}`, { offset, type: undefined, inPayload: false });
  }

  /** The type of the frame that held the watched offset, and whether the byte was in its payload. */
  frameAt(connection: number, direction: Direction): { type: number | undefined; inPayload: boolean } {
    const mark = this.#marks.get(`${connection}/${direction}`);
    return { type: mark?.type, inPayload: mark?.inPayload ?? false };
  }

  /** True once a frame of `type` went by on that stream. */
  saw(connection: number, direction: Direction, type: number): boolean {
    return this.#seen.has(`${connection}/${direction}/${type}`);
  }
}
