/**
 * The reliability soak (issue 4; not run in CI): `node dist/bench/soak.js --sessions 300 --seconds 600`.
 *
 * Runs fcp transfers back to back against one fcpd on a fixed loopback port, and interrupts them at random:
 * the client SIGKILLed (the same command is then run again, as a user would), the daemon SIGKILLed and
 * restarted on its port (the client's --retries carries on), or the daemon sent SIGTERM (it lets the
 * session finish, exits, and is started again). Every transfer that ends with exit 0 has its destination
 * compared with the source (type, size, sha256, mode, mtime to the microsecond, no temporaries left).
 * Bounded in client runs (--sessions) and in time (--seconds); prints a summary and exits 1 on any failure.
 *
 * Options: --sessions N, --seconds S, --seed N, --kill-rate P (share of runs interrupted, default 0.5),
 * --keep (leave the temporary directory for inspection).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, link, lstat, mkdir, open, readdir, readFile, rm, utimes } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { prng } from './datasets.js';

const FCP = fileURLToPath(new URL('../src/cli/fcp.js', import.meta.url));
const FCPD = fileURLToPath(new URL('../src/cli/fcpd-launch.js', import.meta.url));
const HOST = '127.0.0.1';
const MiB = 1 << 20;
/** One client run may take this long before the soak gives up on it (SIGKILL, counted as a failure). */
const RUN_LIMIT_MS = 120_000;
/** A transfer is re-run after client kills at most this many times before it counts as failed. */
const MAX_RUNS_PER_TRANSFER = 8;
const READY_LIMIT_MS = 10_000;

interface Options {
  sessions: number;
  seconds: number;
  seed: number;
  killRate: number;
  keep: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      sessions: { type: 'string', default: '300' },
      seconds: { type: 'string', default: '600' },
      seed: { type: 'string', default: String(Date.now() % 1_000_000) },
      'kill-rate': { type: 'string', default: '0.5' },
      keep: { type: 'boolean', default: false },
    },
  });
  const o = {
    sessions: Number(values.sessions),
    seconds: Number(values.seconds),
    seed: Number(values.seed),
    killRate: Number(values['kill-rate']),
    keep: values.keep === true,
  };
  if (!(o.sessions > 0 && o.seconds > 0 && o.killRate >= 0 && o.killRate <= 1)) {
    throw new Error('--sessions and --seconds must be positive, --kill-rate between 0 and 1');
  }
  return o;
}

// ---- data sets ----------------------------------------------------------------------------------------

async function writeRandom(abs: string, size: number, mtimeSec: number): Promise<void> {
  const fh = await open(abs, 'w', 0o644);
  try {
    for (let left = size; left > 0;) {
      const chunk = randomBytes(Math.min(left, 4 * MiB));
      await fh.write(chunk);
      left -= chunk.length;
    }
  } finally {
    await fh.close();
  }
  await utimes(abs, mtimeSec, mtimeSec + 0.25);
}

/** Three shapes: one big file, many small files, and a mix of both with nested directories and modes. */
async function makeDatasets(base: string, rnd: () => number): Promise<Map<string, string>> {
  const sets = new Map<string, string>();
  const big = path.join(base, 'big');
  await mkdir(big, { recursive: true });
  await writeRandom(path.join(big, 'one.bin'), 96 * MiB, 1_700_000_000);
  sets.set('big', big);

  const small = path.join(base, 'small');
  for (let i = 0; i < 300; i++) {
    const dir = path.join(small, `d${i % 7}`, `e${i % 3}`);
    await mkdir(dir, { recursive: true });
    await writeRandom(path.join(dir, `f${i}.dat`), Math.floor(rnd() * 40_000), 1_700_000_100 + i);
  }
  sets.set('small', small);

  const mixed = path.join(base, 'mixed');
  await mkdir(path.join(mixed, 'sub', 'deep'), { recursive: true });
  for (let i = 0; i < 6; i++) {
    await writeRandom(
      path.join(mixed, i % 2 ? 'sub' : 'sub/deep', `m${i}.bin`),
      Math.floor((2 + rnd() * 14) * MiB),
      1_700_000_500 + i,
    );
  }
  for (let i = 0; i < 60; i++) {
    const abs = path.join(mixed, `s${i}.txt`);
    await writeRandom(abs, Math.floor(rnd() * 5000), 1_700_000_600 + i);
    if (i % 5 === 0) await chmod(abs, 0o600);
  }
  sets.set('mixed', mixed);
  return sets;
}

