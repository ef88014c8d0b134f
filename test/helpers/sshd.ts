// A private OpenSSH server on 127.0.0.1 (and ::1) for the tests of fcp over ssh (issue 17): its own host
// key, user key, authorized_keys, sshd_config and ssh_config in a temp dir, on a free high port. Nothing of
// the machine's own ssh setup is read or changed (not /etc/ssh, not the system's sshd, not anyone's ~/.ssh),
// apart from creating /run/sshd, the privilege-separation directory sshd insists on.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FCPD_BIN, grantSearchAbove, track } from './cli.js';
import { freePort } from './daemon.js';
import { type RemoteProcess, remoteProcesses, stopAll } from './remote-processes.js';
import { execFileSync } from './sync.js';

export { isRunning, type RemoteProcess } from './remote-processes.js';

export const SSHD = '/usr/sbin/sshd';
/** The account the harness logs in as when a test asks for an unprivileged remote user. */
export const SSH_TEST_USER = 'fcpuser-ssh';
/** Where the system keeps commands; a session PATH is built from these (see RemoteTools). */
const SYSTEM_BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
/** Left out of a RemoteTools PATH, so "no node" and "no fcpd" really mean it. */
const NODE_COMMANDS = new Set(['node', 'nodejs', 'npm', 'npx', 'corepack', 'fcp', 'fcpd']);
const READY_TIMEOUT_MS = 10_000;
const LOG_LIMIT = 64 * 1024;

/** The commands a session finds on its PATH besides the system's (which never include node here). */
export interface RemoteTools {
  /** `node`: this test's node binary. */
  node: boolean;
  /** `fcpd`: a wrapper that runs this checkout's dist/bin/fcpd.js with this test's node. */
  fcpd: boolean;
}

export interface SshdOptions {
  /** The alias's login user: 'root' (default) or SSH_TEST_USER (created when missing). */
  user?: string;
  /**
   * The PATH every session gets: a string as it is, or RemoteTools (system commands without node, plus the
   * ones asked for). Default: the system's standard PATH, which has node and no fcpd.
   */
  path?: string | RemoteTools;
  /** More sshd_config lines, placed before the harness's per-user Match blocks. */
  extraConfig?: string[];
  /** Also listen on [::1], reachable as `${alias}6`. */
  ipv6?: boolean;
  /** The Host alias in the ssh config; default 'fcp-test-host'. */
  alias?: string;
}

export interface PrivateSshd {
  /** Host alias in sshConfigFile: 127.0.0.1, the port, the user, the key, the recorded host key. */
  alias: string;
  /** The alias for [::1], when started with ipv6. */
  alias6?: string;
  port: number;
  user: string;
  /** `ssh -F FILE`: what a test gives fcp's --ssh. */
  sshCommand: string;
  sshConfigFile: string;
  /** The user key (Ed25519, no passphrase) authorized for root and the test account. */
  keyFile: string;
  /** The temp dir holding everything; removed by stop(). */
  dir: string;
  /** HOME of `user`'s sessions: a private directory in `dir`, owned by the user, fresh per sshd. */
  home: string;
  /** HOME of another authorized user's sessions (root, SSH_TEST_USER). */
  homeOf(user: string): string;
  /** Another ssh config for the same alias with some keywords replaced (IdentityFile, User, ...). */
  configWith(overrides: Record<string, string>): string;
  /** What sshd has written on stderr so far (at most the last 64 KiB). */
  log(): string;
  /** Every live process started under this sshd (sessions and what they ran, orphans included). */
  listRemoteProcesses(): RemoteProcess[];
  /** Stops sshd and every process listRemoteProcesses() finds; removes `dir`. */
  stop(): Promise<void>;
}

