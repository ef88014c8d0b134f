/**
 * A V8 code cache for the two programs node would otherwise compile at every start: bin/fcp-main.cjs (the
 * client) and the rest of fcpd (embedded-body.ts). node 20 has no `module.enableCompileCache()` (22.1), but
 * `new vm.Script(code, { cachedData })` takes what `script.createCachedData()` gave an earlier run: made at
 * exit, it holds every function that run compiled, so a later run neither parses the bundle nor compiles
 * those functions again (README "What it costs" has the figures).
 *
 * A cache file is named by a hash of the bundle's bytes, node's version, the platform and every way V8's
 * flags are given, so another build or node never meets it; V8 refuses data made under other flags or
 * another V8 (`cachedDataRejected`), and an unusable file is replaced at exit. V8 checks no checksum of
 * what it deserialises (only in debug builds), so each file carries the SHA-256 of its data, and one that
 * does not match (a torn write, a damaged disk) is never given to V8. The directory and each file are
 * this user's alone (compile-cache-dir.ts, spec/SECURITY.md): what V8 runs from it is what we wrote.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';
import { compileCacheDir } from './compile-cache-dir.js';

/**
 * The V8 flags fcp and fcpd set while they run (young-generation.ts, read-garbage.ts). V8 keys its cache by
 * its flags as they are when the cache is made (at exit) and when it is read (before compiling), so they are
 * set before compiling. Neither changes what the program does: the growth factor is set at once by both
 * programs anyway, and --expose-gc only gives `gc` to contexts made later, which only read-garbage.ts makes.
 */
const RUNTIME_FLAGS = ['--semi-space-growth-factor=1', '--expose-gc'];
/**
 * Flags of a program that serves one session and exits, set before its code is compiled whether or not
 * there is a cache: fcp, and the one-session fcpd that fcp starts over ssh (`--serve-once`). Such a process
 * compiles every function it makes hot with TurboFan in that run, on V8's worker threads: ~110 functions and
 * ~0.2 CPU s of a 5,000-file pull's 0.9, where the standing fcpd compiles them once for many sessions. A
 * smaller inlining budget (V8's default is 920 bytes of bytecode) cuts that compile by a third, and the code
 * it makes ran about as fast (spec/ARCHITECTURE.md §6.2 has the figures). A standing fcpd keeps V8's
 * default: its code lives for many sessions.
 */
const ONE_SESSION_FLAGS: readonly string[] = ['--max-inlined-bytecode-size-cumulative=100'];

function programFlags(source: Pick<CacheableSource, 'kind' | 'variant'>): readonly string[] {
  return source.kind === 'fcp' || source.variant === '--serve-once' ? ONE_SESSION_FLAGS : [];
}
const MAGIC = Buffer.from('fcp v8 code cache 1\n');
const DIGEST_BYTES = 32;
const HEADER_BYTES = MAGIC.length + DIGEST_BYTES;
/** Far above what a cache of either bundle takes (~0.5 MiB): a file this large is not ours to read. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;
/** A cache file no run has rewritten for this long is removed when another is written (old builds). */
const STALE_CACHE_MS = 30 * 24 * 3600 * 1000;
/** A temp file this old is a writer's that died (a live one renames it within milliseconds). */
const STALE_TEMP_MS = 3600 * 1000;
const CACHE_NAME = /^(fcp|fcpd)-[0-9a-f]{32}\.code$/;
const TEMP_NAME = /^\.(fcp|fcpd)-[0-9a-f]{32}\.code\.[0-9a-f]+\.tmp$/;

/** A CommonJS program to compile, and what names its cache. */
export interface CacheableSource {
  /** The file it comes from: the script's name in stack traces. */
  readonly file: string;
  /** What V8 compiles. */
  readonly code: string;
  /** Lines of `file` before the one `code` starts on. */
  readonly lineOffset: number;
  /** The bytes of `file`, which `code` is taken from. */
  readonly bytes: Buffer;
  readonly kind: 'fcp' | 'fcpd';
  /**
   * What the run does (cacheVariant()): push or pull, serve-once or the standing daemon. Each has a cache of
   * its own, made by the first run of its kind: one made by `fcp --version` holds little that a push needs.
   */
  readonly variant: string;
}

/** Arguments that make a run print text and stop, whatever the command: such a run compiles little of it. */
const TEXT_ONLY = ['--help', '-h', '--version'];

