/**
 * The one line `fcpd --serve-once` prints on stdout, which the client reads through ssh (spec/PROTOCOL.md
 * §8.1): `FCPD-SERVE-ONCE {"v":1,"port":…,"hostKey":"SHA256:…","secret":"<32 hex>","relay":"/abs/sock",
 * "version":"…"}`. It carries everything the client needs to reach and trust that one daemon: where it
 * listens, the host key to pin, and the one-time secret to log in with (spec/SECURITY.md §14). Parsing is
 * strict: every field checked, no other field accepted, an unknown version refused by name.
 */
import { FcpError } from '../protocol/errors.js';

export const BOOTSTRAP_PREFIX = 'FCPD-SERVE-ONCE ';
/** The only version of the line this build writes and reads. */
export const BOOTSTRAP_VERSION = 1;
/** How much of ssh's stdout the client reads looking for the line: login scripts may print junk first. */
export const BOOTSTRAP_SCAN_MAX_BYTES = 64 * 1024;
export const BOOTSTRAP_SCAN_MAX_LINES = 200;
/** From ssh's start to the line; a login through a jump host is slow, so not shorter. */
export const BOOTSTRAP_TIMEOUT_MS = 30_000;
/** The one-time secret: 128 bits. */
export const ONE_TIME_SECRET_SIZE = 16;

/** A line longer than this is not ours, whatever it starts with. */
const MAX_LINE_CHARS = 4096;
/** sun_path holds 108 bytes on Linux, the terminating NUL included. */
const MAX_RELAY_PATH_BYTES = 107;
const FINGERPRINT_RE = /^SHA256:[A-Za-z0-9+/]{43}$/;
const SECRET_RE = /^[0-9a-f]{32}$/;
const VERSION_RE = /^[0-9A-Za-z.+-]{1,64}$/;
const FIELDS = ['v', 'port', 'hostKey', 'secret', 'relay', 'version'] as const;

/** What the bootstrap line tells the client. */
export interface BootstrapInfo {
  /** The TCP port the daemon listens on (direct mode). */
  readonly port: number;
  /** `SHA256:<base64>` of the daemon's ephemeral host key: the only key the client accepts. */
  readonly hostKey: string;
  /** The one-time secret (ONE_TIME_SECRET_SIZE bytes) the control connection logs in with. */
  readonly secret: Buffer;
  /** Absolute path of the unix socket `fcpd --stdio` relays to (carried mode). */
  readonly relay: string;
  /** The remote fcp's package version, for messages. */
  readonly version: string;
}

/** The line, without its newline. */
export function formatBootstrapLine(info: BootstrapInfo): string {
  const body = {
    v: BOOTSTRAP_VERSION,
    port: info.port,
    hostKey: info.hostKey,
    secret: info.secret.toString('hex'),
    relay: info.relay,
    version: info.version,
  };
  // Checked on the way out too: a daemon must never print a line its clients refuse.
  validateBootstrapInfo(body);
  return `${BOOTSTRAP_PREFIX}${JSON.stringify(body)}`;
}

/**
 * The info of a bootstrap line; undefined when `line` is not one (any other output, which the client skips).
 * Throws FCP_ERR_PROTO_MALFORMED for a line that starts like one but is broken, FCP_ERR_PROTO_VERSION for
 * one of another version. A trailing `\r` or `\n` is ignored.
 */
export function parseBootstrapLine(line: string): BootstrapInfo | undefined {
  const text = line.replace(/\r?\n?$/, '');
  if (!text.startsWith(BOOTSTRAP_PREFIX)) return undefined;
  if (text.length > MAX_LINE_CHARS) throw malformed(`longer than ${MAX_LINE_CHARS} characters`);
  let value: unknown;
  try {
    value = JSON.parse(text.slice(BOOTSTRAP_PREFIX.length));
  } catch {
    throw malformed('not JSON');
  }
  return validateBootstrapInfo(value);
}

/** Checks a decoded bootstrap object field by field; throws as parseBootstrapLine does. */
export function validateBootstrapInfo(value: unknown): BootstrapInfo {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed('not an object');
  const o = value as Record<string, unknown>;
  if (o['v'] !== BOOTSTRAP_VERSION) {
    throw new FcpError(
      'FCP_ERR_PROTO_VERSION',
      `the remote fcpd printed a bootstrap line of version ${JSON.stringify(o['v'])}; this fcp reads ` +
        `version ${BOOTSTRAP_VERSION}: install the same fcp version on both hosts`,
    );
  }
  const extra = Object.keys(o).find((k) => !(FIELDS as readonly string[]).includes(k));
  if (extra !== undefined) throw malformed(`unknown field ${JSON.stringify(extra)}`);
  const { port, hostKey, secret, relay, version } = o;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    throw malformed('port is not 1-65535');
  if (typeof hostKey !== 'string' || !FINGERPRINT_RE.test(hostKey))
    throw malformed('hostKey is not SHA256:<base64>');
  if (typeof secret !== 'string' || !SECRET_RE.test(secret)) throw malformed('secret is not 32 hex digits');
  if (!validRelayPath(relay)) throw malformed('relay is not an absolute socket path');
  if (typeof version !== 'string' || !VERSION_RE.test(version)) throw malformed('version is not a version');
  return { port, hostKey, secret: Buffer.from(secret, 'hex'), relay: relay as string, version };
}

function validRelayPath(relay: unknown): boolean {
  return (
    typeof relay === 'string' &&
    relay.startsWith('/') &&
    Buffer.byteLength(relay) <= MAX_RELAY_PATH_BYTES &&
    // Printable, no NUL: the client passes it as one word of a remote command line.
    !/[\0-\x1f\x7f]/.test(relay)
  );
}

function malformed(why: string): FcpError {
  return new FcpError('FCP_ERR_PROTO_MALFORMED', `the remote fcpd's bootstrap line is malformed: ${why}`);
}
