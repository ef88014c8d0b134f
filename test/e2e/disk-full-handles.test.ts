// Regression for issue 15, Security 3: after a push that fills the destination's file system, fcpd must
// have closed every file it opened for that session. A FileHandle left to the garbage collector is closed
// there with `Closing file descriptor N on garbage collection` and DEP0137 (an error in future Node
// versions), and until then holds an fd and the space of a deleted temporary file.
//
// The destination is a 2 MiB tmpfs mounted by the test (we run as root), the daemon a real child process
// whose /proc/PID/fd is read. The push mixes one-piece files (the synchronous path) and multi-piece files
// (PieceWriter and the piece index), so that whichever write meets ENOSPC first, every path is exercised;
// a second push sends one-piece files only, so that the synchronous path alone meets it.
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import { describeRun, runFcp } from '../helpers/cli.js';
import { type ChildDaemon, spawnDaemon } from '../helpers/daemon.js';
import { prng } from '../helpers/tree.js';
import { execFileSync } from '../helpers/sync.js';

/** Every wait on the daemon is bounded by this. */
const WAIT_MS = 15_000;
const POLL_MS = 50;
const MiB = 1 << 20;

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-diskfull-'));
const small = join(tmp, 'small');
const src = join(tmp, 'src');
let mounted = false;
let mountError = '';
let daemon: ChildDaemon | undefined;

function randomFile(abs: string, bytes: number, seed: number): void {
  const rnd = prng(seed);
  const buf = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) buf.writeUInt32LE((rnd() * 0x1_0000_0000) >>> 0, i);
  writeFileSync(abs, buf);
}

/** The daemon's open descriptors: all of them, and those on the small file system. */
function fds(pid: number): { total: number; onSmall: string[] } {
  const onSmall: string[] = [];
  const names = readdirSync(`/proc/${pid}/fd`);
  for (const fd of names) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed between readdir and readlink
    }
    if (target.startsWith(`${small}/`)) onSmall.push(`${fd} -> ${target}`);
  }
  return { total: names.length, onSmall };
}

/** Polls `check` until it returns true, at most WAIT_MS; returns whether it did. */
async function pollUntil(check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return check();
}

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, 'g'))?.length ?? 0;
}

test.before(() => {
  mkdirSync(small);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', small], { stdio: 'pipe' });
    mounted = true;
  } catch (err) {
    mountError = String((err as { stderr?: Buffer }).stderr ?? err).trim();
  }
  mkdirSync(join(src, 'tree'), { recursive: true });
  // 8 MiB in all against 2 MiB of room: multi-piece files first in the walk (big-*), then one-piece ones.
  for (let i = 0; i < 3; i++) randomFile(join(src, 'tree', `big-${i}.bin`), 2 * MiB + 4096, 100 + i);
  for (let i = 0; i < 16; i++) randomFile(join(src, 'tree', `small-${i}.bin`), 100_000, 200 + i);
  // One-piece files only (the synchronous path: open, write, futimes, close, rename per file): 3 MiB.
  mkdirSync(join(src, 'only-small', 'sub'), { recursive: true });
  for (let i = 0; i < 48; i++) {
    randomFile(join(src, 'only-small', i % 2 === 0 ? 'sub' : '.', `s-${i}.bin`), 64 * 1024, 300 + i);
  }
  writeFileSync(join(src, 'warm-up.txt'), 'warm-up\n');
});

test.after(async () => {
  await daemon?.stop();
  if (mounted) execFileSync('umount', [small], { stdio: 'pipe' });
  rmSync(tmp, { recursive: true, force: true });
});