/**
 * The variant of a CacheableSource: 'text' for help and version, else the first of `argv` that is one of
 * `commands`, else 'other'. `fcp push --help` once made the push cache of a build, and every push after
 * it compiled what that cache lacked: 7.8 ms more client CPU per one-file push (40 pairs).
 */
export function cacheVariant(argv: readonly string[], commands: readonly string[]): string {
  if (argv.some((arg) => TEXT_ONLY.includes(arg))) return 'text';
  return argv.find((arg) => commands.includes(arg)) ?? 'other';
}

/** `source` compiled, with the cache of an earlier run when there is a usable one; one is made at exit if not. */
export function compileCached(source: CacheableSource): Script {
  const uid = process.geteuid?.();
  const dir = uid === undefined ? undefined : compileCacheDir(process.env, uid);
  const options = { filename: source.file, lineOffset: source.lineOffset };
  for (const flag of programFlags(source)) setFlagsFromString(flag);
  if (dir === undefined) return new Script(source.code, options);
  for (const flag of RUNTIME_FLAGS) setFlagsFromString(flag);
  const name = cacheName(source);
  const cachedData = readCache(path.join(dir, name), uid!);
  const script = new Script(source.code, cachedData === undefined ? options : { ...options, cachedData });
  if (cachedData === undefined || script.cachedDataRejected === true) {
    // At exit, when every function the run needed is compiled. Not after a privilege drop (fcpd --user):
    // the directory is the user's who started it.
    // Only after a run that succeeded: a failed one (a refused login, a usage error) stopped early.
    process.once('exit', (code) => {
      if (code === 0 && process.geteuid?.() === uid) writeCache(dir, name, script);
    });
  }
  return script;
}

function cacheName(source: CacheableSource): string {
  const hash = createHash('sha256');
  const flags = [
    process.execArgv.join('\0'),
    process.env['NODE_OPTIONS'] ?? '',
    RUNTIME_FLAGS.join('\0'),
    programFlags(source).join('\0'),
  ];
  for (const part of [process.version, process.arch, process.platform, ...flags, source.kind, source.variant])
    hash.update(`${part}\n`);
  hash.update(source.bytes);
  return `${source.kind}-${hash.digest('hex').slice(0, 32)}.code`;
}

/** The data in cache file `file` when it is ours alone and intact; undefined when not, or absent. */
function readCache(file: string, uid: number): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    const ours = st.isFile() && st.uid === uid && (st.mode & 0o077) === 0;
    if (!ours || st.size <= HEADER_BYTES || st.size > MAX_FILE_BYTES) return undefined;
    const buf = Buffer.allocUnsafe(st.size);
    if (readSync(fd, buf, 0, buf.length, 0) !== buf.length) return undefined;
    const data = buf.subarray(HEADER_BYTES);
    const intact =
      buf.subarray(0, MAGIC.length).equals(MAGIC) &&
      buf.subarray(MAGIC.length, HEADER_BYTES).equals(createHash('sha256').update(data).digest());
    return intact ? data : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Writes the cache of `script` as `name` in `dir`: a temp file, renamed; quietly nothing on failure. */
function writeCache(dir: string, name: string, script: Script): void {
  const temp = path.join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const data = script.createCachedData();
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const fd = openSync(temp, flags, 0o600);
    try {
      writeSync(fd, Buffer.concat([MAGIC, createHash('sha256').update(data).digest(), data]));
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path.join(dir, name));
  } catch {
    // A cache is an optimisation: a full disk or a read-only home costs the next run its compile, no more.
    try {
      unlinkSync(temp);
    } catch {
      // Never made, or already renamed.
    }
    return;
  }
  pruneStale(dir, name);
}

/** Removes caches of builds not run for a month and temp files of dead writers: our regular files only. */
function pruneStale(dir: string, keep: string): void {
  const now = Date.now();
  try {
    for (const entry of readdirSync(dir)) {
      const age = CACHE_NAME.test(entry) ? STALE_CACHE_MS : TEMP_NAME.test(entry) ? STALE_TEMP_MS : undefined;
      if (age === undefined || entry === keep) continue;
      const file = path.join(dir, entry);
      const st = lstatSync(file);
      if (st.isFile() && st.uid === process.geteuid?.() && now - st.mtimeMs > age) unlinkSync(file);
    }
  } catch {
    // Pruning is housekeeping; what is left is removed by a later write.
  }
}
