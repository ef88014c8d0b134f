// The client's own side of the swap race (spec/SECURITY.md §12 lists it as a known limit): a local user who
// can write inside the tree a user pushes, or inside the destination a user pulls into (a shared team
// directory), keeps swapping a directory there for a symbolic link to a directory of the victim's. The
// client walks its operand and writes its destination by path, so the push sends the victim's files as
// the shared tree's, and the pull creates files in the victim's directory. Both tests fail on main.
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path, { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { describeRun, runFcp, track, unprivileged } from '../helpers/cli.js';
import { spawnDaemon, within } from '../helpers/daemon.js';

const FILES = 400;
/** Pull rounds: the flipper wins most of them, one is enough. */
const ROUNDS = 3;
/** Files the push walks before the ones it is made to take from the victim. */
const FILLERS = 10_000;
/** The attacker's bounds: whichever comes first. */
const FLIPS = 2_000_000;
const FLIP_MS = 20_000;
const PRIVATE = "the victim's private text\n";

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-client-swap-'));
chmodSync(tmp, 0o755);
test.after(() => rmSync(tmp, { recursive: true, force: true }));

// argv: dir, link target, stop file. Flips `dir` between itself and a link to `target` until told to stop
// (checked every 256 flips), then leaves the directory in place.
const FLIPPER = `
const fs = require('node:fs');
const [dir, target, stop, flips, ms] = process.argv.slice(1);
const aside = dir + '.aside';
const until = Date.now() + Number(ms);
let n = 0;
while (n < Number(flips) && !(n % 256 === 0 && (fs.existsSync(stop) || Date.now() > until))) {
  n++;
  try {
    fs.renameSync(dir, aside);
    fs.symlinkSync(target, dir);
    for (let spin = 0; spin < 2000; spin++);
    fs.unlinkSync(dir);
    fs.renameSync(aside, dir);
  } catch {}
}
process.stdout.write(String(n));
`;

// argv: dir, link target, trigger, stop file, ms. Once `trigger` exists (the walk of `dir` is under way: the
// daemon made its copy), swaps `dir` for a link to `target` for good; puts it back once told to stop.
const ONCE = `
const fs = require('node:fs');
const [dir, target, trigger, stop, ms] = process.argv.slice(1);
const until = Date.now() + Number(ms);
let swapped = 0;
while (!fs.existsSync(stop) && Date.now() < until) {
  if (swapped === 0 && fs.existsSync(trigger)) {
    fs.renameSync(dir, dir + '.aside');
    fs.symlinkSync(target, dir);
    swapped = 1;
  }
}
if (swapped === 1) {
  fs.unlinkSync(dir);
  fs.renameSync(dir + '.aside', dir);
}
process.stdout.write(String(swapped));
`;

function attack(script: string, args: string[]): Promise<number> {
  const { uid, gid } = unprivileged();
  const child = spawn(process.execPath, ['-e', script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    ...(uid === undefined ? {} : { uid, gid }),
  });
  track(child);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  return new Promise((resolve) => child.once('exit', () => resolve(Number(out))));
}

/** A directory the attacker owns (the attacker is this user when the tests do not run as root). */
function attackersDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o777 });
  chmodSync(dir, 0o777);
  const { uid, gid } = unprivileged();
  if (uid !== undefined) chownSync(dir, uid, gid ?? uid);
}

/** The victim's closed directory, holding files named as the shared tree's: files of 0644 in a 0700 dir. */
function victimsDir(dir: string, names: string[]): void {
  mkdirSync(dir, { mode: 0o700 });
  for (const name of names) writeFileSync(join(dir, name), PRIVATE, { mode: 0o644 });
}

const names = Array.from({ length: FILES }, (_, i) => `f${String(i).padStart(4, '0')}.txt`);

