/**
 * The tools the bench times: fcp (push and pull), the ssh-based peers, and the references (cp -a, raw TCP).
 * Each tool turns a run context into a command; the harness times, verifies and tabulates. Commands that
 * copy a tree all produce `ctx.dst` holding the contents of `ctx.src`, so one verifier fits all.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Dataset } from './datasets.js';
import { type FcpDaemon, fcpClientEnv, fcpPullArgs, fcpPushArgs } from './fcp.js';
import {
  GNU_TIME,
  haveGnuTime,
  parseGnuTimeRss,
  peakRssKb,
  type RunResult,
  resetPeakRss,
  runShell,
  runTimed,
} from './proc.js';
import { type PrivateSshd, SSH_CIPHER, sshCommand } from './sshd.js';
import { RAW_STREAM_JS } from './verify-wan.js';

/** Which way the data goes: peers whose parallel modes only download (rclone, lftp) are timed as pulls. */
export type Direction = 'push' | 'pull' | 'local' | 'wire';

/** How fcp over ssh (bench/fcp-ssh.ts) reaches the sshd and its one-session fcpd on one network path. */
export interface SshRoute {
  /** ssh config in which fcp's host alias points at sshd, or at the emulator in front of it. */
  configFile: string;
  /** The port the remote fcpd is told to bind on 127.0.0.1 (fixed: an emulator must know it). */
  fcpdPort: number;
}

/** Endpoints on one network path: loopback direct, or through the WAN emulator. */
export interface Endpoints {
  sshPort?: number;
  fcpSsh?: SshRoute;
  fcpPushPort?: number;
  fcpPullPort?: number;
  sinkPort?: number;
}

export interface RunContext {
  dataset: Dataset;
  /** The data set's directory. */
  src: string;
  /** Destination directory (its parent exists; it may exist already for a no-change run). */
  dst: string;
  conns: number;
  net: Endpoints;
  timeoutMs: number;
}

export interface ToolRun {
  result: RunResult;
  clientRssKb?: number;
  daemonRssKb?: number;
}

export interface Tool {
  id: string;
  label: string;
  direction: Direction;
  /** False for the raw TCP reference, which moves bytes but writes no tree. */
  writesTree: boolean;
  /** What the check column says of a tool that writes no tree; default "bytes only, no tree written". */
  note?: string;
  /** Undefined when the tool can run here, else why not ("not installed", "fcp not built"). */
  missing(net: Endpoints): string | undefined;
  run(ctx: RunContext): Promise<ToolRun>;
}

/** A command on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const p = path.join(dir, cmd);
    if (dir !== '' && existsSync(p)) return p;
  }
  return undefined;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function notInstalled(...cmds: string[]): string | undefined {
  const absent = cmds.filter((c) => which(c) === undefined);
  return absent.length === 0 ? undefined : `skipped (not installed: ${absent.join(', ')})`;
}

/**
 * Runs a node entry point under GNU time -v (when present) to learn the client's peak RSS. `onSpawn` gets
 * the pid of the process started, which is GNU time's when it is present (node is its only child).
 */
