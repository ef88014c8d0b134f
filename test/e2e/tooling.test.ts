// Issue 15, item 14: `npm run demo` touches nothing outside its temp directory (it created a host key in the
// real ~/.local/state/fcpd and read ~/.ssh/config), and the test runner prints no colour codes into a pipe.
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { removeTree } from '../helpers/tree.js';
import { spawnSync } from '../helpers/sync.js';

/** The checkout: this file is dist/test/e2e/tooling.test.js. */
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const DEMO = path.join(REPO, 'dist/bench/demo.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'fcp-e2e-tooling-'));
/** Longer than the test's own limit: before the watchdog, nothing but SIGKILL ended it. */
const BLOCKED_SLEEP_S = 97;
chmodSync(tmp, 0o755);

test.after(async () => {
  await removeTree(tmp);
});

test('the demo leaves HOME and XDG directories untouched and its temp directory removed', () => {
  const home = path.join(tmp, 'home');
  const temp = path.join(tmp, 'tmp');
  mkdirSync(home);
  mkdirSync(temp);
  const { FCPD_STATE_DIR: _s, FCP_CONFIG_DIR: _c, FCP_KNOWN_HOSTS: _k, ...inherited } = process.env;
  const r = spawnSync(process.execPath, [DEMO], {
    env: {
      ...inherited,
      HOME: home,
      TMPDIR: temp,
      XDG_CONFIG_HOME: path.join(home, '.config'),
      XDG_STATE_HOME: path.join(home, '.local/state'),
    },
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /verified .* OK/);
  assert.equal(readdirSync(home), [], 'written under HOME');
  assert.equal(readdirSync(temp), [], 'left in TMPDIR');
});

test('test/run.js into a pipe: no colour codes, the plain count line', () => {
  const r = spawnSync(process.execPath, ['test/run.js', 'unit/umask'], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 60_000,
    // As a developer's shell might have it: run.js must still turn colours off for a pipe.
    env: { ...process.env, FORCE_COLOR: '1' },
  });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.not.ok(r.stdout.includes('\x1b'), JSON.stringify(r.stdout));
  assert.match(r.stdout, /^tests: \d+ passed, 0 failed$/m);
});

/** A test file whose second test blocks uvu's thread in spawnSync on a child that outlives any test timeout. */
const BLOCKED_TEST = `import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
test('first', () => {});
test('blocks', () => { spawnSync('sleep', ['${BLOCKED_SLEEP_S}']); });
test.run();
`;

/** Live (not zombie) processes whose command line is exactly `argv`. */
function liveProcesses(argv: string[]): number[] {
  const wanted = `${argv.join('\0')}\0`;
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        // The name and state first: another process's cmdline is read only when it may be ours (reading
        // one waits on that process's memory map lock).
        const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
        const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
        if (state === 'Z' || !stat.startsWith(`${pid} (${argv[0]}) `)) return false;
        return readFileSync(`/proc/${pid}/cmdline`, 'latin1') === wanted;
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

test('test/run.js stops a test process whose thread is blocked: says where, shows its state, kills its tree', () => {
  // A suite of one file in a checkout of its own (run.js runs dist/test under its working directory).
  const dir = path.join(tmp, 'blocked');
  mkdirSync(path.join(dir, 'dist/test'), { recursive: true });
  symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  writeFileSync(path.join(dir, 'dist/test/blocked.test.js'), BLOCKED_TEST);
  const r = spawnSync(process.execPath, [path.join(REPO, 'test/run.js')], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, FCP_TEST_STALL_MS: '2000' },
  });
  assert.is(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^tests: 0 passed, 1 failed$/m);
  assert.match(r.stderr, /uvu printed nothing for 2 s \(in blocked\.test\.js: test 2 or a hook around it\)/);
  // The blocked thread's state, and the child it waits for.
  assert.match(r.stderr, /^ {2}State: S \(sleeping\)$/m);
  assert.match(r.stderr, new RegExp(`^pid \\d+: sleep ${BLOCKED_SLEEP_S} $`, 'm'));
  assert.equal(liveProcesses(['sleep', String(BLOCKED_SLEEP_S)]), [], 'the blocked child was left running');
});

test.run();
