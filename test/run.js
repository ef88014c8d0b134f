#!/usr/bin/env node
// Runs the compiled uvu suites (dist/test/**/*.test.js) and ends with the plain "N passed, N failed" line
// that CI reads. Usage: node test/run.js [pattern]   (pattern filters test file paths, e.g. "unit/frame")
// A run whose uvu prints nothing for FCP_TEST_STALL_MS (default 8 minutes) is stopped, and the state of uvu
// and its children goes to stderr (test/stall-report.js).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { clearInterval, setInterval } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { processTree, processTreeReport } from './stall-report.js';

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
// uvu prints a mark per finished test, and every test and hook has its own timeout (test/helpers/test.ts;
// the longest is 3 minutes) or, when it blocks the thread, its spawnSync's (e2e/packaging's before hook
// runs two of 3 minutes each). Silence for longer means uvu's thread is blocked in a call that never
// returns or the process is stopped, which no timer inside it can catch: report its state and stop it.
// (test/e2e/tooling.test.ts tests this watchdog with a short FCP_TEST_STALL_MS.)
const STALL_MS = Number(process.env['FCP_TEST_STALL_MS'] ?? 8 * 60_000);
let out = '';
let lingered = false;
let lastOutput = Date.now();
const limit = setTimeout(
  () => stopWithReport(`the suite ran past ${RUN_LIMIT_MS / 60_000} minutes`),
  RUN_LIMIT_MS,
);
const watchdog = setInterval(
  () => {
    if (lingered || Date.now() - lastOutput < STALL_MS) return;
    stopWithReport(`uvu printed nothing for ${Math.round(STALL_MS / 1000)} s ${whereStalled()}`);
  },
  Math.min(10_000, Math.max(200, STALL_MS / 5)),
);

/** The test uvu is in: the file it named last and the count of marks (one per test) printed after it. */
function whereStalled() {
  const m = /([^\s]+\.test\.js)\n([^\n]*)$/.exec(out.replace(/\x1b\[[0-9;]*m/g, ''));
  if (m === null) return out === '' ? '(before its first test file started)' : '(after its last mark)';
  const done = m[2].match(/[•✘]/g)?.length ?? 0;
  return `(in ${m[1]}: test ${done + 1} or a hook around it)`;
}

/** Prints what uvu and its children are doing, then kills each of them (by pid: only our own tree). */
function stopWithReport(why) {
  clearInterval(watchdog);
  clearTimeout(limit);
  console.error(`\ntest/run.js: ${why}; stopping it. uvu (pid ${child.pid}) and its children:`);
  console.error(processTreeReport(child.pid));
  // uvu first: killed after its child, it could run on (a blocked spawnSync returns) and print a summary
  // before its own SIGKILL lands, which a loaded machine allows between two kill() calls.
  for (const pid of processTree(child.pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
}

child.stdout.on('data', (chunk) => {
  out += chunk;
  lastOutput = Date.now();
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
  clearInterval(watchdog);
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
