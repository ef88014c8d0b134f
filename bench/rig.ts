/**
 * Everything the scenarios share: the standing fcpds (this build's, and the baseline's when asked), the
 * private sshd, the raw TCP sink, the iperf3 server, and WAN emulators in front of each, started on first
 * use. Servers start behind the pinning's server prefix, so they and their children run on the server core.
 */
import { existsSync } from 'node:fs';
import { type FcpBuild, type FcpDaemon, fcpMissing, startFcpDaemon } from './fcp.js';
import { loopbackSshRoute, wanSshRoute } from './fcp-ssh.js';
import { startIperfServer } from './iperf.js';
import { pinned } from './pin.js';
import { startService } from './proc.js';
import type { Scenario } from './scenarios.js';
import type { Settings } from './settings.js';
import { aptInstall, type PrivateSshd, SSHD, startPrivateSshd } from './sshd.js';
import type { Endpoints, SshRoute } from './tools.js';
import { RAW_STREAM_JS, type WanModel, wanProxyArgs } from './verify-wan.js';

export function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

export type DaemonRole = 'push' | 'pull' | 'basePush' | 'basePull';

/** A server that runs for the whole bench: its port, and its pid for CPU accounting. */
interface Standing {
  port: number;
  pid: number;
}

export interface RigNeeds {
  peers: boolean;
  fcp: boolean;
  sink: boolean;
  iperf: boolean;
}

export class Rig {
  sshd: PrivateSshd | string = 'not started';
  readonly #daemons: Record<DaemonRole, FcpDaemon | string> = {
    push: 'not started',
    pull: 'not started',
    basePush: 'not started',
    basePull: 'not started',
  };
  sink: Standing | undefined;
  iperf: Standing | undefined;
  /** Emulator ports by model and target port. */
  readonly #proxies = new Map<string, number>();
  readonly #sshRoutes = new Map<boolean, SshRoute>();

  constructor(
    readonly settings: Settings,
    readonly destRoot: string,
  ) {}

  async start(need: RigNeeds): Promise<void> {
    const pin = this.settings.pin.server;
    if (need.peers) {
      if (!existsSync(SSHD) && this.settings.install) aptInstall(['openssh-server', 'rsync']);
      const r = await startPrivateSshd(pin);
      this.sshd = r.ok ? r.sshd : r.reason;
      log(r.ok ? `sshd: 127.0.0.1:${r.sshd.port}` : `sshd: ${r.reason}; ssh peers skipped`);
    }
    if (need.fcp) await this.#startDaemons();
    if (need.sink) {
      const { service, ready } = await startService(
        ...pinned(pin, process.execPath, [RAW_STREAM_JS, 'sink']),
        { readyEvent: 'listening' },
      );
      this.sink = { port: Number(ready['port']), pid: service.pid };
    }
    if (need.iperf) this.iperf = await startIperfServer(pin);
  }

  async #startDaemons(): Promise<void> {
    const missing = fcpMissing();
    this.#daemons.push = missing ?? (await this.#daemon(this.destRoot));
    this.#daemons.pull = missing ?? (await this.#daemon(this.settings.cacheDir));
    if (missing !== undefined) log(missing);
    const base = this.settings.baseline;
    if (base === undefined) return;
    this.#daemons.basePush = await this.#daemon(this.destRoot, base);
    this.#daemons.basePull = await this.#daemon(this.settings.cacheDir, base);
  }

  async #daemon(root: string, build?: FcpBuild): Promise<FcpDaemon | string> {
    try {
      return await startFcpDaemon(root, { build, pin: this.settings.pin.server });
    } catch (err) {
      return `fcpd did not start: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  /** The daemon in `role`, or why there is none (never started, or died since). */
  daemon(role: DaemonRole): FcpDaemon | string {
    const d = this.#daemons[role];
    if (typeof d === 'string') return d;
    return d.service.child.exitCode === null && d.service.child.signalCode === null ? d : 'fcpd exited';
  }

  #port(role: DaemonRole): number | undefined {
    const d = this.#daemons[role];
    return typeof d === 'string' ? undefined : d.port;
  }

  async #proxy(model: WanModel, target: number | undefined): Promise<number | undefined> {
    if (target === undefined) return undefined;
    const key = `${JSON.stringify(model)}>${target}`;
    const known = this.#proxies.get(key);
    if (known !== undefined) return known;
    const { ready } = await startService(process.execPath, wanProxyArgs(model, target), {
      readyEvent: 'listening',
    });
    const port = Number(ready['port']);
    this.#proxies.set(key, port);
    return port;
  }

  /** fcp --ssh's route on this path, made (emulators started) on first use. */
  async #sshRoute(wan: boolean): Promise<SshRoute | undefined> {
    if (typeof this.sshd === 'string') return undefined;
    const known = this.#sshRoutes.get(wan);
    if (known !== undefined) return known;
    const route = wan ? await wanSshRoute(this.sshd, this.settings.model) : await loopbackSshRoute(this.sshd);
    this.#sshRoutes.set(wan, route);
    return route;
  }

  /** The scenario's emulator model: the bench's, with the scenario's per-flow shaper if it has one. */
  modelFor(s: Scenario): WanModel {
    return s.perConnRateBps === undefined
      ? this.settings.model
      : { ...this.settings.model, perConnRateBps: s.perConnRateBps };
  }

  async endpoints(s: Scenario): Promise<Endpoints> {
    const direct: Endpoints = {
      sshPort: typeof this.sshd === 'string' ? undefined : this.sshd.port,
      fcpSsh: await this.#sshRoute(false),
      fcpPushPort: this.#port('push'),
      fcpPullPort: this.#port('pull'),
      baselinePushPort: this.#port('basePush'),
      baselinePullPort: this.#port('basePull'),
      sinkPort: this.sink?.port,
      iperfPort: this.iperf?.port,
    };
    if (!s.wan) return direct;
    const model = this.modelFor(s);
    return {
      sshPort: await this.#proxy(model, direct.sshPort),
      fcpSsh: await this.#sshRoute(true),
      fcpPushPort: await this.#proxy(model, direct.fcpPushPort),
      fcpPullPort: await this.#proxy(model, direct.fcpPullPort),
      baselinePushPort: await this.#proxy(model, direct.baselinePushPort),
      baselinePullPort: await this.#proxy(model, direct.baselinePullPort),
      sinkPort: await this.#proxy(model, direct.sinkPort),
      iperfPort: await this.#proxy(model, direct.iperfPort),
    };
  }
}
