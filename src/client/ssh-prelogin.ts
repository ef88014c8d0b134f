/**
 * Carried connections logged in beside the bootstrap (--ssh-transport=carried): each an ssh master of its own
 * (`ssh -N -M` on a control socket in the forwardings' private directory), started while the bootstrap ssh
 * logs in and starts fcpd, and told where to forward (`ssh -O forward -L LOCAL:RELAY`, a local exchange with
 * the master) once the bootstrap line names the relay socket. Without them the session's first carried
 * connection was a second ssh login in series with the first: 0.7-1.1 s through the bench's emulator (RTT
 * 40 ms) on a loaded machine, where adding the forwarding to a logged-in master took 23 ms.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { FcpError } from '../protocol/index.js';
import { type ForwardDialer, socketForwardDialer, untilListening } from '../transport/socket-forward-dial.js';
import { carriedSshEnv, masterArgv, muxForwardArgv, type SshCommand } from '../transport/ssh-command.js';
import { withCiphers } from './ssh-ciphers.js';
import type { SshConfig } from './ssh-dialer.js';

/** How long `ssh -O forward` may take: a local exchange with the master, no round trip. */
const MUX_FORWARD_TIMEOUT_MS = 10_000;

export interface PreloginOptions {
  readonly ssh: SshCommand;
  readonly dest: string;
  /** What `ssh -G` said of the destination: the data connections' ciphers. */
  readonly config: SshConfig;
  /** The relay socket, once the bootstrap line named it; undefined before. */
  readonly relay: () => string | undefined;
  readonly onStderr: (line: string) => void;
}

/**
 * A forwarding dialer whose `count` first children start logging in now; ssh-dialer.ts uses it as the
 * carried connections' forwarded way. Its children are ended with it, used or not.
 */
export function carriedPrelogins(opts: PreloginOptions, count: number): ForwardDialer {
  const peerName = `the fcpd started through ssh on ${opts.dest}`;
  const ssh = withCiphers(opts.ssh, opts.config.ciphers);
  const env = carriedSshEnv(process.env);
  const dialer = socketForwardDialer({
    peerName,
    argv: (local) => masterArgv(ssh, opts.dest, local, controlPath(local)),
    env,
    onStderr: opts.onStderr,
    arm: async (local: string, child: ChildProcess, signal?: AbortSignal) => {
      const relay = opts.relay();
      if (relay === undefined) throw new FcpError('FCP_ERR_NET_CONNECT', `${peerName}: no relay socket yet`);
      // The control socket appears once the master has logged in.
      await untilListening(controlPath(local), child, peerName, signal);
      await muxForward(muxForwardArgv(ssh, opts.dest, controlPath(local), { local, relay }), env, peerName);
    },
  });
  dialer.prestart(count);
  return dialer;
}

/** A master's control socket, beside the forwarding's (the wrapper of masterArgv removes both). */
function controlPath(local: string): string {
  return `${local}.ctl`;
}

function muxForward(argv: readonly string[], env: NodeJS.ProcessEnv, peerName: string): Promise<void> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    execFile(file ?? 'ssh', args, { env, timeout: MUX_FORWARD_TIMEOUT_MS }, (err, _stdout, stderr) => {
      if (err === null) return resolve();
      const said = `${stderr}`.trim().split('\n').at(-1) ?? err.message;
      reject(new FcpError('FCP_ERR_NET_CONNECT', `cannot reach ${peerName}: ssh -O forward: ${said}`));
    });
  });
}
