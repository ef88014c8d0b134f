/**
 * A private sshd on 127.0.0.1 for the ssh-based peers (scp, rsync, tar|ssh, rclone, lftp): its own host key,
 * user key, sshd_config and ssh_config in a temp dir, started with `sshd -D -f` and stopped by the bench's
 * cleanups. Nothing of the machine's own ssh setup is read or changed, apart from creating /run/sshd (the
 * privilege-separation directory sshd insists on).
 *
 * The remote side of every ssh row is a login to the bench's own account on this machine, and sshd runs each
 * command through that account's shell, which reads its rc file even for `ssh host cmd` (Debian's bash
 * sources ~/.bashrc when sshd starts it). The bench models a server, whose account has the stock rc file
 * (it returns at once when not interactive), not the bench runner's own dotfiles: a developer's ~/.bashrc
 * that runs `pyenv init` cost 90 ms of every login on this machine, charged to every ssh row and to none of
 * the standing daemon's. So, as root on Linux, sshd runs in a mount namespace of its own where the
 * account's non-interactive rc files are an empty file (`FCP_BENCH_REMOTE_RC=keep` keeps them; nothing
 * outside sshd's namespace sees the change).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, platform, tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { pinned } from './pin.js';
import { freePort, onCleanup, type Service, startService } from './proc.js';

export const SSHD = '/usr/sbin/sshd';
export const SSH_CIPHER = 'aes128-gcm@openssh.com';

export interface PrivateSshd {
  /** Port sshd listens on (the WAN proxy, when used, forwards here). */
  port: number;
  /** The listening sshd's pid: it reaps every connection's processes, so their CPU lands in its cutime. */
  pid: number;
  user: string;
  keyFile: string;
  /** ssh -F file: key, no known-hosts checks, the cipher; the port is given per command. */
  sshConfigFile: string;
  /**
   * Writes an ssh config where `alias` means `hostName`:`port` (same key and settings) and returns its path:
   * for tools that take a host name and ask ssh where it points (fcp --ssh runs `ssh -G`).
   */
  aliasConfig(alias: string, hostName: string, port: number): string;
  stop(): Promise<void>;
}

export type SshdResult = { ok: true; sshd: PrivateSshd } | { ok: false; reason: string };

/** apt-get installs `packages` (the harness does so for sshd only when FCP_BENCH_INSTALL=1); root only. */
export function aptInstall(packages: string[]): boolean {
  if (process.getuid?.() !== 0) return false;
  const update = spawnSync('apt-get', ['update'], { stdio: 'ignore', timeout: 300_000 });
  if (update.status !== 0) return false;
  const install = spawnSync('apt-get', ['install', '-y', ...packages], {
    stdio: 'ignore',
    timeout: 600_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return install.status === 0;
}

function keygen(file: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'fcp-bench', '-f', file], {
    stdio: 'ignore',
  });
  if (r.status !== 0) throw new Error(`ssh-keygen failed for ${file}`);
}

function sshdConfig(dir: string, port: number): string {
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${path.join(dir, 'host_ed25519')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin yes',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UseDNS no',
    'PrintMotd no',
    `Ciphers ${SSH_CIPHER},aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr`,
    // rclone and lftp open several connections at once; the default 10:30:100 would drop some.
    'MaxStartups 200',
    'MaxSessions 64',
    'Subsystem sftp internal-sftp',
    'LogLevel ERROR',
    '',
  ].join('\n');
}

/**
 * The rc files a shell reads for `SHELL -c CMD` when sshd starts it: bash (Debian sources ~/.bashrc when its
 * parent is sshd), zsh, fish, csh/tcsh. ~/.profile and friends are for login shells, which `ssh host cmd`
 * does not start.
 */
const NON_INTERACTIVE_RC = ['.bashrc', '.zshenv', '.config/fish/config.fish', '.cshrc', '.tcshrc'];

/**
 * How to start sshd so its sessions see an empty rc file in place of each of NON_INTERACTIVE_RC the account
 * has: `unshare -m` (a private mount namespace: the bind mounts vanish with sshd) and `exec`, so the pid stays
 * sshd's and its cutime still gathers every session's CPU. Undefined when that cannot be done here.
 */