test(
  'push of a shared tree whose directory is swapped for a link: no file from outside the tree is sent',
  async () => {
    const shared = join(tmp, 'push-shared');
    const privateDir = join(tmp, 'push-private');
    const served = join(tmp, 'push-served');
    attackersDir(join(shared, 'sub'));
    chmodSync(shared, 0o777);
    // Fillers first (in name order), then names the victim's directory has too.
    for (let i = 0; i < FILLERS; i++) writeFileSync(join(shared, 'sub', `a${i}`), '');
    for (const name of names) writeFileSync(join(shared, 'sub', name), 'shared\n');
    victimsDir(privateDir, names);
    mkdirSync(served);
    const d = await spawnDaemon({ root: served });
    const sent: string[] = [];
    try {
      const got = join(served, 'copy', 'push-shared', 'sub');
      const stopFile = join(tmp, 'push-stop');
      const attacker = attack(ONCE, [join(shared, 'sub'), privateDir, got, stopFile, String(FLIP_MS)]);
      const r = await runFcp(['push', shared, d.remote('copy')]);
      writeFileSync(stopFile, '');
      assert.is(await within(attacker, 30_000), 1, 'the attacker swapped');
      assert.ok(r.code === 0 || r.code === 3, describeRun(r));
      for (const name of readdirSync(got))
        if (readFileSync(join(got, name), 'utf8') === PRIVATE) sent.push(name);
    } finally {
      await d.stop();
    }
    assert.equal(sent.slice(0, 3), [], `${sent.length} private files sent as the shared tree's`);
  },
  { timeoutMs: 150_000 },
);

/**
 * Pulls the first level of `top` (where FILES files are made, under `served`) into `dest/` ROUNDS times
 * while the attacker flips `flipped` (its directories made afresh by `prepare` before each round) with a
 * link to `outside`: what each round created in `outside`.
 */
async function pullUnderFlips(
  served: string,
  top: string,
  dest: string,
  flipped: string,
  outside: string,
  prepare: () => void,
): Promise<string[]> {
  mkdirSync(join(served, top), { recursive: true });
  for (const name of names) writeFileSync(join(served, top, name), 'pulled\n');
  mkdirSync(outside, { mode: 0o700 });
  const d = await spawnDaemon({ root: served });
  const leaks: string[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      prepare();
      const stopFile = join(tmp, `${path.basename(dest)}-stop${round}`);
      const attacker = attack(FLIPPER, [flipped, outside, stopFile, String(FLIPS), String(FLIP_MS)]);
      const r = await runFcp(['pull', d.remote(top.split('/')[0]!), `${dest}/`]);
      writeFileSync(stopFile, '');
      assert.ok(((await within(attacker, 30_000)) ?? 0) > 0, 'the attacker ran');
      assert.ok(r.code === 0 || r.code === 3, describeRun(r));
      const found = readdirSync(outside);
      if (found.length > 0) leaks.push(`round ${round}: ${found.length} (${found.slice(0, 2).join(', ')})`);
      for (const name of found) rmSync(join(outside, name), { force: true });
    }
  } finally {
    await d.stop();
  }
  return leaks;
}

test(
  'pull into a shared destination whose directory is swapped for a link: nothing is created outside it',
  async () => {
    const dest = join(tmp, 'pull-dest');
    attackersDir(dest);
    const leaks = await pullUnderFlips(
      join(tmp, 'pull-served'),
      'sub',
      dest,
      join(dest, 'sub'),
      join(tmp, 'pull-outside'),
      () => {
        rmSync(join(dest, 'sub'), { recursive: true, force: true });
        attackersDir(join(dest, 'sub'));
      },
    );
    assert.equal(leaks, [], `created in the victim's directory in ${leaks.length} of ${ROUNDS} rounds`);
  },
  { timeoutMs: 150_000 },
);

// Session 15: a pull's destination holds only the levels another user could swap. In a private
// destination a directory the attacker owns lets them swap what is in it: that level, and everything
// below it, must still be held.
test(
  'pull into a private destination through a directory another user owns: nothing is created outside it',
  async () => {
    const dest = join(tmp, 'pull-mixed-dest');
    mkdirSync(dest, { mode: 0o755 });
    const theirs = join(dest, 'theirs');
    const leaks = await pullUnderFlips(
      join(tmp, 'pull-mixed-served'),
      'theirs/sub',
      dest,
      join(theirs, 'sub'),
      join(tmp, 'pull-mixed-outside'),
      () => {
        // Only the attacker's directory is open to them: dest itself is ours and private.
        rmSync(theirs, { recursive: true, force: true });
        attackersDir(join(theirs, 'sub'));
        attackersDir(theirs);
        // As root the attacker is another account, whose owning the directory is enough; otherwise the
        // attacker is this user, and only the mode opens the directory to others.
        if (unprivileged().uid !== undefined) chmodSync(theirs, 0o755);
      },
    );
    assert.equal(leaks, [], `created in the victim's directory in ${leaks.length} of ${ROUNDS} rounds`);
  },
  { timeoutMs: 150_000 },
);

test.run();
