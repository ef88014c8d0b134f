/**
 * The ssh command lines of fcp over ssh (README "Works wherever ssh works"): `--ssh CMD` split into
 * argv the way a shell would (no shell is run), and the argv of the bootstrap, the remote install, the
 * carried data connections and `ssh -G`; the remote script they carry is remote-script.ts's.
 */
import path from 'node:path';
import { FcpError } from '../protocol/errors.js';
import {
  installProgram,
  loginShellCommand,
  type RemoteCommand,
  remoteFcpdScript,
  shellQuote,
} from './remote-script.js';

/** An ssh command as `--ssh` gave it: the program and the options the user put after it. */
export interface SshCommand {
  readonly file: string;
  readonly args: readonly string[];
}

export const DEFAULT_SSH: SshCommand = { file: 'ssh', args: [] };

/**
 * fcp's -F FILE names the ssh config for aliases, and -i FILE the key to log in with: ssh gets the same
 * ones, unless the --ssh command names its own.
 */
export function withUserFiles(
  ssh: SshCommand,
  configFile: string | undefined,
  identity: string | undefined,
): SshCommand {
  const own = (flag: string) => ssh.args.some((a) => a.startsWith(flag));
  const extra = [
    ...(configFile === undefined || own('-F') ? [] : ['-F', path.resolve(configFile)]),
    ...(identity === undefined || own('-i') ? [] : ['-i', path.resolve(identity)]),
  ];
  return { file: ssh.file, args: [...extra, ...ssh.args] };
}

/**
 * Splits `--ssh CMD` into words like sh does, without running a shell: blanks separate words, '...' is
 * literal, "..." keeps blanks and lets \ escape " \ $ `, and \ outside quotes escapes the next character.
 */
export function parseSshCommand(cmd: string): SshCommand {
  const words = splitWords(cmd);
  const [file, ...args] = words;
  if (file === undefined) throw sshUsage('--ssh needs a command, such as --ssh="ssh -p 2222"');
  return { file, args };
}

