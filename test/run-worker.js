// One test process of test/run.js: runs the compiled uvu suites its parent sends, one file at a time, with
// uvu's own runner, and prints uvu's report of each (the file's name, a mark per test, failures, then uvu's
// Total/Passed/Skipped/Duration lines, which end the file for the parent). Files come over the IPC channel as
// { name, file } messages, so the parent hands the next file to whichever process is free; the channel's
// close means no more files, and the process then exits once its event loop is empty, as uvu's own does.

// Before uvu loads: with it set, a suite's test.run() queues the suite instead of running it on a timer.
globalThis.UVU_DEFER = 1;
globalThis.UVU_QUEUE = [];
const uvu = await import('uvu');
const { pathToFileURL } = await import('node:url');

/** Files run one after another: a second message waits for the file before it. */
let chain = Promise.resolve();
let failedToLoad = false;

async function runFile({ name, file }) {
  // uvu's runner takes the suites queued by the file's import, under the name it prints.
  globalThis.UVU_QUEUE.length = 0;
  globalThis.UVU_INDEX = 0;
  globalThis.UVU_QUEUE.push([name]);
  try {
    await import(pathToFileURL(file).href);
  } catch (err) {
    // A file that cannot load counts as one failed test; the other files still run.
    failedToLoad = true;
    process.stdout.write(`${name}\n✘   (0 / 1)\n\n${err?.stack ?? String(err)}\n`);
    process.stdout.write('\n  Total:     1\n  Passed:    0\n  Skipped:   0\n  Duration:  0ms\n\n');
    return;
  }
  await uvu.exec(false);
}

process.on('message', (msg) => {
  chain = chain.then(() => runFile(msg));
});
process.on('disconnect', () => {
  // uvu sets process.exitCode per file; the parent judges by the counts, but keep a failure visible here too.
  void chain.then(() => {
    if (failedToLoad) process.exitCode = 1;
  });
});
