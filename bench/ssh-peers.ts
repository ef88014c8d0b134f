/**
 * The peers that run over the private sshd: scp, rsync -a and tar | ssh (push, and rsync and tar also
 * pull), rclone and lftp (sftp downloads). Each client runs pinned on the client core under GNU time; the
 * server side is the sshd, whose per-connection children (and what they run) it reaps.
 */
import path from 'node:path';
import type { PrivateSshd } from './sshd.js';
import { SSH_CIPHER, sshCommand } from './sshd.js';
import {
  type Endpoints,
  type MeasuredRun,
  notInstalled,
  quote,
  type RunContext,
  runClient,
  type Tool,
  type ToolRun,
} from './tools.js';

function sshMissing(sshd: PrivateSshd | string, net: Endpoints, ...cmds: string[]): string | undefined {
  if (typeof sshd === 'string') return `skipped (${sshd})`;
  if (net.sshPort === undefined) return 'no route to sshd';
  return notInstalled(...cmds);
}

function measured(run: MeasuredRun): ToolRun {
  return { result: run.result, clientCpuS: run.cpuS };
}

/** What every ssh peer shares: how it reaches sshd and what it runs as a client. */
class SshPeer {
  constructor(readonly sshd: PrivateSshd) {}

  get host(): string {
    return `${this.sshd.user}@127.0.0.1`;
  }

  sshLine(port: number | undefined): string {
    return sshCommand(this.sshd, port ?? 0).join(' ');
  }

  async run(ctx: RunContext, cmd: string, args: string[]): Promise<ToolRun> {
    return measured(await runClient(ctx.pin, cmd, args, { timeoutMs: ctx.timeoutMs }));
  }

  /** A shell pipeline (tar | ssh), run by bash so that a failing member fails the line. */
  async pipeline(ctx: RunContext, line: string): Promise<ToolRun> {
    return this.run(ctx, '/bin/bash', ['-c', `set -o pipefail 2>/dev/null; ${line}`]);
  }
}

type PeerSpec = Omit<Tool, 'missing' | 'server' | 'writesTree' | 'run'> & {
  needs: string[];
  run(p: SshPeer, ctx: RunContext): Promise<ToolRun>;
};

function peerTool(sshd: PrivateSshd | string, spec: PeerSpec): Tool {
  const { needs, run, ...meta } = spec;
  return {
    ...meta,
    writesTree: true,
    missing: (net) => sshMissing(sshd, net, ...needs),
    server: () => (typeof sshd === 'string' ? undefined : sshd.pid),
    run: (ctx) => run(new SshPeer(sshd as PrivateSshd), ctx),
  };
}

const SCP: PeerSpec = {
  id: 'scp',
  label: 'scp',
  direction: 'push',
  needs: ['scp'],
  // scp -r SRC HOST:PARENT/ creates PARENT/basename(SRC), which the harness makes equal to ctx.dst.
  run: (p, ctx) =>
    p.run(ctx, 'scp', [
      '-q',
      '-r',
      '-F',
      p.sshd.sshConfigFile,
      '-P',
      String(ctx.net.sshPort),
      '-c',
      SSH_CIPHER,
      ctx.src,
      `${p.host}:${path.dirname(ctx.dst)}/`,
    ]),
};

const RSYNC_PUSH: PeerSpec = {
  id: 'rsync',
  label: 'rsync -a',
  direction: 'push',
  needs: ['rsync'],
  run: (p, ctx) =>
    p.run(ctx, 'rsync', ['-a', '-e', p.sshLine(ctx.net.sshPort), `${ctx.src}/`, `${p.host}:${ctx.dst}/`]),
};

const RSYNC_PULL: PeerSpec = {
  id: 'rsync-pull',
  label: 'rsync -a pull',
  direction: 'pull',
  needs: ['rsync'],
  run: (p, ctx) =>
    p.run(ctx, 'rsync', ['-a', '-e', p.sshLine(ctx.net.sshPort), `${p.host}:${ctx.src}/`, `${ctx.dst}/`]),
};