/** Hard-links a data set into the daemon's root so pulls read the same bytes (and mtimes). */
async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const e of await readdir(from, { withFileTypes: true })) {
    const a = path.join(from, e.name);
    const b = path.join(to, e.name);
    if (e.isDirectory()) await linkTree(a, b);
    else await link(a, b);
  }
}

// ---- verification --------------------------------------------------------------------------------------

async function sha256(abs: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(abs, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 * MiB);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

const hashCache = new Map<string, string>();

/** Differences between a source tree and its copy (files and directories under them, not the roots). */
async function verifyTree(src: string, dst: string): Promise<string[]> {
  const diffs: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const a = path.join(src, rel);
    const b = path.join(dst, rel);
    const [sa, sb] = await Promise.all([
      lstat(a, { bigint: true }),
      lstat(b, { bigint: true }).catch(() => undefined),
    ]);
    if (sb === undefined) {
      diffs.push(`${rel}: missing`);
      return;
    }
    if (sa.isDirectory()) {
      if (!sb.isDirectory()) diffs.push(`${rel}: not a directory`);
      const names = new Set([...(await readdir(a)), ...(await readdir(b))]);
      for (const name of names) {
        if (name.endsWith('.fcp-part') || name.endsWith('.fcp-meta'))
          diffs.push(`${rel}/${name}: temporary left`);
        else await walk(path.join(rel, name));
      }
      return;
    }
    if (!sb.isFile() || sa.size !== sb.size) {
      diffs.push(`${rel}: size ${sa.size} != ${sb.size}`);
      return;
    }
    if ((sa.mode & 0o7777n) !== (sb.mode & 0o7777n)) diffs.push(`${rel}: mode differs`);
    if (sa.mtimeNs / 1000n !== sb.mtimeNs / 1000n) diffs.push(`${rel}: mtime differs`);
    let ha = hashCache.get(a);
    if (ha === undefined) {
      ha = await sha256(a);
      hashCache.set(a, ha);
    }
    if (ha !== (await sha256(b))) diffs.push(`${rel}: content differs`);
  };
  try {
    await walk('.');
  } catch (err) {
    diffs.push(`walk failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return diffs;
}

// ---- processes -----------------------------------------------------------------------------------------

interface Proc {
  child: ChildProcess;
  out: string;
  err: string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Set<ChildProcess>();

function start(script: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  live.add(child);
  const p: Proc = {
    child,
    out: '',
    err: '',
    done: new Promise((resolve) => {
      child.once('close', (code, signal) => {
        live.delete(child);
        resolve({ code, signal });
      });
    }),
  };
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    p.out += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    // A daemon logs a line per session: keep the tail only, the soak can run for hours.
    p.err = (p.err + s).slice(-200_000);
  });
  return p;
}

async function bounded<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

async function kill(p: Proc, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
  if ((await bounded(p.done, 15_000)) === undefined) {
    p.child.kill('SIGKILL');
    await bounded(p.done, 5_000);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, HOST, () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

class Daemon {
  proc: Proc | undefined;
  starts = 0;
  readonly #port: number;
  readonly #root: string;
  readonly #env: NodeJS.ProcessEnv;

  constructor(port: number, root: string, env: NodeJS.ProcessEnv) {
    this.#port = port;
    this.#root = root;
    this.#env = env;
  }

  async start(): Promise<void> {
    // The old one may still hold the port for a moment after SIGKILL: try a few times.
    for (let attempt = 1; ; attempt++) {
      const p = start(
        FCPD,
        ['--port', String(this.#port), '--bind', HOST, '--root', this.#root, '--max-sessions', '32'],
        this.#env,
      );
      const deadline = Date.now() + READY_LIMIT_MS;
      while (!/fcpd listening on/.test(p.out) && p.child.exitCode === null && Date.now() < deadline) {
        await sleep(20);
      }
      if (/fcpd listening on/.test(p.out)) {
        this.proc = p;
        this.starts++;
        return;
      }
      await kill(p);
      if (attempt >= 5) throw new Error(`fcpd would not start on port ${this.#port}:\n${p.err}`);
      await sleep(200 * attempt);
    }
  }

  get pid(): number | undefined {
    return this.proc?.child.pid;
  }

  get alive(): boolean {
    return (
      this.proc !== undefined && this.proc.child.exitCode === null && this.proc.child.signalCode === null
    );
  }
}

function procFigures(pid: number | undefined): { fds: number; rssMiB: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { fds, rssMiB: m === null ? Number.NaN : Math.round(Number(m[1]) / 1024) };
  } catch {
    return undefined;
  }
}

// ---- the soak ------------------------------------------------------------------------------------------