function splitWords(cmd: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let i = 0;
  const add = (text: string) => {
    word = (word ?? '') + text;
  };
  while (i < cmd.length) {
    const ch = cmd[i]!;
    if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
      i++;
    } else if (ch === "'") {
      const end = cmd.indexOf("'", i + 1);
      if (end === -1) throw sshUsage(`--ssh has an unbalanced ' in "${cmd}"`);
      add(cmd.slice(i + 1, end));
      i = end + 1;
    } else if (ch === '"') {
      const { text, next } = doubleQuoted(cmd, i + 1);
      add(text);
      i = next;
    } else if (ch === '\\') {
      if (i + 1 >= cmd.length) throw sshUsage(`--ssh ends in a lone \\ in "${cmd}"`);
      add(cmd[i + 1]!);
      i += 2;
    } else {
      add(ch);
      i++;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The text of a "..." word from `start` (just after the opening quote), and the index after its end. */
function doubleQuoted(cmd: string, start: number): { text: string; next: number } {
  let text = '';
  for (let i = start; i < cmd.length; i++) {
    const ch = cmd[i]!;
    if (ch === '"') return { text, next: i + 1 };
    if (ch === '\\' && i + 1 < cmd.length && '"\\$`'.includes(cmd[i + 1]!)) {
      text += cmd[i + 1]!;
      i++;
    } else {
      text += ch;
    }
  }
  throw sshUsage(`--ssh has an unbalanced " in "${cmd}"`);
}

function sshUsage(message: string): FcpError {
  return new FcpError('FCP_ERR_USAGE', message);
}

/**
 * `[user@]host` as ssh's destination: the alias exactly as typed, so ssh applies its own config to it. A
 * leading '-' would make ssh read it as an option (`-oProxyCommand=...`): refused.
 */
export function sshDestination(host: string, user: string | undefined): string {
  const dest = user === undefined ? host : `${user}@${host}`;
  if (dest.startsWith('-')) throw sshUsage(`"${dest}" is not a host ssh can be given (it starts with -)`);
  return dest;
}

/**
 * The relay socket's path comes from the remote (its XDG_RUNTIME_DIR or HOME) and goes back as a word of
 * the login shell's command line: one that some login shell would read differently (see loginShellCommand)
 * is this connection's failure, named, not an internal error.
 */
function checkRelayWord(socket: string): void {
  const bad = /[!\\]/.exec(socket);
  if (bad === null) return;
  const shown = bad[0] === '!' ? "'!'" : 'a backslash';
  throw new FcpError(
    'FCP_ERR_NET_CONNECT',
    `cannot relay to the remote fcpd's socket ${socket}: its path holds ${shown}, which some login ` +
      'shell would change (point XDG_RUNTIME_DIR there at a plainer directory)',
    { path: socket },
  );
}

/** `ssh [user's args] DEST <script>`: the bootstrap, which prints the line (or NEED_INSTALL_TAG). */
export function bootstrapArgv(ssh: SshCommand, dest: string, remote: RemoteCommand): string[] {
  return [ssh.file, ...NO_FORWARDING, ...ssh.args, dest, remoteCommand(remote, ['--serve-once'])];
}

/** `ssh [user's args] DEST <install script>`, with the bundle on its stdin. */
export function installArgv(ssh: SshCommand, dest: string, name: string, sha256: string): string[] {
  const script = `umask 077; exec node -e ${shellQuote(installProgram(name, sha256))}`;
  return [ssh.file, ...NO_FORWARDING, ...ssh.args, dest, loginShellCommand(script)];
}

/**
 * One carried data connection: `ssh -o ControlMaster=no -o ControlPath=none [user's args] DEST <fcpd>
 * --stdio SOCKET`. Each must be its own ssh connection: through a shared master (ControlMaster in the
 * user's config) all N would share one TCP connection and one ssh channel window, the 2 MiB bottleneck
 * that parallel connections exist to get past. ssh takes the first value it sees for an option, so ours,
 * placed before the user's, win over both the user's -o and the config file.
 */
export function dataArgv(ssh: SshCommand, dest: string, remote: RemoteCommand, socket: string): string[] {
  checkRelayWord(socket);
  return [
    ssh.file,
    ...NO_FORWARDING,
    ...NO_COMPRESSION,
    ...['-o', 'ControlMaster=no', '-o', 'ControlPath=none', '-o', 'ClearAllForwardings=yes'],
    ...ssh.args,
    dest,
    remoteCommand(remote, ['--stdio', socket]),
  ];
}

/**
 * One carried data connection with no remote process: `ssh -N -L LOCAL:RELAY [user's args] DEST` listens
 * on the private socket LOCAL and hands each connection to it to sshd as a direct-streamlocal@openssh.com
 * channel, which sshd connects to the relay socket itself: no remote shell, no node, no relay copy.
 * (OpenSSH's -W, the stdio form, takes only host:port up to 9.x, hence a listening -L.) ExitOnForwardFailure
 * makes a socket ssh cannot bind an exit, not a warning. Own connection per channel: see dataArgv.
 */
export function forwardArgv(ssh: SshCommand, dest: string, local: string, relay: string): string[] {
  return [
    ...sessionlessSsh(ssh, local),
    ...['-o', 'ControlMaster=no', '-o', 'ControlPath=none', '-o', 'ExitOnForwardFailure=yes'],
    ...['-L', `${local}:${relay}`],
    ...ssh.args,
    dest,
  ];
}

/**
 * One carried data connection logged in before the relay socket is known: `ssh -N` as its own master on
 * the private control socket CTL, to which muxForwardArgv later adds the one forwarding LOCAL:RELAY. Its
 * login runs beside the bootstrap's instead of after it (spec/PROTOCOL.md §8.3). A master of its own that
 * serves one forwarding: still one TCP connection and one ssh window per data connection (see dataArgv),
 * never the user's master (ours are given first, so they win) nor another connection's.
 */
export function masterArgv(ssh: SshCommand, dest: string, local: string, ctl: string): string[] {
  return [
    ...sessionlessSsh(ssh, local),
    ...['-o', 'ControlMaster=yes', '-o', `ControlPath=${ctl}`, '-o', 'ControlPersist=no'],
    ...['-o', 'ExitOnForwardFailure=yes'],
    ...ssh.args,
    dest,
  ];
}

/** `ssh -O forward -L LOCAL:RELAY` to the master on CTL (masterArgv): it listens on LOCAL from then on. */
export function muxForwardArgv(
  ssh: SshCommand,
  dest: string,
  ctl: string,
  forward: { local: string; relay: string },
): string[] {
  return [
    ssh.file,
    // -T: no command, so ssh would otherwise ask for a terminal (and say it cannot have one).
    ...['-T', '-o', `ControlPath=${ctl}`, '-O', 'forward', '-L', `${forward.local}:${forward.relay}`],
    ...ssh.args,
    dest,
  ];
}

/** A carried data connection's ssh up to its options: no session (-N), its life tied to our pipe. */
function sessionlessSsh(ssh: SshCommand, local: string): string[] {
  return [...stdinTiesLife(local), ssh.file, ...NO_FORWARDING, ...NO_COMPRESSION, '-N'];
}

/**
 * glibc malloc settings for the ssh of each carried connection: OpenSSH grows a channel's buffer by
 * allocating a new one and copying (recallocarray), and under glibc's default mmap threshold every step of
 * a buffer past 128 KiB is a fresh mmap, zeroed page by page, then unmapped. The ssh that receives the data
 * (a pull) holds up to its 2 MiB channel window in such buffers: measured pinned through the WAN emulator,
 * 512 MiB carried pull, -n 8: its ssh processes took 1.89-1.93 CPU s by default, 1.44-1.50 s with these.
 * With a threshold above any channel buffer they come from the heap, and the heap is not trimmed between
 * bursts; an ssh's peak RSS went from 14.2 to 17.4 MiB in such a pull. glibc reads GLIBC_TUNABLES at
 * start and other C libraries ignore it.
 */
export const CARRIED_SSH_TUNABLES =
  'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864';

/**
 * The environment of a carried connection's ssh: `env` with CARRIED_SSH_TUNABLES, unless the user set
 * GLIBC_TUNABLES themselves (theirs is kept whole: they chose it).
 */
export function carriedSshEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env['GLIBC_TUNABLES'] !== undefined) return env;
  return { ...env, GLIBC_TUNABLES: CARRIED_SSH_TUNABLES };
}

