/**
 * What `fcp push` and `fcp pull` are told to copy: the operands split into the remote spec and the local
 * paths, and the endpoint and security options of the remote host. A bad operand or option is a usage
 * error (FCP_ERR_USAGE), thrown for fcp.ts to report.
 */
import path from 'node:path';
import { DEFAULT_PORT, FcpError } from '../protocol/index.js';
import { isFingerprint } from '../security/known-hosts.js';
import { resolveHost } from '../client/host-resolve.js';
import { parseRemoteSpec, type RemoteSpec } from '../client/remote-spec.js';
import type { Endpoint, SecurityOptions } from '../client/transfer-client.js';

/** The options endpointFor reads. */
export interface EndpointArgs {
  readonly 'ssh-config': string | undefined;
  readonly 'accept-host-key': string | undefined;
  readonly encryption: boolean;
  readonly identity: string | undefined;
  readonly 'dry-run': boolean;
}

function usage(message: string): never {
  throw new FcpError('FCP_ERR_USAGE', message);
}

/** The remote spec and the local paths of `push SRC... HOST:DST` or `pull HOST:SRC DST`. */
export function splitOperands(
  direction: 'push' | 'pull',
  operands: string[],
): { remote: RemoteSpec; local: string[] } {
  if (direction === 'push') {
    if (operands.length < 2)
      usage('push needs at least one source and a destination: fcp push SRC... HOST:DST');
    const last = operands[operands.length - 1]!;
    const spec = parseRemoteSpec(last);
    if (spec === undefined)
      usage(`the destination "${last}" is not remote (expected [user@]host[:port]:path)`);
    const local = operands.slice(0, -1);
    for (const source of local) {
      if (parseRemoteSpec(source) !== undefined) usage(`push sources must be local: "${source}"`);
    }
    return { remote: spec, local };
  }
  if (operands.length !== 2)
    usage('pull needs exactly a remote source and a local destination: fcp pull HOST:SRC DST');
  const spec = parseRemoteSpec(operands[0]!);
  if (spec === undefined)
    usage(`the source "${operands[0]}" is not remote (expected [user@]host[:port]:path)`);
  if (parseRemoteSpec(operands[1]!) !== undefined)
    usage(`the pull destination must be local: "${operands[1]}"`);
  return { remote: spec, local: [operands[1]!] };
}

export function endpointFor(
  spec: RemoteSpec,
  args: EndpointArgs,
): { endpoint: Endpoint; security: Partial<SecurityOptions> } {
  const opts =
    args['ssh-config'] === undefined
      ? { defaultPort: DEFAULT_PORT }
      : { defaultPort: DEFAULT_PORT, configFile: args['ssh-config'] };
  const host = resolveHost(spec, opts);
  const acceptHostKey = args['accept-host-key'];
  if (acceptHostKey !== undefined && !isFingerprint(acceptHostKey)) {
    usage(
      `--accept-host-key wants a fingerprint as fcpd --fingerprint prints it (SHA256:...), not "${acceptHostKey}"`,
    );
  }
  return {
    endpoint: { host: host.host, port: host.port },
    security: {
      encryption: args.encryption,
      acceptHostKey,
      user: host.user ?? '',
      identityFile: args.identity === undefined ? undefined : path.resolve(args.identity),
      configIdentityFiles: host.identityFiles,
      knownHostsReadOnly: args['dry-run'],
    },
  };
}
