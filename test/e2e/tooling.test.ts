// Issue 15, item 14: `npm run demo` touches nothing outside its temp directory (it created a host key in the
// real ~/.local/state/fcpd and read ~/.ssh/config), and the test runner prints no colour codes into a pipe.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { removeTree } from '../helpers/tree.js';

/** The checkout: this file is dist/test/e2e/tooling.test.js. */
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const DEMO = path.join(REPO, 'dist/bench/demo.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'fcp-e2e-tooling-'));
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

test.run();