/**
 * `sh -c SCRIPT sh LOCAL ssh ...`: runs ssh (which with -N reads no stdin) and kills it once the wrapper's
 * stdin ends, so a client that dies, even by SIGKILL, leaves no ssh behind: its pipe's end is the news, as
 * it is for the relay's ssh. Then it removes LOCAL (ssh leaves it), a master's control socket LOCAL.ctl
 * (masterArgv), and their directory once empty, which a killed client cannot do; it exits with ssh's status.
 */
function stdinTiesLife(local: string): string[] {
  const script =
    'l=$1; shift; exec 3<&0; "$@" </dev/null >/dev/null 3<&- & q=$!; ' +
    '(cat <&3; kill $q) >/dev/null 2>&1 & exec 3<&-; ' +
    'wait $q; s=$?; rm -f "$l" "$l.ctl"; rmdir "${l%/*}" 2>/dev/null; exit $s';
  return ['sh', '-c', script, 'sh', local];
}

/**
 * Whether `-L LOCAL:RELAY` can name `relay` exactly: ssh splits a forwarding at ':' and reads '[' as an
 * address, and it expands `%` tokens (%u, %d, %L...) and `${VAR}` in a forwarding's socket path before
 * it sends the path to the server. The relay comes from the remote's bootstrap line, so a remote that
 * announced `/tmp/x-${AWS_SECRET_ACCESS_KEY}` would be sent this machine's environment (and %u/%d its user
 * and home) in the channel-open request. Such a relay goes the `fcpd --stdio` way, which quotes it for the
 * remote shell and expands nothing here.
 */
export function forwardablePath(relay: string): boolean {
  return relay.startsWith('/') && !/[:[\]\s%$]/.test(relay);
}

/** `ssh [user's args] -G DEST`: prints the configuration ssh would use, without connecting. */
export function configQueryArgv(ssh: SshCommand, dest: string): string[] {
  return [ssh.file, ...ssh.args, '-G', dest];
}

/** The `hostname` line of `ssh -G`'s output: where ssh would connect, after aliases and HostName. */
export function hostnameFromConfig(output: string): string | undefined {
  for (const line of output.split('\n')) {
    const m = /^hostname\s+(\S+)\s*$/i.exec(line);
    if (m !== null) return m[1];
  }
  return undefined;
}

/**
 * Whether `ssh -G`'s output sets up forwardings of the user's own (LocalForward, RemoteForward,
 * DynamicForward) or clears every forwarding (ClearAllForwardings, which would clear forwardArgv's -L too).
 * Each carried connection would then bind the user's forwardings again (warnings, or a port in use), and
 * dataArgv, which clears them, is the way.
 */
export function forwardingsConfigured(output: string): boolean {
  return /^(?:localforward|remoteforward|dynamicforward)\s|^clearallforwardings\s+yes\s*$/im.test(output);
}

/**
 * No agent or X11 forwarding for any of our ssh runs: the remote fcpd needs neither, and a forwarded agent
 * would be usable by anyone who can take over the remote session.
 */
const NO_FORWARDING = ['-a', '-x'] as const;

/**
 * No compression on the data connections, whatever the ssh config says (`Compression yes` for slow links):
 * fcp moves file data, often compressed already, at the path's full rate, and zlib in each ssh costs far
 * more than the wire saves. Measured pinned through the WAN emulator, 512 MiB carried push, -n 8: the
 * client's ssh processes 13.16 CPU s with compression, 1.16 without; 44.5 s against 9.9 s. Ours comes
 * before the user's options, so it wins over the config file and the user's `-o Compression=yes`; an
 * explicit `-C` in `--ssh` still turns it on (ssh applies -C whatever -o said), as the user asked.
 */
const NO_COMPRESSION = ['-o', 'Compression=no'] as const;

function remoteCommand(remote: RemoteCommand, tail: readonly string[]): string {
  return loginShellCommand(remoteFcpdScript(remote, tail));
}
