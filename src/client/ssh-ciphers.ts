/**
 * The cipher order of carried data connections (README "Carried mode: what limits it"). ssh's own
 * encryption is most of carried mode's CPU, on the server most of all, and OpenSSH's default order puts
 * chacha20-poly1305 first. On a CPU with AES instructions AES-GCM costs about a quarter less of ssh's CPU
 * (measured pinned, 512 MiB carried push through the WAN emulator: the client's ssh processes 1.66-1.77
 * CPU s with chacha20-poly1305, 1.30-1.31 with aes128-gcm; 1 GiB carried, 3 runs each, push: the
 * client's ssh 2.64-3.14 -> 1.96-2.36 CPU s, the server's sshd 3.11-3.64 -> 2.33-2.62; pull: 2.75-2.81 ->
 * 2.13-2.16 and 2.28-2.33 -> 1.51-1.70), and both are AEAD ciphers OpenSSH offers by default. So, and
 * only when the user made no choice of their own, the data connections ask for the same ciphers ssh would
 * offer with AES-GCM moved to the front: none added, none dropped, and the server still picks from what
 * both sides allow. A user's `-c`, or a `Ciphers` anywhere in their ssh config
 * (`ssh -G` differs from `ssh -F /dev/null -G`), wins as it is; so does a CPU without AES instructions
 * (chacha20 is then the faster) and any platform but Linux, where fcp cannot tell. The bootstrap's ssh,
 * which carries a few lines, is left as the user runs it.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { SshCommand } from '../transport/ssh-command.js';

/** The ciphers moved to the front, in this order. */
const AES_GCM = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'] as const;
/** `ssh -G` only reads config files; a stuck one must not hold the transfer up. */
export const CONFIG_QUERY_TIMEOUT_MS = 10_000;
/** ssh's options that take a value (OpenSSH 9's getopt string), so `-p 2222` is not read as flags. */
const VALUE_OPTIONS = new Set('bceilmopBDEFIJLOPQRSwW');

/**
 * `list` with the AES-GCM ciphers it has moved to the front (aes128 first), the others after them in their
 * own order; undefined when that changes nothing (no AES-GCM in it, or already first).
 */
export function aesGcmFirst(list: readonly string[]): string[] | undefined {
  const front = AES_GCM.filter((c) => list.includes(c));
  const reordered = [...front, ...list.filter((c) => !front.includes(c as (typeof AES_GCM)[number]))];
  return reordered.every((c, i) => c === list[i]) ? undefined : reordered;
}

/** The `ciphers` line of `ssh -G`'s output, as a list; undefined when there is none. */
export function ciphersFromConfig(output: string): string[] | undefined {
  const m = /^ciphers\s+(\S+)\s*$/im.exec(output);
  return m?.[1]?.split(',').filter((c) => c !== '');
}

/** Whether the `--ssh` words give `-c` (also in a cluster such as `-4c LIST` or `-cLIST`). */
export function choosesCiphers(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    if (!word.startsWith('-') || word.startsWith('--')) continue;
    for (let j = 1; j < word.length; j++) {
      const letter = word[j]!;
      if (letter === 'c') return true;
      if (!VALUE_OPTIONS.has(letter)) continue;
      // The value is the rest of this word or, when nothing is left of it, the next word.
      if (j === word.length - 1) i++;
      break;
    }
  }
  return false;
}

/** Whether this CPU has AES instructions: the `aes` flag of Linux's /proc/cpuinfo; false elsewhere. */
export async function cpuHasAes(): Promise<boolean> {
  if (process.platform !== 'linux') return false;
  try {
    return /^flags\s*:.*\baes\b/m.test(await readFile('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

/** `argv`'s stdout, or undefined when it fails or takes longer than CONFIG_QUERY_TIMEOUT_MS. */
export function sshQuery(argv: readonly string[]): Promise<string | undefined> {
  const [file, ...args] = argv;
  return new Promise((resolve) => {
    execFile(file!, args, { timeout: CONFIG_QUERY_TIMEOUT_MS }, (err, stdout) => {
      resolve(err === null ? stdout : undefined);
    });
  });
}

/**
 * The `-c` list for the carried data connections to `dest` (see the header), or undefined for no change.
 * `configured` is `ssh [user's args] -G DEST`'s output (undefined when it failed); ssh's defaults are asked
 * of the same program with no config file at all.
 */
export async function carriedCiphers(
  ssh: SshCommand,
  dest: string,
  configured: Promise<string | undefined>,
): Promise<string | undefined> {
  if (choosesCiphers(ssh.args) || !(await cpuHasAes())) return undefined;
  const [theirs, defaults] = await Promise.all([
    configured,
    sshQuery([ssh.file, '-F', '/dev/null', '-G', dest]),
  ]);
  const list = theirs === undefined ? undefined : ciphersFromConfig(theirs);
  const stock = defaults === undefined ? undefined : ciphersFromConfig(defaults);
  if (list === undefined || stock === undefined || list.join(',') !== stock.join(',')) return undefined;
  return aesGcmFirst(list)?.join(',');
}

/** `ssh` with `-c LIST` in front of the user's options, when there is a list. */
export function withCiphers(ssh: SshCommand, ciphers: string | undefined): SshCommand {
  return ciphers === undefined ? ssh : { file: ssh.file, args: ['-c', ciphers, ...ssh.args] };
}
