// A hostile daemon against the real `fcp pull` CLI. The fake daemon (a RawListener from raw-peer.ts) answers
// HELLO and PULL with SESSION like fcpd would, then sends file lists and data no honest daemon sends. The
// CLI runs as a child process with a kill timeout. After each case: nothing was written outside DEST (its
// parent directory and a sibling 'outside' directory with a canary are compared), the CLI exited non-zero
// with one `fcp: ...` line per problem on stderr, and never a stack trace.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import {
  Capability,
  ERROR_CODES,
  type FileInfoMsg,
  FileKind,
  MsgType,
  PIECE_SIZE,
  ReadyAction,
  TransferFlag,
} from '../../src/protocol/index.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { FCP_BIN } from '../helpers/cli.js';
import {
  type EntryAnswer,
  fileChecksum,
  LOOPBACK,
  RawListener,
  type RawPeer,
  serveSession,
} from '../helpers/raw-peer.js';

/** Kill timeout of one CLI run: generous, a correct client exits in well under a second here. */
const RUN_LIMIT_MS = 15_000;
/** How long the stalling daemon stays silent before we interrupt the client (see the stall test). */
const STALL_MS = 3_000;
const OLD_MTIME_NS = 1_500_000_000n * 1_000_000_000n;

let base = '';
let outside = '';
let outsideBaseline = new Map<string, string>();
let caseNo = 0;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the kill timeout fired. */
  killed: boolean;
  /** What the fake daemon's script threw, if anything (the client hung up early, a wait timed out). */
  scriptError: Error | undefined;
  /** Every message the client sent. */
  fromClient: RawPeer['received'];
}

interface Case {
  /** DEST as given to the CLI. */
  dest: string;
  /** The directory DEST lives in: nothing may appear in it but DEST. */
  dir: string;
}

async function newCase(): Promise<Case> {
  const dir = path.join(base, `case-${++caseNo}`);
  await mkdir(dir);
  return { dir, dest: path.join(dir, 'dest') };
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/**
 * Runs `fcp pull` against a fake daemon that does the handshake and then runs `script`. `interruptAfterMs`
 * sends SIGTERM after that long (for the stall case); the hard kill comes at RUN_LIMIT_MS.
 */
async function runPull(
  c: Case,
  script: (peer: RawPeer) => Promise<void>,
  opts: { interruptAfterMs?: number; flags?: number; capabilities?: number; args?: string[] } = {},
): Promise<Run> {
  const listener = await RawListener.listen();
  // One attempt: each retry would reconnect to a fake daemon that serves one session only (retries are for
  // lost connections, and every attempt would meet the same hostile input anyway).
  const args = [
    FCP_BIN,
    'pull',
    '-n',
    '1',
    '--retries',
    '0',
    ...(opts.args ?? []),
    `${LOOPBACK}:${listener.port}:/x`,
    c.dest,
  ];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString('utf8');
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  let killed = false;
  const hardKill = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, RUN_LIMIT_MS);
  const interrupt =
    opts.interruptAfterMs === undefined
      ? undefined
      : setTimeout(() => child.kill('SIGTERM'), opts.interruptAfterMs);
  let scriptError: Error | undefined;
  let peer: RawPeer | undefined;
  try {
    peer = await listener.accept();
    const request = await serveSession(peer, {
      flags: opts.flags ?? 0,
      capabilities: opts.capabilities ?? 0,
    });
    assert.is(request.type, MsgType.Pull);
    await script(peer);
  } catch (err) {
    scriptError = err as Error;
  }
  await exited(child);
  clearTimeout(hardKill);
  if (interrupt !== undefined) clearTimeout(interrupt);
  // Let the pipes drain: 'exit' can come before the last stderr chunk.
  await new Promise<void>((resolve) => {
    if (child.stderr === null || child.stderr.readableEnded) resolve();
    else child.stderr.once('close', () => resolve());
  });
  await listener.close();
  return {
    code: child.exitCode,
    signal: child.signalCode,
    stdout,
    stderr,
    killed,
    scriptError,
    fromClient: peer?.received ?? [],
  };
}

/** Every entry under `dir` (links not followed) with its type, size and content hash. */
async function snapshot(dir: string, rel = ''): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of (await readdir(path.join(dir, rel))).sort()) {
    const r = rel === '' ? name : `${rel}/${name}`;
    const abs = path.join(dir, r);
    const st = await lstat(abs);
    if (st.isSymbolicLink()) out.set(r, `link -> ${await readlink(abs)}`);
    else if (st.isDirectory()) {
      out.set(r, 'dir');
      for (const [k, v] of await snapshot(dir, r)) out.set(k, v);
    } else {
      const sum = createHash('sha256')
        .update(await readFile(abs))
        .digest('hex');
      out.set(r, `file ${st.size} ${sum} ${st.mtimeMs}`);
    }
  }
  return out;
}