interface Tally {
  runs: number;
  transfers: number;
  verified: number;
  clientKills: number;
  daemonKills: number;
  daemonTerms: number;
  /** Runs whose summary reported bytes resumed from an interrupted run. */
  resumes: number;
  resumedBytes: number;
  /** A run after an interruption that had left pieces on disk, yet resumed nothing. */
  resumeMissed: number;
  /** Runs that found the daemon down before their first connection (exit 4, not retried by design). */
  refusedFirst: number;
  failures: string[];
}

const RESUMED = /, ([\d.]+) (B|KiB|MiB|GiB) resumed \(not sent again\)/;
const UNIT: Readonly<Record<string, number>> = { B: 1, KiB: 1024, MiB, GiB: 1024 * MiB };

/** True when some piece index under `dir` records a written piece (spec/PROTOCOL.md §7.1): a resume is due. */
async function hasRecordedPieces(dir: string): Promise<boolean> {
  let names: string[];
  try {
    names = await readdir(dir, { recursive: true });
  } catch {
    return false;
  }
  for (const name of names.filter((n) => n.endsWith('.fcp-meta'))) {
    const buf = await readFile(path.join(dir, name)).catch(() => Buffer.alloc(0));
    for (let at = 32 + 8; at < buf.length; at += 16) if (buf[at] === 1) return true;
  }
  return false;
}

