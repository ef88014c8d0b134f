/**
 * Installing fcp's own daemon on a remote that has node but no fcpd: the single-file bundle
 * (dist/bin/fcpd.js, beside the running fcp) goes over an ssh channel into the login user's
 * ~/.cache/fcp/fcpd-VERSION-HASH16.cjs, checked and renamed there by the remote (remote-script.ts
 * installProgram), and is found there by every later bootstrap.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { FCP_VERSION } from '../protocol/constants.js';
import { FcpError } from '../protocol/errors.js';
import { installArgv, type SshCommand } from '../transport/ssh-command.js';
import { cachedBundleName } from '../transport/remote-script.js';
import { endSsh, spawnSsh, sshEnded } from './ssh-process.js';

/** The oldest node the bundle runs on (package.json "engines"). */
const MIN_NODE = [20, 19] as const;
/** Sending 640 KiB and renaming it: generous for a slow link through a jump host. */
const INSTALL_TIMEOUT_MS = 120_000;

/** The daemon bundle this fcp would install. */
export interface LocalBundle {
  readonly data: Buffer;
  readonly sha256: string;
  /** Its name in the remote cache: fcpd-VERSION-HASH16.cjs. */
  readonly name: string;
}

/**
 * The fcpd bundle next to this fcp: dist/bin/fcpd.js beside the bundled dist/bin/fcp.js, or reached from
 * dist/src/client/ when fcp runs unbundled. undefined when neither exists (no remote install then).
 */
export async function findLocalBundle(): Promise<LocalBundle | undefined> {
  for (const rel of ['./fcpd.js', '../../bin/fcpd.js']) {
    let data: Buffer;
    try {
      data = await readFile(fileURLToPath(new URL(rel, import.meta.url)));
    } catch {
      // Not at this place: try the next one; none means no install.
      continue;
    }
    const sha256 = createHash('sha256').update(data).digest('hex');
    return { data, sha256, name: bundleName(sha256) };
  }
  return undefined;
}

/** The name in the remote cache of the bundle whose SHA-256 is `sha256` (hex). */
export function bundleName(sha256: string): string {
  return cachedBundleName(FCP_VERSION, sha256.slice(0, 16));
}

/** Why the remote cannot get fcpd from us, or undefined when it can (node new enough, a bundle to send). */
export function cannotInstall(
  dest: string,
  node: string | null,
  bundle: LocalBundle | undefined,
  allowed: boolean,
): FcpError | undefined {
  const hint = `install fcp there (npm install -g fcp) or name its fcpd with --remote-fcpd PATH`;
  if (!allowed)
    return noFcpd(`${dest} has no fcpd on its PATH and --no-remote-install forbids sending one: ${hint}`);
  const minimum = MIN_NODE.join('.');
  if (node === null)
    return noFcpd(
      `${dest} has neither fcpd nor node on its PATH: ${hint}, or install node ${minimum} or newer`,
    );
  if (!nodeNewEnough(node))
    return noFcpd(`${dest} has no fcpd, and its node ${node} is older than ${minimum}: ${hint}`);
  if (bundle === undefined)
    return noFcpd(`${dest} has no fcpd, and this fcp has no dist/bin/fcpd.js to send: ${hint}`);
  return undefined;
}

function noFcpd(message: string): FcpError {
  return new FcpError('FCP_ERR_NET_CONNECT', message);
}

/** `20.19.1` or `v22.0.0` is at least MIN_NODE. */
export function nodeNewEnough(version: string): boolean {
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  if (m === null) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
}

/** Sends the bundle over `ssh DEST <install program>`; resolves once the remote has it under its name. */
export async function installBundle(
  ssh: SshCommand,
  dest: string,
  bundle: LocalBundle,
  onStderr: (line: string) => void,
): Promise<void> {
  const child = spawnSsh(installArgv(ssh, dest, bundle.name, bundle.sha256), onStderr);
  child.child.stdout!.resume();
  child.child.stdin!.end(bundle.data);
  const timer = setTimeout(() => void endSsh(child), INSTALL_TIMEOUT_MS);
  const how = await child.closed;
  clearTimeout(timer);
  if (how.code === 0) return;
  // ssh's own failures (255, or no ssh at all) as for the bootstrap; else the install program's.
  if (how.code === null || how.code === 255) throw sshEnded(dest, how, child.lastStderr());
  const said = child.lastStderr() === undefined ? '' : `: ${child.lastStderr()}`;
  throw new FcpError('FCP_ERR_NET_CONNECT', `cannot install fcpd in ~/.cache/fcp on ${dest}${said}`);
}