function describe(run: Run): string {
  const err = run.scriptError === undefined ? '' : `\nfake daemon: ${run.scriptError.message}`;
  return `exit ${run.code} signal ${run.signal}${run.killed ? ' (killed)' : ''}\nstderr: ${JSON.stringify(run.stderr)}${err}`;
}

/**
 * The common verdict: exited by itself, non-zero (or `code` exactly), `lines` lines on stderr, each
 * `fcp: ...`, no stack trace; nothing outside DEST.
 */
async function assertOutcome(
  c: Case,
  run: Run,
  expect: { code?: number; lines?: number; minLines?: number },
): Promise<void> {
  assert.not.ok(run.killed, `the client hung: ${describe(run)}`);
  assert.ok(run.code !== null && run.code !== 0, `expected a failure: ${describe(run)}`);
  if (expect.code !== undefined) assert.is(run.code, expect.code, describe(run));
  assert.is.not(run.code, EXIT.INTERNAL, `exit 70 means "internal error, a bug": ${describe(run)}`);
  const lines = run.stderr.split('\n').filter((l) => l !== '');
  if (expect.lines !== undefined) assert.is(lines.length, expect.lines, describe(run));
  if (expect.minLines !== undefined) assert.ok(lines.length >= expect.minLines, describe(run));
  for (const line of lines) {
    assert.ok(line.startsWith('fcp: '), `stderr line not from fcp: ${JSON.stringify(line)}`);
    assert.not.match(line, /^\s+at |Error:|\.js:\d+/, `stack trace on stderr: ${JSON.stringify(line)}`);
  }
  await assertNothingOutside(c);
}

/** `announced`: names ending in .fcp-part that the daemon itself listed as entries (they may stay). */
async function assertNothingOutside(c: Case, announced: string[] = []): Promise<void> {
  assert.equal(await snapshot(outside), outsideBaseline, 'the outside directory changed');
  assert.equal(await readdir(c.dir), existsSync(c.dest) ? ['dest'] : [], 'something appeared beside DEST');
  const temps = existsSync(c.dest)
    ? (await readdir(c.dest, { recursive: true })).filter((n) => n.endsWith('.fcp-part'))
    : [];
  assert.equal(
    temps.filter((t) => !announced.includes(t)),
    [],
    'temporary files left in DEST',
  );
}

function fileInfo(
  id: number,
  p: string,
  size: number | bigint,
  more: Partial<FileInfoMsg> = {},
): FileInfoMsg {
  return {
    type: MsgType.FileInfo,
    id,
    kind: FileKind.File,
    mode: 0o644,
    size: BigInt(size),
    mtimeNs: OLD_MTIME_NS,
    checksum: undefined,
    path: p,
    linkTarget: '',
    ...more,
  };
}

function linkInfo(id: number, p: string, target: string): FileInfoMsg {
  return fileInfo(id, p, 0, { kind: FileKind.Symlink, mode: 0o777, linkTarget: target });
}

interface Entry {
  info: FileInfoMsg;
  content?: Buffer;
}

/**
 * A daemon that is hostile only in what it lists: announces `entries` (all at once when `pipelined`, else
 * one at a time), sends the data of every entry the client asks for, then FILE_COUNT and DONE, and waits
 * for the client's DONE. Returns the client's answer to each entry.
 */
async function serveList(
  peer: RawPeer,
  entries: Entry[],
  pipelined = false,
): Promise<Map<number, EntryAnswer>> {
  const answers = new Map<number, EntryAnswer>();
  const settle = async (e: Entry) => {
    const answer = await peer.waitAnswer(e.info.id);
    answers.set(e.info.id, answer);
    if (answer.ready?.action !== ReadyAction.Need || e.info.kind !== FileKind.File) return;
    await peer.sendFile(e.info.id, e.content ?? Buffer.alloc(Number(e.info.size), 0x41));
    answers.set(e.info.id, { ...answer, done: await peer.waitFileDone(e.info.id) });
  };
  if (pipelined) {
    for (const e of entries) await peer.send(e.info);
    for (const e of entries) await settle(e);
  } else {
    for (const e of entries) {
      await peer.send(e.info);
      await settle(e);
    }
  }
  await peer.send({ type: MsgType.FileCount, entries: entries.length, bytes: 0n });
  await peer.send({ type: MsgType.Done, filesSent: 0, filesSkipped: 0, filesFailed: 0, bytes: 0n });
  await peer.expect(MsgType.Done);
  return answers;
}

