// A push into `fcpd --root R` while a local user who can write inside R keeps swapping a directory of the
// destination for a symbolic link to a directory outside R (rsync's CVE-2024-12747 class, receiving side).
// The daemon runs as a real unprivileged account that may write in the outside directory too, so only the
// receiver's own confinement stands between the push and a file created there: every level is held open
// and each operation reaches its name through the held descriptor (spec/SECURITY.md §11, held-dirs.ts).
// Before that, every round of this test created files outside R.
import { spawn } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { describeRun, runFcp, track, unprivileged } from '../helpers/cli.js';
import { spawnDaemon, within } from '../helpers/daemon.js';
import { execFileSync } from '../helpers/sync.js';

const ROUNDS = 4;
const FILES = 400;
/** The swapper's own bounds: iterations and milliseconds, whichever comes first. */
const SWAP_ITERATIONS = 2_000_000;
const SWAP_MS = 20_000;
/** A past mtime for the outside directory: any entry made in it (even one moved away again) changes it. */
const UNTOUCHED = 1_000_000;

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-root-swap-'));
chmodSync(tmp, 0o755);
test.after(() => rmSync(tmp, { recursive: true, force: true }));

// argv: dir, link target, stop file, iterations, ms. Swaps `dir` for a link and back until told to stop,
// and leaves `dir` a real directory. A sync loop: it looks at the stop file every 256 swaps.
const SWAPPER = `
const fs = require('node:fs');
const [dir, target, stop, iterations, ms] = process.argv.slice(1);
const hold = dir + '.held';
const until = Date.now() + Number(ms);
let swaps = 0;
for (; swaps < Number(iterations); swaps++) {
  if (swaps % 256 === 0 && (fs.existsSync(stop) || Date.now() > until)) break;
  try {
    fs.renameSync(dir, hold);
    fs.symlinkSync(target, dir);
    for (let spin = 0; spin < 2000; spin++);
    fs.unlinkSync(dir);
    fs.renameSync(hold, dir);
  } catch {}
}
process.stdout.write(String(swaps));
`;

/** Runs the swapper as `user` until stopFile exists; resolves with how many swaps it made. */
function startSwapper(user: { uid?: number; gid?: number }, dir: string, target: string, stopFile: string) {
  const child = spawn(
    process.execPath,
    ['-e', SWAPPER, dir, target, stopFile, String(SWAP_ITERATIONS), String(SWAP_MS)],
    { stdio: ['ignore', 'pipe', 'inherit'], ...user },
  );
  track(child);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  return new Promise<number>((resolve) => child.once('exit', () => resolve(Number(out))));
}

test(
  'a destination directory swapped for a link to outside --root while files arrive: nothing is created outside',
  async () => {
    const user = unprivileged();
    const src = join(tmp, 'src');
    const root = join(tmp, 'root');
    const outside = join(tmp, 'outside');
    mkdirSync(join(src, 'sub'), { recursive: true });
    for (let i = 0; i < FILES; i++) writeFileSync(join(src, 'sub', `f${i}.txt`), `file ${i}\n`);
    mkdirSync(root);
    mkdirSync(outside);
    if (user.uid !== undefined) execFileSync('chown', [`${user.uid}:${user.gid ?? user.uid}`, root, outside]);
    const d = await spawnDaemon({ root, ...user });
    const leaks: string[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const dst = join(root, `dst${round}`);
        mkdirSync(join(dst, 'sub'), { recursive: true });
        if (user.uid !== undefined) execFileSync('chown', ['-R', `${user.uid}:${user.gid ?? user.uid}`, dst]);
        utimesSync(outside, UNTOUCHED, UNTOUCHED);
        const stopFile = join(tmp, `stop${round}`);
        const swapper = startSwapper(user, join(dst, 'sub'), outside, stopFile);
        const r = await runFcp(['push', `${src}/`, d.remote(`dst${round}`)], user);
        writeFileSync(stopFile, '');
        const swaps = await within(swapper, 30_000);
        assert.ok(swaps !== undefined && swaps > 0, `the swapper ran (${swaps})`);
        // A failed file (the link refused) is fine; a session that died of something else is not.
        assert.ok(r.code === 0 || r.code === 3, describeRun(r));
        const found = readdirSync(outside);
        if (found.length > 0 || statSync(outside).mtimeMs !== UNTOUCHED * 1000) {
          leaks.push(`round ${round}: ${found.length} entries (${found.slice(0, 3).join(', ')})`);
          for (const name of found) rmSync(join(outside, name), { recursive: true, force: true });
        }
      }
    } finally {
      await d.stop();
    }
    assert.equal(leaks, [], `created outside --root in ${leaks.length} of ${ROUNDS} rounds`);
  },
  { timeoutMs: 150_000 },
);

test.run();
