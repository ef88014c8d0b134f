/**
 * Running ssh as a child for fcp over ssh: its stderr goes to the user line by line as ssh prints it (the
 * last line kept for the error), and how it ended becomes an FcpError with the exit code the README
 * promises (7 for a login ssh refused, 4 for anything else that kept fcpd from starting).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { FcpError } from '../protocol/errors.js';

/** A stderr or stdout line longer than this is cut: it is for a message, not a log. */
const MAX_LINE_CHARS = 1000;
/** How long a child gets to exit after its stdin ends, then after SIGTERM, before the next step. */
export const SSH_EXIT_GRACE_MS = 2_000;

/** ssh's own status for its failures (man ssh: "255 if an error occurred"). */
const SSH_ERROR_STATUS = 255;
/** What ssh prints when the server refused the login or could not be trusted: exit 7, not 4. */
const LOGIN_REFUSED =
  /permission denied|host key verification failed|too many authentication failures|no more authentication methods/i;

export interface SshChild {
  readonly child: ChildProcess;
  /** ssh's last non-empty stderr line so far. */
  lastStderr(): string | undefined;
  /** Resolves when the child has exited and its pipes are closed. */
  readonly closed: Promise<SshEnd>;
}

/** How an ssh child ended; `error` when it could not even start (no such program). */
export interface SshEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** Starts `argv` with all three pipes; each stderr line goes to `onStderr`. */
export function spawnSsh(argv: readonly string[], onStderr: (line: string) => void): SshChild {
  const [file, ...args] = argv;
  const child = spawn(file!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let last: string | undefined;
  const closed = new Promise<SshEnd>((resolve) => {
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
    // A program that cannot start (no ssh on PATH) is told by 'error' alone.
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
  });
  // Writes to a child that exited fail with EPIPE; how it ended says more, through `closed`.
  child.stdin!.on('error', () => {});
  onLines(child.stderr!, (line) => {
    last = line;
    onStderr(line);
  });
  return { child, lastStderr: () => last, closed };
}

/** Calls `online` for each line of `stream`, without its newline, cut at MAX_LINE_CHARS. */
export function onLines(stream: NodeJS.ReadableStream, online: (line: string) => void): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = (pending + chunk).split('\n');
    pending = parts.pop()!.slice(0, MAX_LINE_CHARS);
    for (const line of parts) {
      const text = line.replace(/\r$/, '').slice(0, MAX_LINE_CHARS);
      if (text !== '') online(text);
    }
  });
  stream.on('end', () => {
    if (pending !== '') online(pending);
  });
}

/**
 * Ends the child's stdin (for fcpd --serve-once, the sign to exit), then SIGTERM and SIGKILL if it does
 * not go; resolves when it has gone. Never waits longer than about 2 × SSH_EXIT_GRACE_MS.
 */
export async function endSsh(ssh: SshChild): Promise<void> {
  const { child } = ssh;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.stdin?.end();
  if (await exitsWithin(ssh, SSH_EXIT_GRACE_MS)) return;
  child.kill('SIGTERM');
  if (await exitsWithin(ssh, SSH_EXIT_GRACE_MS)) return;
  child.kill('SIGKILL');
}

/** Ends the child's stdin and sends SIGTERM, without waiting: the process is about to exit. */
export function abortSsh(ssh: SshChild): void {
  ssh.child.stdin?.end();
  if (ssh.child.exitCode === null && ssh.child.signalCode === null) ssh.child.kill('SIGTERM');
}

async function exitsWithin(ssh: SshChild, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const exited = await Promise.race([ssh.closed.then(() => true), timeout]);
  clearTimeout(timer);
  return exited;
}

/**
 * The error for an ssh that ended before fcpd started. ssh exits 255 for its own failures: a refused
 * login or an untrusted host key is an authentication failure (exit 7); anything else (unknown host,
 * refused, timed out) is a connection failure (exit 4). Another status is the remote command's own.
 */
export function sshEnded(dest: string, how: SshEnd, lastStderr: string | undefined): FcpError {
  if (how.error !== undefined)
    return new FcpError('FCP_ERR_NET_CONNECT', `cannot run ssh to reach ${dest}: ${how.error.message}`);
  const said = lastStderr === undefined ? '' : `: ${lastStderr}`;
  if (how.code === SSH_ERROR_STATUS && lastStderr !== undefined && LOGIN_REFUSED.test(lastStderr))
    return new FcpError('FCP_ERR_AUTH_DENIED', `ssh could not log in to ${dest}${said}`);
  if (how.code === SSH_ERROR_STATUS || how.code === null)
    return new FcpError('FCP_ERR_NET_CONNECT', `ssh could not reach ${dest}${said}`);
  return new FcpError(
    'FCP_ERR_NET_CONNECT',
    `fcpd did not start on ${dest} (exit status ${how.code})${said}`,
  );
}
