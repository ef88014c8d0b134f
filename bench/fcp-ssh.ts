/**
 * fcp over ssh (issue 17) in the bench: fcp starts a one-session fcpd through the private sshd and sends its
 * data either straight to that fcpd's port (direct) or through N ssh connections (carried).
 *
 *   fcp push --json [-n N] '--ssh=ssh -F CONFIG' --ssh-transport=direct|carried
 *     '--remote-fcpd=NODE .../dist/bin/fcpd.js --bind 127.0.0.1 --port P --root ROOT' SRC/ fcp-bench-ssh:DST
 *
 * fcp asks ssh where the host is (`ssh -G`) and dials that address for the direct connections, so in WAN
 * scenarios CONFIG names 127.0.0.2, where one emulator forwards to sshd and a second one, on 127.0.0.2:P,
 * to the serve-once port 127.0.0.1:P: the ssh login, the direct data and the carried data all cross the
 * model.
 */
import { spawnSync } from 'node:child_process';
import { type FcpBuild, fcpMissing, sessionSeconds, summaryConnections, THIS_BUILD } from './fcp.js';
import { freePort, startService } from './proc.js';
import type { PrivateSshd } from './sshd.js';
import { type Endpoints, runClient, type SshRoute, type Tool } from './tools.js';
import { type WanModel, wanProxyArgs } from './verify-wan.js';

/** The host name fcp is given; the route's ssh config says where it points. */
export const FCP_SSH_ALIAS = 'fcp-bench-ssh';
/** A second loopback address for the emulators, so that `ssh -G` sends the direct dial through one too. */
const WAN_ADDRESS = '127.0.0.2';

export type SshTransport = 'direct' | 'carried';

/** The route over plain loopback: the alias is sshd itself. */
export async function loopbackSshRoute(sshd: PrivateSshd): Promise<SshRoute> {
  return { configFile: sshd.aliasConfig(FCP_SSH_ALIAS, '127.0.0.1', sshd.port), fcpdPort: await freePort() };
}

/** The route through the WAN emulator: both sshd and the serve-once port behind emulators on 127.0.0.2. */
export async function wanSshRoute(sshd: PrivateSshd, model: WanModel): Promise<SshRoute> {
  const fcpdPort = await freePort();
  const sshProxy = await startService(
    process.execPath,
    wanProxyArgs(model, sshd.port, { host: WAN_ADDRESS, port: 0 }),
    { readyEvent: 'listening' },
  );
  await startService(process.execPath, wanProxyArgs(model, fcpdPort, { host: WAN_ADDRESS, port: fcpdPort }), {
    readyEvent: 'listening',
  });
  const sshPort = Number(sshProxy.ready['port']);
  return { configFile: sshd.aliasConfig(FCP_SSH_ALIAS, WAN_ADDRESS, sshPort), fcpdPort };
}

/** The remote command that starts fcpd: this node and `build`'s fcpd, bound where the route expects it. */
function remoteFcpd(route: SshRoute, root: string, build: FcpBuild): string {
  return [
    process.execPath,
    build.daemonJs,
    '--bind',
    '127.0.0.1',
    '--port',
    String(route.fcpdPort),
    '--root',
    root,
  ].join(' ');
}

/** The options that send fcp through ssh, each one argv word (`--opt=value`: no value is taken for a path). */
function sshOptions(route: SshRoute, transport: SshTransport, root: string, build: FcpBuild): string[] {
  return [
    `--ssh=ssh -F ${route.configFile}`,
    `--ssh-transport=${transport}`,
    `--remote-fcpd=${remoteFcpd(route, root, build)}`,
  ];
}

/** One fcp command through ssh: what to copy, which way, and over which route and transport. */
export interface FcpSshCopy {
  direction: 'push' | 'pull';
  route: SshRoute;
  transport: SshTransport;
  /** -n, or undefined for fcp's default. */
  conns: number | undefined;
  /** The remote fcpd's --root; `remote` is absolute inside it. */
  root: string;
  /** Local side (source of a push, destination of a pull); a trailing slash copies a tree's contents. */
  local: string;
  remote: string;
  /** The fcp that runs and the fcpd it starts; default this checkout's. */
  build?: FcpBuild;
}