async function main(): Promise<void> {
  const opts = options();
  const rnd = prng(opts.seed);
  const base = mkdtempSync(path.join(os.tmpdir(), 'fcp-soak-'));
  const root = path.join(base, 'root');
  const local = path.join(base, 'local');
  mkdirSync(root);
  mkdirSync(local);
  const env = { ...process.env, FCPD_STATE_DIR: path.join(base, 'state') };
  const stopAll = async () => {
    for (const c of live) c.kill('SIGKILL');
    if (!opts.keep) await rm(base, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stopAll().finally(() => process.exit(130)));

  console.log(`soak: seed ${opts.seed}, up to ${opts.sessions} client runs or ${opts.seconds} s, in ${base}`);
  const sets = await makeDatasets(path.join(base, 'data'), rnd);
  for (const [name, dir] of sets) await linkTree(dir, path.join(root, 'pullsrc', name));
  const port = await freePort();
  const daemon = new Daemon(port, root, env);
  await daemon.start();
  const first = procFigures(daemon.pid);

  const tally: Tally = {
    runs: 0,
    transfers: 0,
    verified: 0,
    clientKills: 0,
    daemonKills: 0,
    daemonTerms: 0,
    resumes: 0,
    resumedBytes: 0,
    resumeMissed: 0,
    refusedFirst: 0,
    failures: [],
  };
  const started = Date.now();
  const timeLeft = () => Date.now() - started < opts.seconds * 1000;
  const names = [...sets.keys()];

  try {
    while (tally.runs < opts.sessions && timeLeft()) {
      const set = names[Math.floor(rnd() * names.length)]!;
      const direction = rnd() < 0.6 ? 'push' : 'pull';
      const n = 1 + Math.floor(rnd() * 8);
      const slot = `${set}-${tally.transfers}`;
      tally.transfers++;
      const srcDir = sets.get(set)!;
      // Both ways the destination is `slot` holding the data set's contents.
      const destAbs = direction === 'push' ? path.join(root, 'got', slot) : path.join(local, slot);
      await mkdir(path.dirname(destAbs), { recursive: true });
      const args =
        direction === 'push'
          ? [`${srcDir}/`, `${HOST}:${port}:got/${slot}`]
          : [`${HOST}:${port}:pullsrc/${set}/`, destAbs];
      let done = false;
      let interrupted = false;
      for (let attempt = 1; attempt <= MAX_RUNS_PER_TRANSFER && tally.runs < opts.sessions; attempt++) {
        if (!daemon.alive) await daemon.start();
        const hadPartials = interrupted && (await hasRecordedPieces(destAbs));
        const client = start(
          FCP,
          [direction, '-n', String(n), '--retries', '10', '--retry-wait', '0.2', ...args],
          env,
        );
        tally.runs++;
        // The last attempt always runs to the end, so every transfer is eventually verified.
        const action = attempt < MAX_RUNS_PER_TRANSFER && rnd() < opts.killRate ? rnd() : undefined;
        let daemonStopped = false;
        if (action !== undefined) {
          const delay = Math.floor(rnd() * 1500);
          const finishedEarly = await bounded(client.done, delay);
          if (finishedEarly === undefined) {
            if (action < 0.5) {
              await kill(client);
              tally.clientKills++;
              interrupted = true;
            } else if (action < 0.85 && daemon.proc !== undefined) {
              await kill(daemon.proc);
              tally.daemonKills++;
              daemonStopped = true;
              await sleep(Math.floor(rnd() * 500));
              await daemon.start();
            } else if (daemon.proc !== undefined) {
              // Graceful: the session is allowed to finish; the next one gets a fresh daemon.
              await kill(daemon.proc, 'SIGTERM');
              tally.daemonTerms++;
              daemonStopped = true;
              await daemon.start();
            }
          }
        }
        const r = await bounded(client.done, RUN_LIMIT_MS);
        if (r === undefined) {
          await kill(client);
          tally.failures.push(
            `${slot} (${direction} -n ${n}) run ${attempt}: no end within ${RUN_LIMIT_MS} ms`,
          );
          break;
        }
        const m = RESUMED.exec(client.out);
        if (m !== null) {
          tally.resumes++;
          tally.resumedBytes += Number(m[1]) * UNIT[m[2]!]!;
        } else if (hadPartials && r.code === 0) {
          tally.resumeMissed++;
        }
        if (r.signal === 'SIGKILL') continue;
        if (
          r.code === 4 &&
          daemonStopped &&
          /cannot connect/.test(client.err) &&
          !/retrying/.test(client.err)
        ) {
          // The daemon went down before this client's first connection: fcp does not retry a refusal it
          // never got past (spec/PROTOCOL.md §7.2), by design. The user runs it again; so do we.
          tally.refusedFirst++;
          interrupted = true;
          continue;
        }
        if (r.code !== 0) {
          tally.failures.push(
            `${slot} (${direction} -n ${n}) run ${attempt}: exit ${r.code}: ${client.err.trim().split('\n').slice(-3).join(' | ')}`,
          );
          // The user would run it again; so do we, within the bound.
          interrupted = true;
          continue;
        }
        done = true;
        break;
      }
      if (!done) {
        if (tally.runs >= opts.sessions || !timeLeft()) break;
        tally.failures.push(`${slot}: not completed in ${MAX_RUNS_PER_TRANSFER} runs`);
        continue;
      }
      const diffs = await verifyTree(srcDir, destAbs);
      if (diffs.length > 0)
        tally.failures.push(`${slot} (${direction} -n ${n}): ${diffs.slice(0, 5).join('; ')}`);
      else tally.verified++;
      // Keep the disk bounded: a verified copy is not needed any more.
      await rm(destAbs, { recursive: true, force: true });
      if (tally.transfers % 10 === 0) {
        const f = procFigures(daemon.pid);
        console.log(
          `soak: ${tally.runs} runs, ${tally.verified} verified, ${tally.clientKills + tally.daemonKills + tally.daemonTerms} interruptions, ${tally.failures.length} failures${f ? `, fcpd fds ${f.fds} RSS ${f.rssMiB} MiB` : ''}`,
        );
      }
    }
  } finally {
    const last = procFigures(daemon.pid);
    const secs = ((Date.now() - started) / 1000).toFixed(0);
    console.log('');
    console.log(`soak summary (seed ${opts.seed}, ${secs} s)`);
    console.log(`  client runs:                     ${tally.runs}`);
    console.log(`  transfers / verified trees:      ${tally.transfers} / ${tally.verified}`);
    console.log(
      `  kills: client SIGKILL ${tally.clientKills}, daemon SIGKILL ${tally.daemonKills}, daemon SIGTERM ${tally.daemonTerms}`,
    );
    console.log(
      `  resumes: ${tally.resumes} runs resumed ${(tally.resumedBytes / MiB).toFixed(0)} MiB; missed ${tally.resumeMissed}`,
    );
    console.log(`  daemon starts: ${daemon.starts}; runs refused before connecting: ${tally.refusedFirst}`);
    if (first && last) {
      console.log(
        `  fcpd (first start -> now): fds ${first.fds} -> ${last.fds}, RSS ${first.rssMiB} -> ${last.rssMiB} MiB`,
      );
    }
    console.log(`  failures: ${tally.failures.length}`);
    for (const f of tally.failures.slice(0, 20)) console.log(`    ${f}`);
    if (daemon.proc) await kill(daemon.proc, 'SIGTERM');
    await stopAll();
    if (opts.keep) console.log(`  kept ${base}`);
  }
  process.exit(tally.failures.length > 0 ? 1 : 0);
}

main().catch((err) => {
  console.error(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  for (const c of live) c.kill('SIGKILL');
  process.exit(1);
});
