#!/usr/bin/env node
// Runs the compiled uvu suites (dist/test/**/*.test.js) and ends with the plain "N passed, N failed" line
// that CI reads. Usage: node test/run.js [pattern]   (pattern filters test file paths, e.g. "unit/frame")
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// uvu's package exports hide bin.js from require.resolve, so name the file directly.
const uvuBin = fileURLToPath(new URL('../node_modules/uvu/bin.js', import.meta.url));
if (!existsSync('dist/test')) {
  console.error('dist/test is missing: run `npm run build` first');
  process.exit(1);
}
const filter = process.argv[2] ?? '';
const pattern = filter === '' ? '\\.test\\.js$' : `${filter.replace(/[.]/g, '\\.')}.*\\.test\\.js$`;
// uvu colours its report unless told not to (it sets FORCE_COLOR itself): only a terminal gets colours,
// so a log file or CI capture holds plain text.
const colour = process.stdout.isTTY === true;
const child = spawn(process.execPath, [uvuBin, 'dist/test', pattern, ...(colour ? [] : ['--no-color'])], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: colour ? process.env : { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
});
// uvu exits when its last test file is done and nothing is left on the event loop. A handle some test
// forgot (a socket that never reports 'close') would keep it alive and CI would hang: once uvu has
// printed its summary, it gets EXIT_GRACE_MS to exit on its own; the whole run gets RUN_LIMIT_MS.
const EXIT_GRACE_MS = 15_000;
const RUN_LIMIT_MS = 30 * 60_000;
let out = '';
let lingered = false;
const limit = setTimeout(() => {
  console.error(`\ntest/run.js: the suite ran past ${RUN_LIMIT_MS / 60_000} minutes; stopping it`);
  child.kill('SIGKILL');
}, RUN_LIMIT_MS);
child.stdout.on('data', (chunk) => {
  out += chunk;
  process.stdout.write(chunk);
  if (/Duration:/.test(out) && !lingered) {
    lingered = true;
    setTimeout(() => {
      console.error('\ntest/run.js: uvu printed its summary but did not exit (a test left a handle open)');
      child.kill('SIGKILL');
    }, EXIT_GRACE_MS).unref();
  }
});
child.on('close', (code, signal) => {
  clearTimeout(limit);
  // Killed only for lingering after a complete summary: judge by the summary.
  if (signal === 'SIGKILL' && lingered) code = 0;
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const failed = Math.max(total - passed - skipped, code === 0 ? 0 : 1);
  console.log(`\ntests: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
  process.exit(code === 0 && failed === 0 && total > 0 ? 0 : 1);
});