/** Arguments (after `node`) for `fcp push LOCAL alias:REMOTE` or `fcp pull alias:REMOTE LOCAL` through ssh. */
export function fcpSshArgs(c: FcpSshCopy): string[] {
  const remote = `${FCP_SSH_ALIAS}:${c.remote}`;
  const operands = c.direction === 'push' ? [c.local, remote] : [remote, c.local];
  const build = c.build ?? THIS_BUILD;
  const opts = sshOptions(c.route, c.transport, c.root, build);
  const n = c.conns === undefined ? [] : ['-n', String(c.conns)];
  return [build.clientJs, c.direction, '--json', ...n, ...opts, ...operands];
}

/** Per build: why its rows are skipped (no --ssh-transport), or undefined. */
const sshSupport = new Map<FcpBuild, string | undefined>();

function fcpSshMissing(build: FcpBuild): string | undefined {
  if (sshSupport.has(build)) return sshSupport.get(build);
  let missing = fcpMissing(build);
  if (missing === undefined) {
    const help = spawnSync(process.execPath, [build.clientJs, 'push', '--help'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (!`${help.stdout}`.includes('--ssh-transport')) missing = 'this fcp has no --ssh-transport';
  }
  sshSupport.set(build, missing);
  return missing;
}

/** The tool ids fcpSshTools makes, push then pull, direct then carried. */
export const FCP_SSH_TOOL_IDS = [
  'fcp-ssh-direct',
  'fcp-ssh-carried',
  'fcp-ssh-direct-pull',
  'fcp-ssh-carried-pull',
];

/**
 * fcp push and pull through ssh in both transports. Pushes land under `roots.push` (the bench's tmpfs, where
 * the harness puts ctx.dst); pulls read the data cache, `roots.pull`, like the standing fcpd rows do. The
 * server side's CPU is the sshd's (`sshdPid`), which reaps the one-session fcpd. With a `baseline` build
 * (FCP_BENCH_BASELINE), its rows follow each (ids ending `-baseline`): its fcp starting its fcpd, same sshd.
 */
export function fcpSshTools(
  roots: { push: string; pull: string },
  sshdPid: () => number | undefined,
  baseline?: FcpBuild,
): Tool[] {
  const tools: Tool[] = [];
  for (const direction of ['push', 'pull'] as const) {
    for (const transport of ['direct', 'carried'] as const) {
      for (const build of baseline === undefined ? [THIS_BUILD] : [THIS_BUILD, baseline]) {
        const base = build === THIS_BUILD ? '' : '-baseline';
        tools.push({
          id: `fcp-ssh-${transport}${direction === 'pull' ? '-pull' : ''}${base}`,
          label: `fcp ${direction === 'pull' ? 'pull ' : ''}--ssh ${transport}${base === '' ? '' : ' (baseline)'}`,
          direction,
          writesTree: true,
          missing: (net: Endpoints) =>
            fcpSshMissing(build) ?? (net.fcpSsh === undefined ? 'no route to sshd' : undefined),
          server: sshdPid,
          run: async (ctx) => {
            const args = fcpSshArgs({
              direction,
              route: ctx.net.fcpSsh as SshRoute,
              transport,
              conns: ctx.fcpConns,
              build,
              ...(direction === 'push'
                ? { root: roots.push, local: `${ctx.src}/`, remote: ctx.dst }
                : { root: roots.pull, local: ctx.dst, remote: `${ctx.src}/` }),
            });
            const run = await runClient(ctx.pin, process.execPath, args, {
              timeoutMs: ctx.timeoutMs,
              stdoutTail: true,
            });
            return {
              result: run.result,
              clientCpuS: run.cpuS,
              clientRssKb: run.rssKb,
              conns: summaryConnections(run.result.stdout),
              sessionSeconds: sessionSeconds(run.result.stdout),
            };
          },
        });
      }
    }
  }
  return tools;
}

/**
 * `ssh -F CONFIG fcp-bench-ssh true` on the fcp route: what an ssh login alone costs on this path, so the
 * one-file rows can be read as "today's fcp + one login + at most one RTT" (issue 17's latency bound).
 */
export function sshLoginTool(sshdPid: () => number | undefined): Tool {
  return {
    id: 'ssh-login',
    label: 'ssh login only (ssh HOST true)',
    direction: 'wire',
    writesTree: false,
    note: 'no data: the login and `true` alone',
    missing: (net) => (net.fcpSsh === undefined ? 'no route to sshd' : undefined),
    server: sshdPid,
    run: async (ctx) => {
      const config = (ctx.net.fcpSsh as SshRoute).configFile;
      const run = await runClient(ctx.pin, 'ssh', ['-F', config, FCP_SSH_ALIAS, 'true'], {
        timeoutMs: ctx.timeoutMs,
      });
      return { result: run.result, clientCpuS: run.cpuS };
    },
  };
}
