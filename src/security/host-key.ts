/**
 * The daemon's persistent identity (spec/SECURITY.md §4): an Ed25519 key in `<stateDir>/fcpd-host-key.pem`,
 * created on first start with mode 0600, and a self-signed certificate for TLS made from it at each load.
 * Its fingerprint is SHA-256 over the DER SubjectPublicKeyInfo, printed like ssh: `SHA256:<base64>`.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { authError } from './auth-errors.js';
import { readPrivateFile, writeNewPrivateFile } from './private-file.js';
import { createSelfSignedCert } from './self-signed-cert.js';
import { formatFingerprint } from './ssh-wire.js';

export const HOST_KEY_FILE = 'fcpd-host-key.pem';
const STATE_DIR_MODE = 0o700;
const MAX_KEY_FILE_BYTES = 16 * 1024;

export interface HostKey {
  readonly path: string;
  readonly privateKey: KeyObject;
  /** DER SubjectPublicKeyInfo: what the fingerprint hashes and what AUTH_CHALLENGE carries. */
  readonly spki: Buffer;
  /** SHA-256 of `spki`, the 32 bytes the handshake transcript binds. */
  readonly fingerprintBytes: Buffer;
  /** `SHA256:<base64>`, for humans and known_hosts. */
  readonly fingerprint: string;
  /** PEM certificate and key, ready for tls.createServer({ cert, key }). */
  readonly certPem: string;
  readonly keyPem: string;
  /** True when this call created the key. */
  readonly created: boolean;
}

/** SHA-256 of a DER SubjectPublicKeyInfo. */
export function spkiDigest(spki: Uint8Array): Buffer {
  return createHash('sha256').update(spki).digest();
}

/** `SHA256:<base64>` of a DER SubjectPublicKeyInfo. */
export function spkiFingerprint(spki: Uint8Array): string {
  return formatFingerprint(spkiDigest(spki));
}

/**
 * Loads the host key from `stateDir`, creating it (and the directory, 0700) on first use. Concurrent first
 * starts agree on one key: it is written to a private temporary file and hard-linked into place, which fails
 * for all but the first. A key file that is a symlink, not ours, or readable by group or others is refused.
 */
export async function loadOrCreateHostKey(stateDir: string): Promise<HostKey> {
  const path = join(stateDir, HOST_KEY_FILE);
  await mkdir(stateDir, { recursive: true, mode: STATE_DIR_MODE });
  try {
    return await loadHostKeyFile(path, false);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return loadHostKeyFile(path, await createKeyFile(path));
}

/**
 * A fresh host key that lives only in this process's memory (`fcpd --serve-once`, spec/SECURITY.md §14):
 * nothing is written to disk, and it dies with the process. `path` is empty.
 */
export function generateHostKey(): HostKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  return hostKeyOf(privateKey, undefined, '', true);
}

/** Signs `data` with the host key (Ed25519, so no hash is chosen). */
export function hostSign(hostKey: HostKey, data: Uint8Array): Buffer {
  return sign(null, data, hostKey.privateKey);
}

/** Checks a host signature against a DER SubjectPublicKeyInfo; false for anything but a valid Ed25519 one. */
export function verifyHostSignature(spki: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    if (key.asymmetricKeyType !== 'ed25519' || signature.length !== 64) return false;
    return verify(null, data, key, signature);
  } catch {
    return false;
  }
}

async function createKeyFile(path: string): Promise<boolean> {
  const { privateKey } = generateKeyPairSync('ed25519');
  return writeNewPrivateFile(path, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
}

async function loadHostKeyFile(path: string, created: boolean): Promise<HostKey> {
  const keyPem = await readPrivateFile(path, MAX_KEY_FILE_BYTES);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: keyPem, format: 'pem' });
  } catch (err) {
    throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: not a private key`, { path, cause: err });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: the host key must be Ed25519`, { path });
  }
  return hostKeyOf(privateKey, keyPem, path, created);
}

/**
 * The PEMs are made on first use, by the TLS context: the fingerprint is the key's, not the certificate's,
 * so fcpd --serve-once announces it before either exists (~1.2 ms of its start, pinned). `keyPem`
 * undefined: exported from `privateKey` then.
 */
function hostKeyOf(
  privateKey: KeyObject,
  keyPem: string | undefined,
  path: string,
  created: boolean,
): HostKey {
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const fingerprintBytes = spkiDigest(spki);
  let certPem: string | undefined;
  let pem = keyPem;
  return {
    path,
    privateKey,
    spki,
    fingerprintBytes,
    fingerprint: formatFingerprint(fingerprintBytes),
    get certPem() {
      return (certPem ??= createSelfSignedCert(privateKey, 'fcpd'));
    },
    get keyPem() {
      return (pem ??= privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    },
    created,
  };
}
