// What test/run.js prints when the uvu process stops making progress: the kernel's view of uvu and of every
// process under it (Linux /proc), and a native backtrace of each when gdb is installed. A test process at
// 0 % CPU whose per-test timeout never fires is blocked in a system call (spawnSync on a child that never
// exits, a read of a pipe or FIFO, a lock) or stopped by a signal: these lines say which, and in what.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Lines of /proc/PID/status worth reading for a stuck process (run state, pending and handled signals). */
const STATUS_FIELDS = /^(State|PPid|Threads|SigPnd|ShdPnd|SigBlk|SigIgn|SigCgt|VmRSS):/;
const GDB_TIMEOUT_MS = 30_000;

function read(file) {
  try {
    return readFileSync(file, 'latin1').trim();
  } catch (err) {
    return `(${err.code ?? err.message})`;
  }
}

/** ppid of each live process, from /proc/PID/stat (field 4, counted after the ')' that ends the name). */
function parents() {
  const ppid = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = read(`/proc/${entry}/stat`);
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[1] !== undefined) ppid.set(Number(entry), Number(fields[1]));
  }
  return ppid;
}

/** `root` and every process below it, parents before children. */
export function processTree(root) {
  const ppid = parents();
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, parent] of ppid) if (parent === tree[i]) tree.push(pid);
  }
  return tree;
}

/** The names in `dir`, none when it is gone (the process exited meanwhile). */
function entries(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function threads(pid) {
  return entries(`/proc/${pid}/task`).map((tid) => {
    const dir = `/proc/${pid}/task/${tid}`;
    const stat = read(`${dir}/stat`);
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return `  thread ${tid} ${read(`${dir}/comm`)}: state ${state}, wchan ${read(`${dir}/wchan`)}, syscall ${read(`${dir}/syscall`)}`;
  });
}

function descriptors(pid) {
  return entries(`/proc/${pid}/fd`).map((fd) => {
    try {
      return `  fd ${fd} -> ${readlinkSync(`/proc/${pid}/fd/${fd}`)}`;
    } catch {
      return `  fd ${fd} (gone)`;
    }
  });
}

/** The native stacks of every thread of `pid`, when gdb is installed (bounded: gdb itself may get stuck). */
function nativeStacks(pid) {
  const r = spawnSync('gdb', ['-p', String(pid), '-batch', '-nx', '-ex', 'thread apply all bt 30'], {
    encoding: 'utf8',
    timeout: GDB_TIMEOUT_MS,
    // No symbol server lookups: a CI box may have no network, and gdb would wait on it.
    env: { ...process.env, DEBUGINFOD_URLS: '' },
  });
  if (r.error !== undefined) return [`  (no native stacks: gdb ${r.error.code ?? r.error.message})`];
  return r.stdout
    .split('\n')
    .filter((line) => /^(Thread|#)/.test(line))
    .map((line) => `  ${line}`);
}

/** Everything /proc tells about one process, as indented lines. */
function describe(pid) {
  const cmd = read(`/proc/${pid}/cmdline`).replaceAll('\0', ' ');
  const status = read(`/proc/${pid}/status`)
    .split('\n')
    .filter((line) => STATUS_FIELDS.test(line))
    .map((line) => `  ${line.replace(/\s+/g, ' ')}`);
  return [
    `pid ${pid}: ${cmd}`,
    ...status,
    `  wchan ${read(`/proc/${pid}/wchan`)}, syscall ${read(`/proc/${pid}/syscall`)}`,
    '  kernel stack:',
    ...read(`/proc/${pid}/stack`)
      .split('\n')
      .map((line) => `    ${line}`),
    ...threads(pid),
    ...descriptors(pid),
  ];
}

/** The report for `root` (uvu) and its descendants, then the native stacks of `root`. */
export function processTreeReport(root) {
  return [
    ...processTree(root).flatMap((pid) => describe(pid)),
    `native stacks of ${root}:`,
    ...nativeStacks(root),
  ].join('\n');
}
