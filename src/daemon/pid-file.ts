/**
 * fcpd's pid file: written once the daemon serves (it doubles as the readiness signal `fcpd -d` waits for),
 * removed on every exit, and read by `fcpd stop` to find whom to signal.
 *
 * The file may lie in a served account's home while root reads it (`sudo fcpd stop --user alice`), so it is
 * read like an untrusted file: no symlink, no FIFO, a regular file of a few bytes, and a process is signalled
 * only when it belongs to the file's owner (else alice could write `1` into it and have root stop init).
 */
import { constants as fsConstants, readFileSync, unlinkSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoOf, FcpError, isErrorCode, toFcpError } from '../protocol/errors.js';
import { type Account, isRoot, withAccountIds } from '../security/privileges.js';

const STATE_DIR_MODE = 0o700;
const PID_FILE_MODE = 0o644;
const MAX_PID_FILE_BYTES = 64;
const POLL_MS = 50;
/** How long a SIGKILLed process may take to disappear before stopDaemon gives up. */
const KILL_GRACE_MS = 2000;

/** True if `pid` names a live process. EPERM means it exists but belongs to someone else. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM';
  }
}

/**
 * Writes this process's pid, atomically (temp file + rename) so a reader never sees a half-written number.
 * Refuses when the file already names a live process; a stale file is replaced.
 */
export async function writePidFile(file: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: STATE_DIR_MODE });
  const existing = await readPidFile(file);
  if (existing !== undefined && isAlive(existing)) {
    throw new FcpError('FCP_ERR_USAGE', `fcpd already running (pid ${existing})`, { path: file });
  }
  const temp = `${file}.${process.pid}.tmp`;
  try {
    const handle = await open(temp, 'w', PID_FILE_MODE);
    try {
      await handle.writeFile(`${process.pid}\n`);
      // The umask may have narrowed the mode given to open(); readers such as `fcpd stop` may be other users.
      await handle.chmod(PID_FILE_MODE);
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    // Best effort: the temp file may not exist (open failed); the error thrown next is the one to report.
    await unlink(temp).catch(() => {});
    throw toFcpError(err, file);
  }
}

/** The pid a pid file names; undefined if there is no file or it does not hold a pid. */
export async function readPidFile(file: string): Promise<number | undefined> {
  return (await readPidRecord(file))?.pid;
}

interface PidRecord {
  readonly pid: number | undefined;
  /** Owner of the pid file: the account the daemon that wrote it ran as. */
  readonly uid: number;
}

async function readPidRecord(file: string): Promise<PidRecord | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    // O_NONBLOCK: a FIFO planted in place of the file must not hang the reader.
    handle = await open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw toFcpError(err, file);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new FcpError('FCP_ERR_USAGE', `${file} is not a regular file`, { path: file });
    const buf = Buffer.alloc(MAX_PID_FILE_BYTES);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    return { pid: parsePid(buf.subarray(0, bytesRead).toString('utf8')), uid: st.uid };
  } finally {
    await handle.close();
  }
}

function parsePid(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^[0-9]{1,10}$/.test(trimmed)) return undefined;
  const pid = Number(trimmed);
  return pid > 0 ? pid : undefined;
}

/** Removes the pid file if it still names this process (a newer daemon may have replaced it). */
export async function removePidFile(file: string): Promise<void> {
  await removePidFileOf(file, process.pid);
}

/**
 * Removes the pid file when this process exits, however it exits short of a fatal signal: after a clean stop,
 * a start-up error, or an uncaught exception. Synchronous, because 'exit' listeners cannot wait.
 */
export function removePidFileAtExit(file: string): void {
  process.once('exit', () => {
    try {
      if (parsePid(readFileSync(file, 'utf8')) === process.pid) unlinkSync(file);
    } catch {
      // Gone already, or no longer ours to remove: nothing is left behind that names us.
    }
  });
}

