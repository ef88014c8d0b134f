// The README's quick start, as a newcomer runs it: `npm run demo` starts a throwaway fcpd, pushes a
// generated tree, pushes it again (nothing to send), pulls it back and verifies both copies.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { spawnSync } from '../helpers/sync.js';

const DEMO = fileURLToPath(new URL('../../bench/demo.js', import.meta.url));

test('npm run demo pushes, re-pushes nothing, pulls back and verifies', () => {
  // A private HOME: the demo's client pins nothing in the developer's own known-hosts file.
  const home = mkdtempSync(path.join(tmpdir(), 'fcp-demo-home-'));
  try {
    const run = spawnSync(process.execPath, [DEMO], {
      encoding: 'utf8',
      timeout: 120_000,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: home, XDG_STATE_HOME: '', XDG_CONFIG_HOME: '' },
    });
    const shown = `exit ${run.status}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
    assert.is(run.status, 0, shown);
    assert.match(run.stdout, /verified \d+ entries on both copies .*: OK/, shown);
    assert.match(run.stdout, /fcp: 0 files sent, \d+ skipped, 0 failed/, 'the second push sends nothing');
    assert.not.match(run.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test.run();