/** Starts a private sshd and waits until it listens. Needs root (it logs in as root and the test account). */
export async function startSshd(opts: SshdOptions = {}): Promise<PrivateSshd> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: install openssh-server (.ci/run does)`);
  const user = opts.user ?? 'root';
  const users = user === 'root' ? ['root'] : ['root', user];
  if (user === SSH_TEST_USER) ensureTestUser();
  const dir = mkdtempSync(path.join(tmpdir(), 'fcp-sshd-'));
  // Sessions of the test account must reach their authorized_keys, home and the fcpd wrapper in here.
  chmodSync(dir, 0o755);
  try {
    const keys = makeKeys(dir, users);
    const homes = makeHomes(dir, users);
    const sessionPath = await resolvePath(dir, opts.path);
    const marker = `FCP_TEST_SSHD=${dir}`;
    const port = await freePort();
    const configFile = path.join(dir, 'sshd_config');
    writeFileSync(
      configFile,
      sshdConfig({ dir, port, ipv6: opts.ipv6 === true, extra: opts.extraConfig ?? [] }),
    );
    for (const u of users) {
      writeFileSync(configFile, matchBlock(u, [`PATH=${sessionPath}`, `HOME=${homes.get(u)}`, marker]), {
        flag: 'a',
      });
    }
    const alias = opts.alias ?? 'fcp-test-host';
    const hosts = [{ alias, address: '127.0.0.1' }];
    if (opts.ipv6 === true) hosts.push({ alias: `${alias}6`, address: '::1' });
    const block = (o: Record<string, string> = {}) =>
      hosts
        .map((h) => hostBlock(h.alias, h.address, { ...clientDefaults(dir, port, user, keys), ...o }))
        .join('');
    writeFileSync(path.join(dir, 'known_hosts'), knownHosts(dir, port, hosts));
    const sshConfigFile = path.join(dir, 'ssh_config');
    writeFileSync(sshConfigFile, block());
    const server = await launch(configFile, port);
    let extraConfigs = 0;
    const sshd: PrivateSshd = {
      alias,
      ...(opts.ipv6 === true ? { alias6: `${alias}6` } : {}),
      port,
      user,
      sshCommand: `ssh -F ${sshConfigFile}`,
      sshConfigFile,
      keyFile: keys,
      dir,
      home: homes.get(user) ?? '',
      homeOf: (u) => {
        const h = homes.get(u);
        if (h === undefined)
          throw new Error(`${u} cannot log in to this sshd (authorized: ${users.join(', ')})`);
        return h;
      },
      configWith: (overrides) => {
        const file = path.join(dir, `ssh_config.${++extraConfigs}`);
        writeFileSync(file, block(overrides));
        return file;
      },
      log: () => server.log(),
      listRemoteProcesses: () => remoteProcesses(server.child.pid ?? -1, marker),
      stop: async () => {
        await stopAll(server.child, marker);
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return sshd;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** The user key and host key, and authorized_keys/<user> for each user (AuthorizedKeysFile .../%u). */
function makeKeys(dir: string, users: string[]): string {
  const keyFile = path.join(dir, 'id_ed25519');
  keygen(path.join(dir, 'host_ed25519'));
  keygen(keyFile);
  const authorized = path.join(dir, 'authorized_keys');
  mkdirSync(authorized, { mode: 0o755 });
  for (const u of users)
    writeFileSync(path.join(authorized, u), readFileSync(`${keyFile}.pub`), { mode: 0o644 });
  return keyFile;
}

function keygen(file: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'fcp-test', '-f', file], {
    stdio: 'pipe',
    timeout: 10_000,
  });
}

/** A private HOME per user (owned by it, 0700): nothing a session writes lands in a real home. */
function makeHomes(dir: string, users: string[]): Map<string, string> {
  const homes = new Map<string, string>();
  for (const u of users) {
    const home = path.join(dir, `h-${u}`);
    mkdirSync(home, { mode: 0o700 });
    const { uid, gid } = lookupUser(u);
    chownSync(home, uid, gid);
    homes.set(u, home);
  }
  return homes;
}

async function resolvePath(dir: string, given: SshdOptions['path']): Promise<string> {
  if (given === undefined) return '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  if (typeof given === 'string') return given;
  const tools = path.join(dir, 'tools');
  mkdirSync(tools, { mode: 0o755 });
  if (given.node) await symlink(process.execPath, path.join(tools, 'node'));
  if (given.fcpd) {
    grantSearchAbove(FCPD_BIN);
    const wrapper = `#!/bin/sh\nexec ${shellQuote(process.execPath)} ${shellQuote(FCPD_BIN)} "$@"\n`;
    writeFileSync(path.join(tools, 'fcpd'), wrapper, { mode: 0o755 });
  }
  return `${tools}:${await systemWithoutNode()}`;
}

let systemBin: string | undefined;

/**
 * A directory of links to every system command except node's and fcp's. On this kind of machine node is
 * in /usr/bin beside sh and mkdir, so a PATH without node cannot simply leave a directory out. Made once per
 * test process (a thousand links take seconds on a loaded machine) and shared by its sshds, read-only.
 */