test.before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'fcp-hostile-daemon-'));
  outside = path.join(base, 'outside');
  await mkdir(outside);
  await writeFile(path.join(outside, 'canary.txt'), 'canary: must never change\n');
  await writeFile(path.join(outside, 'victim.txt'), 'victim: must never be truncated or overwritten\n');
  outsideBaseline = await snapshot(outside);
});

test.after(async () => {
  if (base !== '') await rm(base, { recursive: true, force: true });
});

test('an entry with ".." is refused; the good entry next to it arrives', async () => {
  for (const bad of ['../escape.txt', '../../escape.txt', 'sub/../../escape.txt', '..']) {
    const c = await newCase();
    const run = await runPull(c, async (peer) => {
      await serveList(peer, [
        { info: fileInfo(1, bad, 5) },
        { info: fileInfo(2, 'ok.txt', 2), content: Buffer.from('ok') },
      ]);
    });
    assert.is(run.scriptError, undefined, describe(run));
    await assertOutcome(c, run, { code: EXIT.PARTIAL, lines: 1 });
    assert.is(await readFile(path.join(c.dest, 'ok.txt'), 'utf8'), 'ok');
    assert.not.ok(existsSync(path.join(base, 'escape.txt')));
  }
});

test('a single-file pull: entries beside the one file, a directory or "." are refused, nothing lands', async () => {
  // `fcp pull host:x DIR/dest` with SINGLE_FILE writes the file as DIR/dest, confined to DIR: anything else
  // listed would land in DIR itself (scp's CVE-2019-6111). DIR's mode must not change either.
  const planted = [
    [
      { info: fileInfo(1, 'x', 3), content: Buffer.from('one') },
      { info: fileInfo(2, '.ssh/authorized_keys', 9) },
    ],
    [{ info: fileInfo(1, 'x', 3), content: Buffer.from('one') }, { info: fileInfo(2, 'beside.sh', 9) }],
    [{ info: linkInfo(1, 'x', outside) }, { info: fileInfo(2, 'newdir/dropped.sh', 9, { mode: 0o755 }) }],
  ];
  for (const entries of planted) {
    const c = await newCase();
    const modeBefore = (await lstat(c.dir)).mode;
    const run = await runPull(c, (peer) => serveList(peer, entries, true).then(() => undefined), {
      flags: TransferFlag.SingleFile,
    });
    await assertOutcome(c, run, { code: EXIT.PROTOCOL, lines: 1 });
    assert.match(run.stderr, /single-file transfer/, describe(run));
    assert.is((await lstat(c.dir)).mode, modeBefore, "the destination's parent changed mode");
  }
  const c = await newCase();
  const modeBefore = (await lstat(c.dir)).mode;
  const run = await runPull(
    c,
    async (peer) => {
      await peer.send({ type: MsgType.DirInfo, id: 1, mode: 0o777, mtimeNs: OLD_MTIME_NS, path: '.' });
      await serveList(peer, [{ info: fileInfo(2, 'x', 3), content: Buffer.from('one') }]);
    },
    { flags: TransferFlag.SingleFile },
  );
  await assertOutcome(c, run, { code: EXIT.PROTOCOL, lines: 1 });
  assert.is((await lstat(c.dir)).mode, modeBefore, "the destination's parent changed mode");
});

test('absolute paths and NUL in entry names are refused', async () => {
  for (const bad of [`${outside}/pwned.txt`, '/etc/fcp-hostile-pwned', 'a\0b', 'a//b', './a', '']) {
    const c = await newCase();
    const run = await runPull(c, async (peer) => {
      await serveList(peer, [{ info: fileInfo(1, bad, 5) }, { info: linkInfo(2, bad, outside) }]);
    });
    assert.is(run.scriptError, undefined, describe(run));
    await assertOutcome(c, run, { code: EXIT.PARTIAL, lines: 2 });
    assert.not.ok(existsSync('/etc/fcp-hostile-pwned'));
  }
});