async function removePidFileOf(file: string, pid: number | undefined, owner?: Account): Promise<void> {
  if ((await readPidFile(file)) !== pid) return;
  const removed = (err: unknown): void => {
    if (errnoOf(err) !== 'ENOENT') throw toFcpError(err, file);
  };
  // As the account whose file it is: the kernel then resolves every level of the path as that user would,
  // so a parent the user swapped for a link cannot make root unlink a file the user could not.
  if (owner !== undefined && isRoot()) {
    withAccountIds(owner, () => {
      try {
        unlinkSync(file);
      } catch (err) {
        removed(err);
      }
    });
    return;
  }
  await unlink(file).catch(removed);
}

/**
 * Stops the daemon a pid file names: SIGTERM, wait up to `timeoutMs` for it to exit, then SIGKILL.
 * A pid file that names no live process (or no pid at all) is stale: it is removed and 'not-running' returned.
 * `owner`: the account whose daemon this is (`fcpd stop --user NAME`): its file must be that account's (the
 * daemon writes it after dropping to it), never root's, which a link in a parent level could lead to.
 */
export async function stopDaemon(
  file: string,
  timeoutMs: number,
  owner?: Account,
): Promise<'stopped' | 'not-running'> {
  const record = await readPidRecord(file);
  if (owner !== undefined && record !== undefined && record.uid !== owner.uid) {
    throw new FcpError(
      'FCP_ERR_USAGE',
      `${file} belongs to uid ${record.uid}, not to ${owner.name} (uid ${owner.uid}): not using it`,
      { path: file },
    );
  }
  const pid = record?.pid;
  if (record === undefined || pid === undefined || !isAlive(pid)) {
    await removePidFileOf(file, pid, owner);
    return 'not-running';
  }
  checkOwner(pid, record.uid, file);
  if (!signal(pid, 'SIGTERM', file)) {
    await removePidFileOf(file, pid, owner);
    return 'not-running';
  }
  if (!(await waitForExit(pid, timeoutMs))) {
    signal(pid, 'SIGKILL', file);
    if (!(await waitForExit(pid, KILL_GRACE_MS))) {
      throw new FcpError('FCP_ERR_INTERNAL', `fcpd (pid ${pid}) did not exit after SIGKILL`, { path: file });
    }
  }
  // A daemon that exits cleanly removes its own pid file; one that was killed cannot.
  await removePidFileOf(file, pid, owner);
  return 'stopped';
}

/**
 * Refuses to signal a process that does not belong to the pid file's owner (a root-owned file may name any
 * process: only root could have written it). Where /proc is missing the check cannot be made and is skipped.
 */
function checkOwner(pid: number, fileUid: number, file: string): void {
  if (fileUid === 0) return;
  const processUid = processOwner(pid);
  if (processUid !== undefined && processUid !== fileUid) {
    throw new FcpError(
      'FCP_ERR_USAGE',
      `${file} names pid ${pid}, which runs as uid ${processUid}, not as the file's owner (uid ${fileUid}): not signalling it`,
      { path: file },
    );
  }
}

/**
 * The effective uid a process runs as, from /proc/PID/status (not the directory's owner: a process that
 * dropped root is not dumpable, and the kernel then shows its /proc entries as root's).
 */
function processOwner(pid: number): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const uids = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
  return uids === null ? undefined : Number(uids[2]);
}

/** Sends a signal; false if the process is already gone. */
export function signal(pid: number, name: NodeJS.Signals, file: string): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === 'ESRCH') return false;
    // EPERM (another account's process) keeps its name; an errno fcp has no code for is the catch-all.
    const code = errno !== undefined && isErrorCode(errno) ? errno : 'FCP_ERR_INTERNAL';
    throw new FcpError(code, `cannot send ${name} to fcpd (pid ${pid})`, {
      path: file,
      cause: err,
    });
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(POLL_MS);
  }
  return true;
}