async function systemWithoutNode(): Promise<string> {
  if (systemBin !== undefined) return systemBin;
  const sys = mkdtempSync(path.join(tmpdir(), 'fcp-sshd-bin-'));
  chmodSync(sys, 0o755);
  process.once('exit', () => rmSync(sys, { recursive: true, force: true }));
  const links = new Map<string, string>();
  for (const bin of SYSTEM_BIN_DIRS) {
    if (!existsSync(bin)) continue;
    for (const name of readdirSync(bin)) {
      if (!NODE_COMMANDS.has(name) && !links.has(name)) links.set(name, path.join(bin, name));
    }
  }
  // All at once: the file system's latency overlaps in libuv's thread pool (about twice as fast here).
  await Promise.all([...links].map(([name, target]) => symlink(target, path.join(sys, name))));
  systemBin = sys;
  return sys;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

function sshdConfig(c: { dir: string; port: number; ipv6: boolean; extra: string[] }): string {
  return [
    `Port ${c.port}`,
    'ListenAddress 127.0.0.1',
    ...(c.ipv6 ? ['ListenAddress ::1'] : []),
    `HostKey ${path.join(c.dir, 'host_ed25519')}`,
    `PidFile ${path.join(c.dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(c.dir, 'authorized_keys', '%u')}`,
    // The files sit in /tmp, which is world-writable: StrictModes would refuse them.
    'StrictModes no',
    // No PAM: no session modules, no motd, no loginuid; the account checks that matter stay (a locked
    // password field refuses the login, hence ensureTestUser's '*').
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UseDNS no',
    'PrintMotd no',
    'PrintLastLog no',
    // fcp's carried mode opens one ssh connection per data connection, all at once.
    'MaxStartups 100',
    'Subsystem sftp internal-sftp',
    // INFO: "Server listening on" is the ready signal, and logins land in log() for failing tests.
    'LogLevel INFO',
    ...c.extra,
    '',
  ].join('\n');
}

/**
 * The session environment of one user. sshd keeps only the first SetEnv line that applies, so everything
 * goes on one line per user; Match blocks come last because they run to the end of the file.
 */
function matchBlock(user: string, env: string[]): string {
  return `Match User ${user}\n  SetEnv ${env.join(' ')}\n`;
}

function clientDefaults(dir: string, port: number, user: string, keyFile: string): Record<string, string> {
  return {
    Port: String(port),
    User: user,
    IdentityFile: keyFile,
    IdentitiesOnly: 'yes',
    IdentityAgent: 'none',
    UserKnownHostsFile: path.join(dir, 'known_hosts'),
    GlobalKnownHostsFile: '/dev/null',
    StrictHostKeyChecking: 'yes',
    UpdateHostKeys: 'no',
    BatchMode: 'yes',
    LogLevel: 'ERROR',
  };
}

function hostBlock(alias: string, address: string, settings: Record<string, string>): string {
  const lines = Object.entries({ HostName: address, ...settings }).map(([k, v]) => `  ${k} ${v}`);
  return `Host ${alias}\n${lines.join('\n')}\n`;
}

/** The host key recorded for every address the alias reaches: real checking, nothing to accept. */
function knownHosts(dir: string, port: number, hosts: { address: string }[]): string {
  const [type, key] = readFileSync(path.join(dir, 'host_ed25519.pub'), 'utf8').split(' ');
  return hosts.map((h) => `[${h.address}]:${port} ${type} ${key}\n`).join('');
}

interface Launched {
  child: ChildProcess;
  log(): string;
}

/** Runs `sshd -D -e -f config` and resolves once it says it listens; rejects with its stderr if it exits. */
async function launch(configFile: string, port: number): Promise<Launched> {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const child = spawn(SSHD, ['-D', '-e', '-f', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  track(child);
  let log = '';
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`sshd not listening after ${READY_TIMEOUT_MS} ms:\n${log}`)),
      READY_TIMEOUT_MS,
    );
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      log = (log + s).slice(-LOG_LIMIT);
      if (log.includes(`Server listening on 127.0.0.1 port ${port}.`)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`sshd exited (${signal ?? `code ${code}`}) before listening:\n${log}`));
    });
  });
  try {
    await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return { child, log: () => log };
}

function lookupUser(user: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, user], { stdio: 'pipe' }).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * The unprivileged login account: a real shell (sshd runs commands through it), a home that exists (sshd
 * changes into it), and the password field '*' rather than useradd's '!', which sshd without PAM reads as a
 * locked account.
 */
function ensureTestUser(): void {
  const exists = () => {
    try {
      lookupUser(SSH_TEST_USER);
      return true;
    } catch {
      return false;
    }
  };
  if (!exists()) {
    try {
      execFileSync('useradd', ['-m', '-s', '/bin/sh', '-p', '*', SSH_TEST_USER], { stdio: 'pipe' });
    } catch (err) {
      // Another test file (or worktree) may have created it a moment ago.
      if (!exists()) throw err;
    }
  }
  if (loginReady()) return;
  try {
    execFileSync('usermod', ['-s', '/bin/sh', '-p', '*', SSH_TEST_USER], { stdio: 'pipe' });
  } catch (err) {
    // usermod fails while another process holds the passwd lock, which may be doing this very change.
    if (!loginReady()) throw err;
  }
}

/** The test account has a shell and an unlocked (but unusable) password field. */
function loginReady(): boolean {
  const field = (file: string, index: number) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .find((line) => line.startsWith(`${SSH_TEST_USER}:`))
      ?.split(':')[index];
  return field('/etc/passwd', 6) === '/bin/sh' && field('/etc/shadow', 1) === '*';
}