function neutralRcLauncher(dir: string, cmd: string, args: string[]): [string, string[]] | undefined {
  if (process.env['FCP_BENCH_REMOTE_RC'] === 'keep') return undefined;
  if (platform() !== 'linux' || process.getuid?.() !== 0) return undefined;
  if (spawnSync('unshare', ['--version'], { stdio: 'ignore' }).status !== 0) return undefined;
  const home = homedir();
  const present = NON_INTERACTIVE_RC.map((rc) => path.join(home, rc)).filter((file) => existsSync(file));
  if (present.length === 0) return [cmd, args];
  const empty = path.join(dir, 'empty-rc');
  writeFileSync(empty, '');
  // $1 is the empty file, then the rc files, then `--` and sshd's command line.
  const script =
    'e=$1; shift; while [ "$1" != -- ]; do mount --bind "$e" "$1" || exit 1; shift; done; shift; exec "$@"';
  return [
    'unshare',
    ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', empty, ...present, '--', cmd, ...args],
  ];
}

/** Where a Host block points: every name at 127.0.0.1 (port per command), or one alias at a host and port. */
interface HostTarget {
  pattern: string;
  hostName: string;
  port?: number;
}

function sshConfig(
  dir: string,
  user: string,
  to: HostTarget = { pattern: '*', hostName: '127.0.0.1' },
): string {
  return [
    `Host ${to.pattern}`,
    `  HostName ${to.hostName}`,
    ...(to.port === undefined ? [] : [`  Port ${to.port}`]),
    `  User ${user}`,
    `  IdentityFile ${path.join(dir, 'id_ed25519')}`,
    '  IdentitiesOnly yes',
    '  UserKnownHostsFile /dev/null',
    '  StrictHostKeyChecking no',
    '  BatchMode yes',
    `  Ciphers ${SSH_CIPHER}`,
    '  Compression no',
    '  ControlMaster no',
    '  LogLevel ERROR',
    '',
  ].join('\n');
}

/** Starts the private sshd (behind `pin`, taskset in the pinned mode: its children inherit it), or says why it cannot. */
export async function startPrivateSshd(pin: string[] = []): Promise<SshdResult> {
  if (!existsSync(SSHD)) {
    return { ok: false, reason: `${SSHD} not installed (apt-get install -y openssh-server rsync)` };
  }
  const user = userInfo().username;
  const dir = mkdtempSync(path.join(tmpdir(), 'fcp-bench-ssh-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  keygen(path.join(dir, 'host_ed25519'));
  keygen(path.join(dir, 'id_ed25519'));
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(path.join(dir, 'id_ed25519.pub')));
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const configFile = path.join(dir, 'sshd_config');
  writeFileSync(configFile, sshdConfig(dir, port));
  const sshConfigFile = path.join(dir, 'ssh_config');
  writeFileSync(sshConfigFile, sshConfig(dir, user));
  let service: Service;
  try {
    const [cmd, args] = pinned(pin, SSHD, ['-D', '-e', '-f', configFile]);
    ({ service } = await startService(...(neutralRcLauncher(dir, cmd, args) ?? [cmd, args]), {
      readyPort: port,
    }));
  } catch (err) {
    return { ok: false, reason: `sshd did not start: ${err instanceof Error ? err.message : String(err)}` };
  }
  let aliases = 0;
  const sshd: PrivateSshd = {
    port,
    pid: service.pid,
    user,
    keyFile: path.join(dir, 'id_ed25519'),
    sshConfigFile,
    aliasConfig: (alias, hostName, aliasPort) => {
      const file = path.join(dir, `ssh_config.${++aliases}`);
      writeFileSync(file, sshConfig(dir, user, { pattern: alias, hostName, port: aliasPort }));
      return file;
    },
    stop: () => service.stop(),
  };
  return { ok: true, sshd };
}

/** The ssh command line (for rsync -e, lftp's connect-program, tar pipelines) for one port. */
export function sshCommand(sshd: PrivateSshd, port: number): string[] {
  return ['ssh', '-F', sshd.sshConfigFile, '-p', String(port)];
}
