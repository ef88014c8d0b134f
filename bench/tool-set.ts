/** Which rows each scenario gets. */
import { FCP_SSH_TOOL_IDS, fcpSshTools, sshLoginTool } from './fcp-ssh.js';
import { IPERF_STREAMS, iperfTool } from './iperf.js';
import type { Rig } from './rig.js';
import { CONN_STEPS, type Scenario } from './scenarios.js';
import { rsyncPeers, sshPeers, sshPullPeers } from './ssh-peers.js';
import { cpTool, type FcpSide, fcpPullTool, fcpPushTool, rawTool, type Tool } from './tools.js';

export const SSH_TOOL_IDS = [
  'scp',
  'rsync',
  'rsync-pull',
  'tar-ssh',
  'tar-ssh-pull',
  'rclone',
  'lftp',
  'ssh-login',
  ...FCP_SSH_TOOL_IDS,
];
/** Where fcp over ssh gets rows: the three figures (bytes, files, one-file latency) through the WAN. */
const FCP_SSH_SCENARIOS = new Set(['wan-big', 'wan-small', 'wan-one']);
/** Where iperf3 -P 8 is the reference for the link (issue 19: within 5 % of it). */
export const IPERF_SCENARIOS = new Set(['wan-big', 'wan-big-shaped']);
/** The shaped scenario's forced connection count beside fcp's own choice. */
const SHAPED_CONNS = 32;

/** A tool is wanted when --tools is empty or names it, or a prefix of it ("fcp" covers every fcp-*). */
export function wantsTool(wanted: string[], id: string): boolean {
  return wanted.length === 0 || wanted.some((w) => id === w || id.startsWith(`${w}-`));
}

/** fcp rows in pairs: this build's, then the baseline's beside it when FCP_BENCH_BASELINE is set. */
class FcpRows {
  readonly #sides: { push: FcpSide; pull: FcpSide }[];

  constructor(rig: Rig) {
    const base = rig.settings.baseline;
    this.#sides = [
      { push: { daemon: () => rig.daemon('push') }, pull: { daemon: () => rig.daemon('pull') } },
      ...(base === undefined
        ? []
        : [
            {
              push: { daemon: () => rig.daemon('basePush'), baseline: base },
              pull: { daemon: () => rig.daemon('basePull'), baseline: base },
            },
          ]),
    ];
  }

  push(opts: { conns?: number; plaintext?: boolean } = {}): Tool[] {
    return this.#sides.map((s) => fcpPushTool(s.push, opts));
  }

  /** fcp --no-encryption: this build only (the baseline's TLS-off figure is not what is compared). */
  plain(): Tool[] {
    return this.#sides.slice(0, 1).map((s) => fcpPushTool(s.push, { plaintext: true }));
  }

  pull(): Tool[] {
    return this.#sides.map((s) => fcpPullTool(s.pull));
  }
}

export function toolsFor(s: Scenario, rig: Rig): Tool[] {
  const conns = rig.settings.conns;
  const fcp = new FcpRows(rig);
  const sink = (): number | undefined => rig.sink?.pid;
  const sshdPid = (): number | undefined => (typeof rig.sshd === 'string' ? undefined : rig.sshd.pid);
  const iperf = IPERF_SCENARIOS.has(s.id) ? [iperfTool(IPERF_STREAMS, () => rig.iperf?.pid)] : [];
  if (s.kind === 'conns') {
    return CONN_STEPS.flatMap((n) => [...fcp.push({ conns: n }), rawTool(n, sink)]);
  }
  if (s.kind === 'shaped') {
    const raw = [rawTool(IPERF_STREAMS, sink), rawTool(SHAPED_CONNS, sink)];
    return [...fcp.push(), ...fcp.push({ conns: SHAPED_CONNS }), ...raw, ...iperf];
  }
  // The big tree's no-change re-run: fcp against rsync -a, both ways.
  if (s.dataset === 'tree') return [...fcp.push(), ...fcp.pull(), ...rsyncPeers(rig.sshd)];
  const overSsh = FCP_SSH_SCENARIOS.has(s.id)
    ? [
        ...fcpSshTools({ push: rig.destRoot, pull: rig.settings.cacheDir }, sshdPid, rig.settings.baseline),
        ...(s.dataset === 'one' ? [sshLoginTool(sshdPid)] : []),
      ]
    : [];
  const peers = sshPeers(rig.sshd);
  const local = s.wan ? [] : [cpTool];
  // One small file: latency, where encryption and raw streams say nothing.
  if (s.kind === 'nochange' || s.dataset === 'one') {
    return [...fcp.push(), ...fcp.pull(), ...overSsh, ...peers, ...local];
  }
  const small = s.dataset === 'small';
  // Encryption on and off, side by side, where bytes dominate.
  const plain = small ? [] : fcp.plain();
  // Small files both ways, so each side's CPU can be set against tar's and rsync's.
  const pullPeers = small ? sshPullPeers(rig.sshd) : [];
  const raw = conns === 1 ? [rawTool(1, sink)] : [rawTool(1, sink), rawTool(conns, sink)];
  return [
    ...fcp.push(),
    ...plain,
    ...fcp.pull(),
    ...overSsh,
    ...peers,
    ...pullPeers,
    ...local,
    ...raw,
    ...iperf,
  ];
}