test('a push that fills the disk leaves no file handle open in fcpd, and none to the garbage collector', async () => {
  if (!mounted) {
    console.log(`  skipped: cannot mount a tmpfs (${mountError}); this test needs root`);
    return;
  }
  const d = await spawnDaemon({ root: small });
  daemon = d;
  const pid = d.child.pid!;
  // A first session opens what a daemon opens once (the thread pool's descriptors, say): the baseline is
  // taken after it, once its connections are gone.
  const warm = await runFcp(['push', join(src, 'warm-up.txt'), d.remote('warm-up.txt')]);
  assert.is(warm.code, 0, describeRun(warm));
  let baseline = -1;
  await pollUntil(() => {
    const now = fds(pid).total;
    const stable = now === baseline;
    baseline = now;
    return stable && count(d.stderr(), /session done/) === 1;
  });

  const r = await runFcp(['push', '-n', '2', `${join(src, 'tree')}/`, d.remote('dst')]);
  assert.is(r.code, EXIT.PATH, `disk full is exit ${EXIT.PATH}: ${describeRun(r)}`);
  assert.match(r.stderr, /space|ENOSPC/i, describeRun(r));

  // The session's end is logged once its engine has run its cleanup; the handles close right after.
  assert.ok(
    await pollUntil(() => /session failed/.test(d.stderr())),
    `fcpd logged the failed session:\n${d.stderr()}`,
  );
  const closedOnSmall = await pollUntil(() => fds(pid).onSmall.length === 0);
  assert.ok(closedOnSmall, `fcpd still holds files on the full disk: ${fds(pid).onSmall.join(', ')}`);
  const backToBaseline = await pollUntil(() => fds(pid).total <= baseline);
  assert.ok(backToBaseline, `fcpd holds ${fds(pid).total} descriptors, ${baseline} before the push`);

  // Every warning fcpd would print about handles is printed by the time it exits (stderr is a pipe,
  // written synchronously): stop it and read all of it.
  await d.stop();
  await new Promise<void>((resolve) => {
    const stderr = d.child.stderr;
    if (stderr === null || stderr.readableEnded) resolve();
    else stderr.once('close', () => resolve());
  });
  daemon = undefined;
  assert.not.match(d.stderr(), /on garbage collection/, d.stderr());
  assert.not.match(d.stderr(), /DEP0137/, d.stderr());
});

test('one-piece files only: the disk fills on the synchronous path, one line says so, nothing torn is left', async () => {
  if (!mounted) {
    console.log(`  skipped: cannot mount a tmpfs (${mountError}); this test needs root`);
    return;
  }
  for (const name of readdirSync(small)) rmSync(join(small, name), { recursive: true, force: true });
  const d = await spawnDaemon({ root: small });
  daemon = d;
  const r = await runFcp(['push', '-n', '2', `${join(src, 'only-small')}/`, d.remote('dst')]);
  assert.is(r.code, EXIT.PATH, `disk full is exit ${EXIT.PATH}: ${describeRun(r)}`);
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.filter((l) => /space/i.test(l)).length, 1, describeRun(r));
  assert.not.match(r.stderr, /^\s+at /m, describeRun(r));
  assert.ok(
    await pollUntil(() => /session failed/.test(d.stderr())),
    `fcpd logged the failed session:\n${d.stderr()}`,
  );
  assert.ok(
    await pollUntil(() => fds(d.child.pid!).onSmall.length === 0),
    `fcpd still holds files on the full disk: ${fds(d.child.pid!).onSmall.join(', ')}`,
  );
  // Whatever is under a final name is whole; no temporary is left behind.
  const landed = readdirSync(join(small, 'dst'), { recursive: true, encoding: 'utf8' });
  assert.equal(
    landed.filter((n) => n.includes('.fcp-part')),
    [],
  );
  let whole = 0;
  for (const rel of landed) {
    const st = statSync(join(small, 'dst', rel));
    if (!st.isFile()) continue;
    assert.is(st.size, statSync(join(src, 'only-small', rel)).size, `${rel} is not torn`);
    whole++;
  }
  assert.ok(whole > 0 && whole < 48, `${whole} of 48 files fit`);
  await d.stop();
  daemon = undefined;
});

test.run();