test('a symlink to the outside, then a file through it: the file is refused, nothing lands outside', async () => {
  for (const pipelined of [false, true]) {
    const c = await newCase();
    const run = await runPull(c, async (peer) => {
      const answers = await serveList(
        peer,
        [
          { info: linkInfo(1, 'evil', outside) },
          { info: fileInfo(2, 'evil/pwned.txt', 5) },
          { info: fileInfo(3, 'evil/canary.txt', 5) },
        ],
        pipelined,
      );
      if (!pipelined) {
        assert.is(answers.get(2)?.ready?.code, ERROR_CODES.FCP_ERR_PATH_SYMLINK.wire);
        assert.is(answers.get(3)?.ready?.code, ERROR_CODES.FCP_ERR_PATH_SYMLINK.wire);
      }
    });
    assert.is(run.scriptError, undefined, describe(run));
    // Sequential: the two files fail. Pipelined: either they fail, or they land in a real directory 'evil'
    // and the link fails instead; either way the outside is untouched.
    if (pipelined) await assertOutcome(c, run, { code: EXIT.PARTIAL, minLines: 1 });
    else await assertOutcome(c, run, { code: EXIT.PARTIAL, lines: 2 });
  }
});

test('a symlink planted under the temporary name of the next file is not written through', async () => {
  const c = await newCase();
  const run = await runPull(c, async (peer) => {
    await serveList(peer, [
      { info: linkInfo(1, '.x.fcp-part', path.join(outside, 'victim.txt')) },
      { info: fileInfo(2, 'x', 7), content: Buffer.from('payload') },
    ]);
  });
  assert.is(run.scriptError, undefined, describe(run));
  // The link named like a temporary may be refused or created; 'x' may fail or replace it; the victim holds.
  assert.ok(run.code === EXIT.OK || run.code === EXIT.PARTIAL, describe(run));
  await assertNothingOutside(c, ['.x.fcp-part']);
  const x = path.join(c.dest, 'x');
  if (existsSync(x)) assert.is(await readFile(x, 'utf8'), 'payload');
  const temp = path.join(c.dest, '.x.fcp-part');
  if (existsSync(temp)) assert.is(await readlink(temp), path.join(outside, 'victim.txt'));
});

test('a file named like the temporary of another announced at the same time: one is refused', async () => {
  const c = await newCase();
  const run = await runPull(c, async (peer) => {
    const answers = await serveList(
      peer,
      [
        { info: fileInfo(1, 'y', 5), content: Buffer.from('first') },
        { info: fileInfo(2, '.y.fcp-part', 5), content: Buffer.from('other') },
      ],
      true,
    );
    assert.is(answers.get(1)?.done?.code, 0);
    assert.is(answers.get(2)?.ready?.code, ERROR_CODES.FCP_ERR_PATH_DUPLICATE.wire);
  });
  assert.is(run.scriptError, undefined, describe(run));
  await assertOutcome(c, run, { code: EXIT.PARTIAL, lines: 1 });
  assert.is(await readFile(path.join(c.dest, 'y'), 'utf8'), 'first');
});

test('DATA for an id that was never requested: the client aborts, nothing committed', async () => {
  const c = await newCase();
  const run = await runPull(c, async (peer) => {
    await peer.send(fileInfo(1, 'a.txt', 10));
    await peer.waitAnswer(1);
    await peer.sendData(99, 0, 0, Buffer.alloc(10, 0x41));
    await peer.sendData(1, 0, 0, Buffer.alloc(10, 0x41));
    await peer.waitClose();
  });
  await assertOutcome(c, run, { code: EXIT.PROTOCOL, lines: 1 });
  assert.not.ok(existsSync(path.join(c.dest, 'a.txt')));
});

test('a checksum mismatch: the file is not committed, the old one survives, no temporary left', async () => {
  const c = await newCase();
  await mkdir(c.dest);
  await writeFile(path.join(c.dest, 'keep.txt'), 'old content');
  const run = await runPull(c, async (peer) => {
    const content = Buffer.from('NEW CONTENT!');
    await peer.send(fileInfo(1, 'keep.txt', content.length));
    assert.is((await peer.waitAnswer(1)).ready?.action, ReadyAction.Need);
    await peer.sendFile(1, content, fileChecksum(peer.hasher, content) ^ 0xdeadn);
    assert.is((await peer.waitFileDone(1)).code, ERROR_CODES.FCP_ERR_FILE_CHECKSUM.wire);
    await peer.send({ type: MsgType.FileCount, entries: 1, bytes: 0n });
    await peer.send({ type: MsgType.Done, filesSent: 0, filesSkipped: 0, filesFailed: 1, bytes: 0n });
    await peer.expect(MsgType.Done);
  });
  assert.is(run.scriptError, undefined, describe(run));
  await assertOutcome(c, run, { code: EXIT.PARTIAL, lines: 1 });
  assert.is(await readFile(path.join(c.dest, 'keep.txt'), 'utf8'), 'old content');
});

