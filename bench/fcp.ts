/**
 * How the bench starts fcpd and runs the fcp client. The command lines live here and only here, so a change
 * to fcp's CLI (or the authentication step still to come) is a change to this file.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, onCleanup, type Service, startService } from './proc.js';

export const FCP_CLIENT_JS = fileURLToPath(new URL('../bin/fcp.js', import.meta.url));
export const FCP_DAEMON_JS = fileURLToPath(new URL('../bin/fcpd.js', import.meta.url));

/** Undefined when both entry points are compiled, else the reason fcp rows are skipped. */
export function fcpMissing(): string | undefined {
  if (!existsSync(FCP_CLIENT_JS)) return 'fcp not built (dist/bin/fcp.js missing)';
  if (!existsSync(FCP_DAEMON_JS)) return 'fcp not built (dist/bin/fcpd.js missing)';
  return undefined;
}

export interface FcpDaemon {
  port: number;
  root: string;
  /** The daemon's state directory (FCPD_STATE_DIR), where its token will live. */
  stateDir: string;
  service: Service;
}

/** Starts `fcpd` in the foreground serving `root` on 127.0.0.1; ready once its port accepts connections. */
export async function startFcpDaemon(root: string): Promise<FcpDaemon> {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'fcp-bench-state-'));
  onCleanup(() => rmSync(stateDir, { recursive: true, force: true }));
  const port = await freePort();
  const args = [
    FCP_DAEMON_JS,
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--root',
    root,
    // Also accepts plaintext, for the `fcp --no-encryption` rows; TLS clients still get TLS.
    '--no-encryption',
    '--max-sessions',
    '64',
  ];
  const { service } = await startService(process.execPath, args, {
    env: { ...process.env, FCPD_STATE_DIR: stateDir },
    readyPort: port,
    readyTimeoutMs: 15_000,
  });
  return { port, root, stateDir, service };
}

/** Environment for the client. When fcp gains authentication, this is where the token is handed over. */
export function fcpClientEnv(daemon: FcpDaemon): NodeJS.ProcessEnv {
  return { ...process.env, FCPD_STATE_DIR: daemon.stateDir };
}

/**
 * Arguments (after `node`) to push `src` to `dst` through `port` (the daemon's, or a WAN proxy's).
 * `dst` is an absolute path inside the daemon's root; a trailing slash on `src` copies its contents.
 */
export function fcpPushArgs(
  conns: number,
  src: string,
  port: number,
  dst: string,
  opts: { plaintext?: boolean } = {},
): string[] {
  const enc = opts.plaintext === true ? ['--no-encryption'] : [];
  return [FCP_CLIENT_JS, 'push', '-q', ...enc, '-n', String(conns), src, `127.0.0.1:${port}:${dst}`];
}

/** Arguments (after `node`) to pull `src` (absolute, inside the daemon's root) into local `dst`. */
export function fcpPullArgs(conns: number, port: number, src: string, dst: string): string[] {
  return [FCP_CLIENT_JS, 'pull', '-q', '-n', String(conns), `127.0.0.1:${port}:${src}`, dst];
}
