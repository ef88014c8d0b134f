/**
 * The client's pins of daemon host keys (spec/SECURITY.md §4.2): one line per daemon, `host:port SHA256:...`,
 * in `$XDG_CONFIG_HOME/fcp/known_hosts` (default `~/.config/fcp/known_hosts`). The first connection pins the
 * key; a different key later stops the client, as ssh does, until the user accepts the new key explicitly.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { authError } from './auth-errors.js';

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
const FINGERPRINT_RE = /^SHA256:[A-Za-z0-9+/]{43}$/;

/**
 * `$FCP_KNOWN_HOSTS`, else `$FCP_CONFIG_DIR/known_hosts`, else `$XDG_CONFIG_HOME/fcp/known_hosts`, else
 * `~/.config/fcp/known_hosts`.
 */
export function defaultKnownHostsPath(
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): string {
  const explicit = env['FCP_KNOWN_HOSTS'];
  if (explicit !== undefined && explicit !== '') return explicit;
  const configDir = env['FCP_CONFIG_DIR'];
  if (configDir !== undefined && configDir !== '') return join(configDir, 'known_hosts');
  const xdg = env['XDG_CONFIG_HOME'];
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'fcp', 'known_hosts');
  return join(home, '.config', 'fcp', 'known_hosts');
}

/**
 * The key a daemon is pinned under: the host name the client connects to (after ssh-config HostName
 * resolution), lower-cased, and the port; IPv6 literals in brackets.
 */
export function knownHostName(host: string, port: number): string {
  const h = host.toLowerCase();
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

export function isFingerprint(text: string): boolean {
  return FINGERPRINT_RE.test(text);
}

export interface KnownHostLine {
  readonly name: string;
  readonly fingerprint: string;
  /** 1-based. */
  readonly line: number;
}

/** Parses the file's text; comments, blank and unreadable lines are ignored (and kept when rewriting). */
export function parseKnownHosts(text: string): KnownHostLine[] {
  const out: KnownHostLine[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const fields = raw.trim().split(/\s+/);
    if (fields.length < 2 || fields[0]!.startsWith('#') || !isFingerprint(fields[1]!)) continue;
    out.push({ name: fields[0]!, fingerprint: fields[1]!, line: i + 1 });
  }
  return out;
}

export type HostKeyStatus = 'known' | 'pinned';

/**
 * Checks `fingerprint` for `name`: 'known' when pinned already, 'pinned' when the host was new and is now
 * pinned (trust on first use). A different pinned key throws FCP_ERR_AUTH_HOST_KEY_CHANGED with ssh's warning.
 */
export async function verifyHostKey(file: string, name: string, fingerprint: string): Promise<HostKeyStatus> {
  const text = await readKnownHosts(file);
  if (checkPins(text, file, name, fingerprint) === 'known') return 'known';
  await writeKnownHosts(file, appendLine(text, `${name} ${fingerprint}`));
  return 'pinned';
}

/**
 * verifyHostKey without the write (fcp --dry-run): 'known', or 'unknown' for a host never pinned; a
 * different pinned key throws alike.
 */
export async function checkHostKey(
  file: string,
  name: string,
  fingerprint: string,
): Promise<'known' | 'unknown'> {
  return checkPins(await readKnownHosts(file), file, name, fingerprint);
}

function checkPins(text: string, file: string, name: string, fingerprint: string): 'known' | 'unknown' {
  const pins = parseKnownHosts(text).filter((l) => l.name === name);
  if (pins.some((l) => l.fingerprint === fingerprint)) return 'known';
  if (pins.length > 0) throw hostKeyChanged(file, name, fingerprint, pins[0]!);
  return 'unknown';
}

/**
 * Replaces every pin of `name` by `fingerprint` (the documented way to accept a changed host key); false,
 * writing nothing, when that is the only key pinned for `name` already.
 */
export async function replaceHostKey(file: string, name: string, fingerprint: string): Promise<boolean> {
  if (!isFingerprint(fingerprint))
    throw authError('FCP_ERR_AUTH_MALFORMED', `not a fingerprint: ${fingerprint}`);
  const text = await readKnownHosts(file);
  const pins = parseKnownHosts(text).filter((l) => l.name === name);
  if (pins.length > 0 && pins.every((l) => l.fingerprint === fingerprint)) return false;
  const kept = text
    .split('\n')
    .filter((raw) => raw.trim().split(/\s+/)[0] !== name || raw.trim().startsWith('#'));
  await writeKnownHosts(file, appendLine(kept.join('\n'), `${name} ${fingerprint}`));
  return true;
}

function hostKeyChanged(file: string, name: string, presented: string, pin: KnownHostLine): Error {
  // One line, like every fcp error (the CLI escapes newlines, which turned ssh's multi-line banner into a
  // wall of "\n"), and it keeps ssh's words so nobody skims past it.
  return authError(
    'FCP_ERR_AUTH_HOST_KEY_CHANGED',
    `WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for ${name}: it presented ${presented}, ` +
      `but ${file}:${pin.line} pins ${pin.fingerprint}. Someone may be eavesdropping (man-in-the-middle), ` +
      'or the daemon got a new host key: if `fcpd --fingerprint` on the server prints ' +
      `${presented}, run again with --accept-host-key ${presented} or delete line ${pin.line} of ${file}; ` +
      'refusing to connect',
    { path: file },
  );
}

function appendLine(text: string, line: string): string {
  const base = text === '' || text.endsWith('\n') ? text : `${text}\n`;
  return `${base}${line}\n`;
}

async function readKnownHosts(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** Temp file + rename: a crash never leaves a truncated known_hosts. */
async function writeKnownHosts(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: DIR_MODE });
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temp, 'wx', FILE_MODE);
  try {
    await handle.writeFile(text);
    await handle.sync();
    await handle.close();
    await rename(temp, file);
  } catch (err) {
    // Best effort: the handle may be closed already and the temp file renamed; the error thrown is the one.
    await handle.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw err;
  }
}