test('garbage in the middle of the stream: the client aborts with one line, nothing committed', async () => {
  for (const garbage of [Buffer.alloc(64, 0xff), Buffer.from('\r\n<html>oops</html>\r\n')]) {
    const c = await newCase();
    await mkdir(c.dest);
    await writeFile(path.join(c.dest, 'keep.txt'), 'old content');
    const run = await runPull(c, async (peer) => {
      const content = Buffer.alloc(PIECE_SIZE + 100, 0x42);
      await peer.send(fileInfo(1, 'keep.txt', content.length));
      await peer.waitAnswer(1);
      await peer.sendData(1, 0, 0, content.subarray(0, 50_000));
      await peer.write(garbage);
      // Garbage can look like the start of a long frame ('\r' is PIECE_ACK's type byte): the client cannot
      // tell until more bytes come. If it is still waiting after a moment, hang up: it must see truncation.
      await peer.waitClose(2_000).catch(() => peer.end());
      await peer.waitClose();
    });
    await assertOutcome(c, run, { code: EXIT.PROTOCOL, lines: 1 });
    assert.is(await readFile(path.join(c.dest, 'keep.txt'), 'utf8'), 'old content');
  }
});

test("a hostile size (2^63) is refused as the peer's fault, not reported as an internal error", async () => {
  const c = await newCase();
  const run = await runPull(c, async (peer) => {
    await serveList(peer, [{ info: fileInfo(1, 'enormous', 2n ** 63n) }]);
  });
  await assertOutcome(c, run, { lines: 1 });
});

test('a dry run into a missing destination: a hostile size is refused for want of space, as a real run would', async () => {
  // The destination would be made, so the dry run had no file system to ask and sized the file's piece
  // tables by the peer's 2^53 - 1: exit 70 ("Invalid typed array length"); 2^52 took the memory.
  for (const size of [2n ** 53n - 1n, 2n ** 52n]) {
    const c = await newCase();
    const run = await runPull(
      c,
      async (peer) => {
        await serveList(peer, [{ info: fileInfo(1, 'enormous', size) }]);
      },
      { flags: TransferFlag.DryRun, capabilities: Capability.DryRun, args: ['--dry-run'] },
    );
    await assertOutcome(c, run, { lines: 1 });
    assert.match(run.stderr, /not enough space for enormous/, describe(run));
    assert.not.ok(existsSync(c.dest), 'a dry run made the destination');
  }
});

test('file names are printed safely: a newline or escape sequence cannot forge stderr lines', async () => {
  const c = await newCase();
  const run = await runPull(c, async (peer) => {
    await serveList(peer, [
      { info: fileInfo(1, '../x\nfcp: 3 files sent, all good\x1b[2K\x1b]0;owned\x07', 5) },
    ]);
  });
  assert.is(run.scriptError, undefined, describe(run));
  await assertOutcome(c, run, { code: EXIT.PARTIAL, lines: 1 });
  assert.not.match(
    run.stderr.replace(/\n$/, ''),
    /[\x00-\x1f\x7f]/,
    `raw control characters: ${describe(run)}`,
  );
});

test('a daemon that stalls after SESSION: the client can always be interrupted, and leaves nothing', async () => {
  // The engine's idle timeout (if any) is far longer than a test may wait, so after STALL_MS the client is
  // sent SIGTERM: it must exit at once with one line and no partial files. Whether it would have given up
  // on its own is reported, not asserted (see the report of this test file).
  const c = await newCase();
  const started = Date.now();
  const run = await runPull(
    c,
    async (peer) => {
      // Half a piece of a file, then silence: the worst place to stall.
      await peer.send(fileInfo(1, 'stalled.bin', 2 * PIECE_SIZE));
      await peer.waitAnswer(1);
      await peer.sendData(1, 0, 0, Buffer.alloc(30_000, 0x43));
      await peer.waitClose(RUN_LIMIT_MS);
    },
    { interruptAfterMs: STALL_MS },
  );
  const elapsed = Date.now() - started;
  if (elapsed >= STALL_MS) {
    assert.is(run.code, EXIT.INTERRUPTED, describe(run));
    assert.match(run.stderr, /^fcp: interrupted\n$/, describe(run));
  }
  await assertOutcome(c, run, {});
  assert.not.ok(existsSync(path.join(c.dest, 'stalled.bin')));
});

test.run();
