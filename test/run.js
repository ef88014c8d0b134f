#!/usr/bin/env node
// Runs the compiled uvu suites (dist/test/**/*.test.js) and ends with the plain "N passed, N failed" line
// that CI reads. Usage: node test/run.js [pattern]   (pattern filters test file paths, e.g. "unit/frame")
// The files run in FCP_TEST_JOBS test processes (default 1): each takes the next file from one queue when it
// is free (test/run-worker.js). With 2 the e2e files that wait (shaped links, ssh logins, daemons starting)
// overlap; two files at once meet what tests already meet beside another checkout's run (helpers/account-lock
// takes turns on a test account, ports are ephemeral), and each process has a TMPDIR of its own as each
// checkout has. Not the default: e2e/auto-connections' shared-link pull judges who closed each connection
// first, which the load of the other file can turn (once in four full runs with 2, session 17). A file's report is printed whole when it ends, with its time;
// the slowest files are listed before the totals.
// A test process that prints nothing for FCP_TEST_STALL_MS (default 8 minutes) is stopped, and the state of
// it and its children goes to stderr (test/stall-report.js).
import { fork } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmdirSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { processTree, processTreeReport } from './stall-report.js';

const { parse } = await import(new URL('../node_modules/uvu/parse/index.mjs', import.meta.url).href);
const WORKER = fileURLToPath(new URL('run-worker.js', import.meta.url));
if (!existsSync('dist/test')) {
  console.error('dist/test is missing: run `npm run build` first');
  process.exit(1);
}
const filter = process.argv[2] ?? '';
const pattern = filter === '' ? '\\.test\\.js$' : `${filter.replace(/[.]/g, '\\.')}.*\\.test\\.js$`;
const { suites } = await parse('dist/test', pattern);
const queue = [...suites];
const jobs = Math.max(
  1,
  Math.min(Number(process.env['FCP_TEST_JOBS'] ?? 1), availableParallelism(), queue.length),
);
// uvu colours its report when FORCE_COLOR says so (a developer's shell may): the reports are read and
// reprinted here, so they are plain text, in a terminal as in a log file or CI capture.
const env = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
// A test process exits when its last file is done and nothing is left on its event loop. A handle some test
// forgot (a socket that never reports 'close') would keep it alive and CI would hang: once it has no more
// files, it gets EXIT_GRACE_MS to exit on its own; the whole run gets RUN_LIMIT_MS.
const EXIT_GRACE_MS = 15_000;
const RUN_LIMIT_MS = 30 * 60_000;
const STDOUT_END_MS = 2_000;
// uvu prints a mark per finished test, and every test and hook has its own timeout (test/helpers/test.ts;
// the longest is 3 minutes) or, when it blocks the thread, its spawnSync's (e2e/packaging's before hook
// runs two of 3 minutes each). Silence for longer means the thread is blocked in a call that never
// returns or the process is stopped, which no timer inside it can catch: report its state and stop it.
// (test/e2e/tooling.test.ts tests this watchdog with a short FCP_TEST_STALL_MS.)
const STALL_MS = Number(process.env['FCP_TEST_STALL_MS'] ?? 8 * 60_000);
const SUMMARY = /\n {2}Total:\s+(\d+)\n {2}Passed:\s+(\d+)\n {2}Skipped:\s+(\d+)\n {2}Duration:[^\n]*\n\n/;
const started = Date.now();
const totals = { total: 0, passed: 0, skipped: 0, unfinished: 0 };
/** [file name, seconds] of every file that ended. */
const times = [];
const workers = new Set();
const tmpDirs = [];
let stopped = false;
const limit = setTimeout(
  () => stopWithReport(`the suite ran past ${RUN_LIMIT_MS / 60_000} minutes`, [...workers]),
  RUN_LIMIT_MS,
);
const watchdog = setInterval(
  () => {
    const now = Date.now();
    const stalled = [...workers].find((w) => w.current !== undefined && now - w.lastOutput >= STALL_MS);
    if (stalled === undefined) return;
    const where = whereStalled(stalled);
    stopWithReport(`uvu printed nothing for ${Math.round(STALL_MS / 1000)} s ${where}`, [stalled]);
  },
  Math.min(10_000, Math.max(200, STALL_MS / 5)),
);

