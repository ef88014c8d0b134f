/** Which rows each scenario gets. */
import { fcpSshTools, FCP_SSH_TOOL_IDS, sshLoginTool } from './fcp-ssh.js';
import type { Rig } from './rig.js';
import { CONN_STEPS, type Scenario } from './scenarios.js';
import { cpTool, fcpPullTool, fcpPushTool, rawTool, sshPeers, type Tool } from './tools.js';

export const SSH_TOOL_IDS = ['scp', 'rsync', 'tar-ssh', 'rclone', 'lftp', 'ssh-login', ...FCP_SSH_TOOL_IDS];
/** Where fcp over ssh gets rows: the three figures (bytes, files, one-file latency) through the WAN. */
const FCP_SSH_SCENARIOS = new Set(['wan-big', 'wan-small', 'wan-one']);

/** A tool is wanted when --tools is empty or names it, or a prefix of it ("fcp" covers every fcp-*). */
export function wantsTool(wanted: string[], id: string): boolean {
  return wanted.length === 0 || wanted.some((w) => id === w || id.startsWith(`${w}-`));
}

export function toolsFor(s: Scenario, rig: Rig, conns: number): Tool[] {
  const push = fcpPushTool(() => rig.daemon('push'));
  const pull = fcpPullTool(() => rig.daemon('pull'));
  const peers = sshPeers(rig.sshd);
  const overSsh = FCP_SSH_SCENARIOS.has(s.id)
    ? [
        ...fcpSshTools({ push: rig.destRoot, pull: rig.settings.cacheDir }),
        ...(s.dataset === 'one' ? [sshLoginTool] : []),
      ]
    : [];
  if (s.kind === 'conns') {
    return CONN_STEPS.flatMap((n) => [fcpPushTool(() => rig.daemon('push'), n), rawTool(n)]);
  }
  const local = s.wan ? [] : [cpTool];
  // One small file: latency, where encryption and raw streams say nothing.
  if (s.kind === 'nochange' || s.dataset === 'one') return [push, pull, ...overSsh, ...peers, ...local];
  // Encryption on and off, side by side, where bytes dominate.
  const plain =
    s.dataset === 'small' ? [] : [fcpPushTool(() => rig.daemon('push'), undefined, { plaintext: true })];
  const raw = conns === 1 ? [rawTool(1)] : [rawTool(1), rawTool(conns)];
  return [push, ...plain, pull, ...overSsh, ...peers, ...local, ...raw];
}