const TAR_PUSH: PeerSpec = {
  id: 'tar-ssh',
  label: 'tar | ssh | tar',
  direction: 'push',
  needs: ['tar', 'ssh'],
  run: (p, ctx) => {
    const remote = `mkdir -p ${quote(ctx.dst)} && tar -C ${quote(ctx.dst)} -xpf -`;
    return p.pipeline(
      ctx,
      `tar -C ${quote(ctx.src)} -cf - . | ${p.sshLine(ctx.net.sshPort)} ${p.host} ${quote(remote)}`,
    );
  },
};

const TAR_PULL: PeerSpec = {
  id: 'tar-ssh-pull',
  label: 'ssh tar | tar pull',
  direction: 'pull',
  needs: ['tar', 'ssh'],
  run: (p, ctx) => {
    const remote = `tar -cf - -C ${quote(ctx.src)} .`;
    return p.pipeline(
      ctx,
      `mkdir -p ${quote(ctx.dst)} && ${p.sshLine(ctx.net.sshPort)} ${p.host} ${quote(remote)} | ` +
        `tar -C ${quote(ctx.dst)} -xpf -`,
    );
  },
};

const RCLONE: PeerSpec = {
  id: 'rclone',
  label: 'rclone (sftp)',
  direction: 'pull',
  needs: ['rclone'],
  run: (p, ctx) => {
    const n = String(ctx.conns);
    return p.run(ctx, 'rclone', [
      'copy',
      `:sftp:${ctx.src}`,
      ctx.dst,
      '--config',
      '/dev/null',
      '--sftp-host',
      '127.0.0.1',
      '--sftp-port',
      String(ctx.net.sshPort),
      '--sftp-user',
      p.sshd.user,
      '--sftp-key-file',
      p.sshd.keyFile,
      '--sftp-shell-type',
      'none',
      '--sftp-disable-hashcheck',
      '--transfers',
      n,
      '--checkers',
      n,
      '--multi-thread-streams',
      n,
      '--multi-thread-cutoff',
      '16M',
      '-q',
    ]);
  },
};

const LFTP: PeerSpec = {
  id: 'lftp',
  label: 'lftp (sftp)',
  direction: 'pull',
  needs: ['lftp', 'ssh'],
  run: (p, ctx) => {
    // One big file: split it with pget; many files: that many files at once.
    const one = ctx.dataset.files === 1;
    const mirror = `mirror --parallel=${one ? 1 : ctx.conns} --use-pget-n=${one ? ctx.conns : 1}`;
    const script = [
      `set sftp:connect-program ${quote(`ssh -a -x -F ${p.sshd.sshConfigFile}`)}`,
      'set sftp:auto-confirm yes',
      'set net:max-retries 1',
      'set net:reconnect-interval-base 1',
      'set cmd:fail-exit yes',
      `open -u ${p.sshd.user}, -p ${ctx.net.sshPort} sftp://127.0.0.1`,
      `${mirror} ${quote(ctx.src)} ${quote(ctx.dst)}`,
    ].join('; ');
    return p.run(ctx, 'lftp', ['-c', script]);
  },
};

/** The peers every copy scenario gets. `sshd` is a string when it could not be started. */
export function sshPeers(sshd: PrivateSshd | string): Tool[] {
  return [SCP, RSYNC_PUSH, TAR_PUSH, RCLONE, LFTP].map((spec) => peerTool(sshd, spec));
}

/** The pull rows of the small-file sets: tar and rsync the other way, beside fcp pull. */
export function sshPullPeers(sshd: PrivateSshd | string): Tool[] {
  return [RSYNC_PULL, TAR_PULL].map((spec) => peerTool(sshd, spec));
}

/** rsync -a both ways: the no-change peer on the big tree. */
export function rsyncPeers(sshd: PrivateSshd | string): Tool[] {
  return [RSYNC_PUSH, RSYNC_PULL].map((spec) => peerTool(sshd, spec));
}