function plain(s) {
  return s.replace(/\x1b\[[0-9;]*m/g, '');
}

/** The test a worker is in: its file and the count of marks (one per test) printed in it so far. */
function whereStalled(w) {
  const text = plain(w.out);
  if (text === '') return `(in ${w.current.name}: before its first test)`;
  const done = text.match(/[•✘]/g)?.length ?? 0;
  return `(in ${w.current.name}: test ${done + 1} or a hook around it)`;
}

/** Prints what the stalled process(es) and their children are doing, then kills every test process tree. */
function stopWithReport(why, shown) {
  stopped = true;
  clearInterval(watchdog);
  clearTimeout(limit);
  for (const w of shown) {
    console.error(`\ntest/run.js: ${why}; stopping it. uvu (pid ${w.child.pid}) and its children:`);
    console.error(processTreeReport(w.child.pid));
  }
  for (const w of workers) {
    // The test process first: killed after its child, it could run on (a blocked spawnSync returns) and
    // print a summary before its own SIGKILL lands, which a loaded machine allows between two kill() calls.
    for (const pid of processTree(w.child.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
  }
}

/** Hands the worker the next file, or tells it there are none (it then has EXIT_GRACE_MS to exit). */
function next(w) {
  const suite = stopped ? undefined : queue.shift();
  if (suite !== undefined) {
    w.current = { name: suite.name, since: Date.now() };
    w.lastOutput = Date.now();
    w.child.send({ name: suite.name, file: suite.file });
    return;
  }
  w.current = undefined;
  if (!w.child.connected) return;
  w.child.disconnect();
  w.grace = setTimeout(() => {
    console.error(
      '\ntest/run.js: a test process ran its last file but did not exit (a test left a handle open)',
    );
    w.child.kill('SIGKILL');
  }, EXIT_GRACE_MS);
  w.grace.unref();
}

/** A file's report is complete: print it with its time and count its tests. */
function fileEnded(w, report, summary) {
  const seconds = (Date.now() - w.current.since) / 1000;
  times.push([w.current.name, seconds]);
  totals.total += Number(summary[1]);
  totals.passed += Number(summary[2]);
  totals.skipped += Number(summary[3]);
  process.stdout.write(`${report.replace(/\n*$/, '')}   ${seconds.toFixed(1)} s\n\n`);
  next(w);
}

/**
 * Each test process gets a TMPDIR of its own, searchable by all like the one it is made in, as each checkout's
 * run has: a test that looks for what fcp left in tmpdir() (e2e/ssh-carried-ways' forwarding sockets) must not
 * see the other process's files.
 */
function privateTmp() {
  // Short: it lengthens every path the tests make, and a unix socket path holds 107 bytes (sshd's ControlPath
  // and fcpd's serve-once socket under a HOME in an sshd's dir missed by 3 with 'fcp-test-run-XXXXXX').
  const dir = mkdtempSync(path.join(tmpdir(), 'f'));
  chmodSync(dir, 0o755);
  tmpDirs.push(dir);
  return dir;
}

function startWorker() {
  const child = fork(WORKER, [], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...env, TMPDIR: privateTmp() },
  });
  const w = { child, out: '', current: undefined, lastOutput: Date.now(), grace: undefined };
  workers.add(w);
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    w.out += chunk;
    w.lastOutput = Date.now();
    for (
      let m = SUMMARY.exec(plain(w.out));
      m !== null && w.current !== undefined;
      m = SUMMARY.exec(plain(w.out))
    ) {
      const text = plain(w.out);
      w.out = text.slice(m.index + m[0].length);
      fileEnded(w, text.slice(0, m.index), m);
    }
  });
  // Not 'close': after disconnect() a forked child's 'close' does not come (node 20). Its report is whole
  // once it has exited and its stdout has ended.
  // A child of a test that inherited that stdout may hold it open: give it STDOUT_END_MS.
  const ended = new Promise((resolve) => {
    child.stdout.once('end', resolve);
    child.once('exit', () => setTimeout(resolve, STDOUT_END_MS));
  });
  child.once('exit', (code, signal) => void ended.then(() => exited(w, code, signal)));
  return w;
}

/** A test process is gone: a file it was inside counts as failed, and another process takes the queue on. */
function exited(w, code, signal) {
  clearTimeout(w.grace);
  workers.delete(w);
  if (w.current !== undefined) {
    // Died (or was killed) inside a file: what it printed, and the file counts as a failure.
    totals.unfinished += 1;
    process.stdout.write(
      `${w.out}\ntest/run.js: ${w.current.name} did not finish (exit ${code ?? signal})\n\n`,
    );
    w.current = undefined;
    if (!stopped && queue.length > 0) next(startWorker());
  }
  if (workers.size === 0) finish();
}

function finish() {
  clearTimeout(limit);
  clearInterval(watchdog);
  for (const dir of tmpDirs) {
    try {
      rmdirSync(dir);
    } catch {
      // Not empty: what a test left behind stays there to be seen.
    }
  }
  const slowest = times.sort((a, b) => b[1] - a[1]).slice(0, 15);
  if (slowest.length > 1) {
    console.log(`slowest files (${jobs === 1 ? 'one test process' : `${jobs} test processes`}):`);
    for (const [name, s] of slowest) console.log(`  ${s.toFixed(1).padStart(6)} s  ${name}`);
  }
  const failed = totals.total - totals.passed - totals.skipped + totals.unfinished + queue.length;
  console.log(
    `\n  Total:     ${totals.total}\n  Passed:    ${totals.passed}\n  Skipped:   ${totals.skipped}`,
  );
  console.log(`  Duration:  ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const skipped = totals.skipped > 0 ? `, ${totals.skipped} skipped` : '';
  console.log(`\ntests: ${totals.passed} passed, ${failed} failed${skipped}`);
  process.exit(failed === 0 && totals.total > 0 ? 0 : 1);
}

for (let i = 0; i < jobs; i++) next(startWorker());
