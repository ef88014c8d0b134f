/**
 * fcp's options for the way to the remote (README "Works wherever ssh works"): --ssh[=CMD], --daemon,
 * --ssh-transport, --remote-fcpd, --no-remote-install, and the rule that picks the transport from them and
 * the operand.
 */
import type { Argv } from 'yargs';
import type { RemoteSpec } from '../client/remote-spec.js';
import { SSH_TRANSPORTS, type SshTransport } from '../client/ssh-dialer.js';
import { portWithSsh, type TransportChoice, type TransportMode } from '../client/transport-choice.js';
import { FcpError } from '../protocol/index.js';
import { parseSshCommand, sshDestination, withUserFiles } from '../transport/ssh-command.js';
import { UNSAFE_IN_LOGIN_SHELL } from '../transport/remote-script.js';

export interface SshArgs {
  ssh: string | undefined;
  daemon: boolean;
  'ssh-transport': SshTransport;
  'remote-fcpd': string | undefined;
  'remote-install': boolean;
  'ssh-config': string | undefined;
  identity: string | undefined;
}

/** The rule, for the --help epilogue. */
export const TRANSPORT_HELP =
  'Transport: with --daemon, the standing fcpd on port 7523 (or HOST:PORT:PATH); with --ssh, a ' +
  'one-session fcpd that ssh starts on the host (installed into ~/.cache/fcp if the host has node but no ' +
  'fcpd); with neither, the standing fcpd if one listens, else ssh, said in one line (-q silences it).';

/**
 * `--ssh` alone means `--ssh=ssh`: its value is optional, and only `--ssh=CMD` gives one, so that
 * `fcp --ssh push ...` does not read `push` as the command (like rsync's `-e`, but optional).
 */
export function withDefaultSsh(argv: readonly string[]): string[] {
  const end = argv.indexOf('--');
  return argv.map((a, i) => (a === '--ssh' && (end === -1 || i < end) ? '--ssh=ssh' : a));
}

/** Declares the options. Defaults are in the descriptions, as for the other options of fcp. */
export function sshOptions<T>(y: Argv<T>) {
  return (
    y
      .option('ssh', {
        type: 'string',
        describe: 'go through ssh: --ssh, or --ssh="ssh -p 2222 -J bastion" (split like sh, no shell)',
      })
      .option('daemon', {
        type: 'boolean',
        default: false,
        describe: 'only a standing fcpd (port 7523 or HOST:PORT:PATH), never ssh',
      })
      .option('ssh-transport', {
        choices: SSH_TRANSPORTS,
        default: 'auto' as SshTransport,
        describe:
          'over ssh: direct TLS to the started fcpd, or carried inside ssh (default auto: direct if it connects)',
      })
      .option('remote-fcpd', {
        type: 'string',
        describe:
          'over ssh: the remote command that starts fcpd (default: fcpd on PATH, else fcp installs it)',
      })
      // As --encryption: the positive form is the default, so help shows only the negative one.
      .option('remote-install', { type: 'boolean', default: true, hidden: true })
      .option('no-remote-install', {
        type: 'boolean',
        describe: 'over ssh: never copy fcpd into ~/.cache/fcp on a host without one',
      })
  );
}

/** The transport the options and the operand ask for; throws FCP_ERR_USAGE for a contradiction. */
export function transportChoice(
  args: SshArgs & { readonly 'accept-host-key'?: string | undefined },
  spec: RemoteSpec,
  onStderr: (line: string) => void,
): TransportChoice {
  if (args.ssh !== undefined && args.daemon) throw usage('--ssh and --daemon cannot both be given');
  if (args.ssh !== undefined && args['accept-host-key'] !== undefined) {
    // Silently ignoring it would let a user believe a key they checked was enforced.
    throw usage(
      "--accept-host-key pins a standing fcpd's key; with --ssh, ssh checks the host and fcp pins the key " +
        'of the fcpd it started, which came through ssh',
    );
  }
  if (spec.port !== undefined && args.ssh !== undefined) throw portWithSsh();
  if (args['remote-fcpd']?.trim() === '')
    throw usage('--remote-fcpd needs a command, such as /opt/fcp/bin/fcpd');
  checkRemoteFcpd(args['remote-fcpd']);
  const mode: TransportMode =
    args.daemon || spec.port !== undefined ? 'daemon' : args.ssh !== undefined ? 'ssh' : 'auto';
  return {
    mode,
    ssh: withUserFiles(parseSshCommand(args.ssh ?? 'ssh'), args['ssh-config'], args.identity),
    dest: sshDestination(spec.host, spec.user),
    sshTransport: args['ssh-transport'],
    remoteFcpd: args['remote-fcpd'],
    remoteInstall: args['remote-install'],
    onStderr,
  };
}

/**
 * The remote command goes to the login shell inside one quoted line, which no login shell reads the same
 * with a line break, a `!` (csh's history) or a backslash before \\ or ' (fish): refused here, naming the option,
 * rather than as an internal error when the command is built (remote-script.ts loginShellCommand).
 */
function checkRemoteFcpd(command: string | undefined): void {
  const bad = command === undefined ? null : UNSAFE_IN_LOGIN_SHELL.exec(command);
  if (bad === null) return;
  const shown =
    bad[0] === '\n'
      ? 'a line break'
      : bad[0] === '\r'
        ? 'a carriage return'
        : bad[0] === '!'
          ? "'!'"
          : `a backslash before ${bad[0][1]}`;
  throw usage(`--remote-fcpd cannot hold ${shown}: the command must read the same in every login shell`);
}

function usage(message: string): FcpError {
  return new FcpError('FCP_ERR_USAGE', message);
}
