/**
 * Everything the scenarios share: the standing fcpds, the private sshd, the raw TCP sink, and WAN
 * emulators in front of each, started on first use.
 */
import { existsSync } from 'node:fs';
import { type FcpDaemon, fcpMissing, startFcpDaemon } from './fcp.js';
import { loopbackSshRoute, wanSshRoute } from './fcp-ssh.js';
import { startService } from './proc.js';
import type { Settings } from './settings.js';
import { aptInstall, type PrivateSshd, SSHD, startPrivateSshd } from './sshd.js';
import type { Endpoints, SshRoute } from './tools.js';
import { RAW_STREAM_JS, wanProxyArgs } from './verify-wan.js';

export function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** Everything the scenarios share: daemons, sshd, sink, and WAN proxies in front of each. */
export class Rig {
  sshd: PrivateSshd | string = 'not started';
  push: FcpDaemon | string = 'not started';
  pull: FcpDaemon | string = 'not started';
  sinkPort: number | undefined;
  readonly #proxies = new Map<number, number>();
  readonly #sshRoutes = new Map<boolean, SshRoute>();

  constructor(
    readonly settings: Settings,
    readonly destRoot: string,
  ) {}

  async start(need: { peers: boolean; fcp: boolean; sink: boolean }): Promise<void> {
    if (need.peers) {
      if (!existsSync(SSHD) && this.settings.install) aptInstall(['openssh-server', 'rsync']);
      const r = await startPrivateSshd();
      this.sshd = r.ok ? r.sshd : r.reason;
      log(r.ok ? `sshd: 127.0.0.1:${r.sshd.port}` : `sshd: ${r.reason}; ssh peers skipped`);
    }
    if (need.fcp) {
      const missing = fcpMissing();
      this.push = missing ?? (await this.#daemon(this.destRoot));
      this.pull = missing ?? (await this.#daemon(this.settings.cacheDir));
      if (missing !== undefined) log(missing);
    }
    if (need.sink) {
      const { ready } = await startService(process.execPath, [RAW_STREAM_JS, 'sink'], {
        readyEvent: 'listening',
      });
      this.sinkPort = Number(ready['port']);
    }
  }

  async #daemon(root: string): Promise<FcpDaemon | string> {
    try {
      return await startFcpDaemon(root);
    } catch (err) {
      return `fcpd did not start: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  /** Stand-in reason for a daemon that has died since it started. */
  daemon(which: 'push' | 'pull'): FcpDaemon | string {
    const d = this[which];
    if (typeof d === 'string') return d;
    return d.service.child.exitCode === null && d.service.child.signalCode === null ? d : 'fcpd exited';
  }

  async #proxy(target: number | undefined): Promise<number | undefined> {
    if (target === undefined) return undefined;
    const known = this.#proxies.get(target);
    if (known !== undefined) return known;
    const { ready } = await startService(process.execPath, wanProxyArgs(this.settings.model, target), {
      readyEvent: 'listening',
    });
    const port = Number(ready['port']);
    this.#proxies.set(target, port);
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

  async endpoints(wan: boolean): Promise<Endpoints> {
    const direct: Endpoints = {
      sshPort: typeof this.sshd === 'string' ? undefined : this.sshd.port,
      fcpSsh: await this.#sshRoute(false),
      fcpPushPort: typeof this.push === 'string' ? undefined : this.push.port,
      fcpPullPort: typeof this.pull === 'string' ? undefined : this.pull.port,
      sinkPort: this.sinkPort,
    };
    if (!wan) return direct;
    return {
      sshPort: await this.#proxy(direct.sshPort),
      fcpSsh: await this.#sshRoute(true),
      fcpPushPort: await this.#proxy(direct.fcpPushPort),
      fcpPullPort: await this.#proxy(direct.fcpPullPort),
      sinkPort: await this.#proxy(direct.sinkPort),
    };
  }
}