export async function runNodeMeasured(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  onSpawn?: (pid: number) => void,
): Promise<{ result: RunResult; rssKb?: number }> {
  if (!haveGnuTime()) {
    return { result: await runTimed(process.execPath, args, { timeoutMs, env, onSpawn }) };
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'fcp-bench-time-'));
  try {
    const out = path.join(dir, 'time.txt');
    const result = await runTimed(GNU_TIME, ['-v', '-o', out, process.execPath, ...args], {
      timeoutMs,
      env,
      onSpawn,
    });
    const rssKb = existsSync(out) ? parseGnuTimeRss(readFileSync(out, 'utf8')) : undefined;
    return { result, rssKb };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** On failure, appends what the daemon logged during the run (approximate once its log tail has wrapped). */
function withDaemonLog(result: RunResult, d: FcpDaemon, logLengthBefore: number): RunResult {
  if (result.code === 0) return result;
  const log = d.service.stderrTail().slice(logLengthBefore).trim();
  return log === '' ? result : { ...result, stderr: `${result.stderr}\nfcpd log:\n${log}` };
}

/** An fcp row: the client run under GNU time against `daemon`, with both peak RSS figures and, on failure, its log. */
function fcpTool(
  meta: Pick<Tool, 'id' | 'label' | 'direction'>,
  daemon: () => FcpDaemon | string,
  port: (net: Endpoints) => number | undefined,
  args: (ctx: RunContext, port: number) => string[],
): Tool {
  return {
    ...meta,
    writesTree: true,
    missing: (net) => {
      const d = daemon();
      if (typeof d === 'string') return d;
      return port(net) === undefined ? 'no route to fcpd' : undefined;
    },
    run: async (ctx) => {
      const d = daemon() as FcpDaemon;
      resetPeakRss(d.service.pid);
      const logLength = d.service.stderrTail().length;
      const { result, rssKb } = await runNodeMeasured(
        args(ctx, port(ctx.net) ?? 0),
        fcpClientEnv(d),
        ctx.timeoutMs,
      );
      return {
        result: withDaemonLog(result, d, logLength),
        clientRssKb: rssKb,
        daemonRssKb: peakRssKb(d.service.pid),
      };
    },
  };
}

/** fcp push (`-n conns`) into the push daemon, whose root holds ctx.dst; `plaintext` adds --no-encryption. */
export function fcpPushTool(
  daemon: () => FcpDaemon | string,
  conns?: number,
  opts: { plaintext?: boolean } = {},
): Tool {
  const plaintext = opts.plaintext === true;
  return fcpTool(
    {
      id: conns === undefined ? (plaintext ? 'fcp-plain' : 'fcp') : `fcp-n${conns}`,
      label: conns === undefined ? (plaintext ? 'fcp --no-encryption' : 'fcp') : `fcp -n ${conns}`,
      direction: 'push',
    },
    daemon,
    (net) => net.fcpPushPort,
    (ctx, port) => fcpPushArgs(conns ?? ctx.conns, `${ctx.src}/`, port, ctx.dst, { plaintext }),
  );
}

/** fcp pull from the pull daemon, whose root is the data cache. */
export function fcpPullTool(daemon: () => FcpDaemon | string): Tool {
  return fcpTool(
    { id: 'fcp-pull', label: 'fcp pull', direction: 'pull' },
    daemon,
    (net) => net.fcpPullPort,
    (ctx, port) => fcpPullArgs(ctx.conns, port, `${ctx.src}/`, ctx.dst),
  );
}

function sshMissing(sshd: PrivateSshd | string, net: Endpoints, ...cmds: string[]): string | undefined {
  if (typeof sshd === 'string') return `skipped (${sshd})`;
  if (net.sshPort === undefined) return 'no route to sshd';
  return notInstalled(...cmds);
}

/** The peers that run over the private sshd. `sshd` is a string when it could not be started. */
export function sshPeers(sshd: PrivateSshd | string): Tool[] {
  const s = (): PrivateSshd => sshd as PrivateSshd;
  const host = (): string => `${s().user}@127.0.0.1`;
  const sshLine = (port: number): string => sshCommand(s(), port).join(' ');
  return [
    {
      id: 'scp',
      label: 'scp',
      direction: 'push',
      writesTree: true,
      missing: (net) => sshMissing(sshd, net, 'scp'),
      // scp -r SRC HOST:PARENT/ creates PARENT/basename(SRC), which the harness makes equal to ctx.dst.
      run: async (ctx) => ({
        result: await runTimed(
          'scp',
          [
            '-q',
            '-r',
            '-F',
            s().sshConfigFile,
            '-P',
            String(ctx.net.sshPort),
            '-c',
            SSH_CIPHER,
            ctx.src,
            `${host()}:${path.dirname(ctx.dst)}/`,
          ],
          { timeoutMs: ctx.timeoutMs },
        ),
      }),
    },
    {
      id: 'rsync',
      label: 'rsync -a',
      direction: 'push',
      writesTree: true,
      missing: (net) => sshMissing(sshd, net, 'rsync'),
      run: async (ctx) => ({
        result: await runTimed(
          'rsync',
          ['-a', '-e', sshLine(ctx.net.sshPort ?? 0), `${ctx.src}/`, `${host()}:${ctx.dst}/`],
          { timeoutMs: ctx.timeoutMs },
        ),
      }),
    },
    {
      id: 'tar-ssh',
      label: 'tar | ssh | tar',
      direction: 'push',
      writesTree: true,
      missing: (net) => sshMissing(sshd, net, 'tar', 'ssh'),
      run: async (ctx) => {
        const remote = `mkdir -p ${quote(ctx.dst)} && tar -C ${quote(ctx.dst)} -xpf -`;
        const line =
          `set -o pipefail 2>/dev/null; tar -C ${quote(ctx.src)} -cf - . | ` +
          `${sshLine(ctx.net.sshPort ?? 0)} ${host()} ${quote(remote)}`;
        return { result: await runTimed('/bin/bash', ['-c', line], { timeoutMs: ctx.timeoutMs }) };
      },
    },
    {
      id: 'rclone',
      label: 'rclone (sftp)',
      direction: 'pull',
      writesTree: true,
      missing: (net) => sshMissing(sshd, net, 'rclone'),
      run: async (ctx) => {
        const n = String(ctx.conns);
        const args = [
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
          s().user,
          '--sftp-key-file',
          s().keyFile,
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
        ];
        return { result: await runTimed('rclone', args, { timeoutMs: ctx.timeoutMs }) };
      },
    },
    {
      id: 'lftp',
      label: 'lftp (sftp)',
      direction: 'pull',
      writesTree: true,
      missing: (net) => sshMissing(sshd, net, 'lftp', 'ssh'),
      run: async (ctx) => {
        // One big file: split it with pget; many files: that many files at once.
        const one = ctx.dataset.files === 1;
        const mirror = `mirror --parallel=${one ? 1 : ctx.conns} --use-pget-n=${one ? ctx.conns : 1}`;
        const script = [
          `set sftp:connect-program ${quote(`ssh -a -x -F ${s().sshConfigFile}`)}`,
          'set sftp:auto-confirm yes',
          'set net:max-retries 1',
          'set net:reconnect-interval-base 1',
          'set cmd:fail-exit yes',
          `open -u ${s().user}, -p ${ctx.net.sshPort} sftp://127.0.0.1`,
          `${mirror} ${quote(ctx.src)} ${quote(ctx.dst)}`,
        ].join('; ');
        return { result: await runTimed('lftp', ['-c', script], { timeoutMs: ctx.timeoutMs }) };
      },
    },
  ];
}

/** cp -a from the data cache to the destination file system: the local-copy ceiling. */
export const cpTool: Tool = {
  id: 'cp',
  label: 'cp -a (local)',
  direction: 'local',
  writesTree: true,
  missing: () => notInstalled('cp'),
  run: async (ctx) => ({
    result: await runShell(`cp -a ${quote(ctx.src)} ${quote(path.dirname(ctx.dst))}/`, {
      timeoutMs: ctx.timeoutMs,
    }),
  }),
};

/** Raw TCP: the data set's byte count over `streams` connections into a discarding sink. */
export function rawTool(streams: number): Tool {
  return {
    id: `raw-x${streams}`,
    label: `raw TCP x${streams}`,
    direction: 'wire',
    writesTree: false,
    missing: (net) => (net.sinkPort === undefined ? 'no sink' : undefined),
    run: async (ctx) => {
      const args = [
        RAW_STREAM_JS,
        'send',
        '--to',
        `127.0.0.1:${ctx.net.sinkPort}`,
        '--bytes',
        String(ctx.dataset.bytes),
        '--streams',
        String(streams),
      ];
      return { result: await runTimed(process.execPath, args, { timeoutMs: ctx.timeoutMs }) };
    },
  };
}
