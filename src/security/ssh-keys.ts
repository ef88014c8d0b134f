/**
 * SSH public keys and signatures, verified with node:crypto only (spec/SECURITY.md §5).
 *
 * A public key blob (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709) becomes a KeyObject through JWK; a signature blob
 * (RFC 8332, RFC 5656 §3.1.2, RFC 8709 §6) is checked against the algorithms its key type allows. ECDSA
 * signatures arrive as SSH mpints r and s and are handed to OpenSSL in IEEE P1363 form.
 */
import {
  createHash,
  createPublicKey,
  constants as cryptoConstants,
  type KeyObject,
  verify,
} from 'node:crypto';
import { authError } from './auth-errors.js';
import { b64u, formatFingerprint, SshReader, SshWriter } from './ssh-wire.js';

export type SshKeyType =
  'ssh-ed25519' | 'ecdsa-sha2-nistp256' | 'ecdsa-sha2-nistp384' | 'ecdsa-sha2-nistp521' | 'ssh-rsa';

export type RsaSigAlgorithm = 'rsa-sha2-256' | 'rsa-sha2-512';
export type SshSigAlgorithm = Exclude<SshKeyType, 'ssh-rsa'> | RsaSigAlgorithm;

/** RSA moduli below this are refused (OpenSSH's floor is 1024; NIST retired < 2048 in 2013). */
export const MIN_RSA_BITS = 2048;
/** Larger moduli only make a hostile blob expensive to verify. */
export const MAX_RSA_BITS = 16384;

interface CurveInfo {
  /** The curve identifier inside the blob. */
  readonly ident: string;
  /** JWK `crv`. */
  readonly crv: string;
  readonly hash: string;
  /** Bytes of one coordinate and of r and s in P1363 form. */
  readonly size: number;
}

export const EC_CURVES: Readonly<Record<string, CurveInfo>> = {
  'ecdsa-sha2-nistp256': { ident: 'nistp256', crv: 'P-256', hash: 'sha256', size: 32 },
  'ecdsa-sha2-nistp384': { ident: 'nistp384', crv: 'P-384', hash: 'sha384', size: 48 },
  'ecdsa-sha2-nistp521': { ident: 'nistp521', crv: 'P-521', hash: 'sha512', size: 66 },
};

const RSA_HASH: Readonly<Record<RsaSigAlgorithm, string>> = {
  'rsa-sha2-256': 'sha256',
  'rsa-sha2-512': 'sha512',
};

/** A parsed SSH public key. `blob` is the exact wire form, the identity authorized_keys lines are matched by. */
export interface SshPublicKey {
  readonly type: SshKeyType;
  readonly blob: Buffer;
  readonly key: KeyObject;
  /** `SHA256:...` as `ssh-keygen -l` prints it. */
  readonly fingerprint: string;
}

/** Something that can produce SSH signature blobs with one private key: ssh-agent or a key file. */
export interface SshSigner {
  readonly publicKey: SshPublicKey;
  readonly comment: string;
  /** Where the key lives, for messages: `ssh-agent` or the file path. */
  readonly source: string;
  /** Signs `data`; RSA keys use `rsaAlgorithm` (default rsa-sha2-512), other types ignore it. */
  sign(data: Uint8Array, rsaAlgorithm?: RsaSigAlgorithm): Promise<Buffer>;
}

export function isSupportedKeyType(type: string): type is SshKeyType {
  return type === 'ssh-ed25519' || type === 'ssh-rsa' || Object.hasOwn(EC_CURVES, type);
}

/** `SHA256:<base64>` of a public key blob. */
export function sshFingerprint(blob: Uint8Array): string {
  return formatFingerprint(createHash('sha256').update(blob).digest());
}

/** Parses a public key blob; throws FCP_ERR_AUTH_MALFORMED for anything but a well-formed supported key. */
export function parsePublicKeyBlob(blob: Uint8Array): SshPublicKey {
  const r = new SshReader(blob, 'SSH public key');
  const type = r.name();
  let key: KeyObject;
  if (type === 'ssh-ed25519') {
    const pk = r.string();
    if (pk.length !== 32) throw authError('FCP_ERR_AUTH_MALFORMED', 'ed25519 public key is not 32 bytes');
    key = importJwk({ kty: 'OKP', crv: 'Ed25519', x: b64u(pk) });
  } else if (type === 'ssh-rsa') {
    const e = r.mpintPositive();
    const n = r.mpintPositive();
    const bits = bitLength(n);
    if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
      throw authError(
        'FCP_ERR_AUTH_MALFORMED',
        `RSA key of ${bits} bits (allowed ${MIN_RSA_BITS}-${MAX_RSA_BITS})`,
      );
    }
    if (e.length === 0 || e.length > 8)
      throw authError('FCP_ERR_AUTH_MALFORMED', 'RSA exponent out of range');
    key = importJwk({ kty: 'RSA', n: b64u(n), e: b64u(e) });
  } else {
    const curve = EC_CURVES[type];
    if (curve === undefined) throw authError('FCP_ERR_AUTH_MALFORMED', `unsupported key type ${type}`);
    if (r.name() !== curve.ident)
      throw authError('FCP_ERR_AUTH_MALFORMED', `${type} key names another curve`);
    const q = r.string();
    // Only the uncompressed point form (0x04 || X || Y) is valid in SSH.
    if (q.length !== 1 + 2 * curve.size || q[0] !== 0x04) {
      throw authError('FCP_ERR_AUTH_MALFORMED', `${type} point is not uncompressed`);
    }
    key = importJwk({
      kty: 'EC',
      crv: curve.crv,
      x: b64u(q.subarray(1, 1 + curve.size)),
      y: b64u(q.subarray(1 + curve.size)),
    });
  }
  r.end();
  const copy = Buffer.from(blob);
  return { type: type as SshKeyType, blob: copy, key, fingerprint: sshFingerprint(copy) };
}

/** The SSH public key blob of a node KeyObject (public or private) of a supported type. */
export function publicKeyBlobOf(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  const w = new SshWriter();
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    return w.string('ssh-ed25519').string(Buffer.from(jwk.x!, 'base64url')).toBuffer();
  }
  if (jwk.kty === 'RSA') {
    return w
      .string('ssh-rsa')
      .mpint(Buffer.from(jwk.e!, 'base64url'))
      .mpint(Buffer.from(jwk.n!, 'base64url'))
      .toBuffer();
  }
  if (jwk.kty === 'EC') {
    for (const [type, curve] of Object.entries(EC_CURVES)) {
      if (curve.crv !== jwk.crv) continue;
      const point = Buffer.concat([
        Buffer.of(0x04),
        Buffer.from(jwk.x!, 'base64url'),
        Buffer.from(jwk.y!, 'base64url'),
      ]);
      return w.string(type).string(curve.ident).string(point).toBuffer();
    }
  }
  throw authError('FCP_ERR_AUTH_MALFORMED', `unsupported key (${jwk.kty} ${jwk.crv ?? ''})`);
}

/** Parses `string algorithm, string signature`. */
export function parseSignatureBlob(sigBlob: Uint8Array): { algorithm: string; signature: Buffer } {
  const r = new SshReader(sigBlob, 'SSH signature');
  const algorithm = r.name();
  const signature = r.string();
  r.end();
  return { algorithm, signature };
}

/** The signature algorithms a key type may sign with. ssh-rsa (SHA-1) is never accepted. */
export function allowedAlgorithms(type: SshKeyType): readonly SshSigAlgorithm[] {
  return type === 'ssh-rsa' ? ['rsa-sha2-256', 'rsa-sha2-512'] : [type];
}

/**
 * True when `sigBlob` is a valid signature by `pub` over `data` with an algorithm its type allows.
 * Never throws: a malformed blob is simply not a valid signature.
 */
export function verifySshSignature(pub: SshPublicKey, data: Uint8Array, sigBlob: Uint8Array): boolean {
  try {
    const { algorithm, signature } = parseSignatureBlob(sigBlob);
    if (!(allowedAlgorithms(pub.type) as readonly string[]).includes(algorithm)) return false;
    if (pub.type === 'ssh-ed25519') {
      return signature.length === 64 && verify(null, data, pub.key, signature);
    }
    if (pub.type === 'ssh-rsa') {
      const modBytes = Math.ceil((pub.key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
      // OpenSSH pads a short signature on the left; a longer one is invalid.
      if (signature.length > modBytes || signature.length === 0) return false;
      const padded = Buffer.alloc(modBytes);
      signature.copy(padded, modBytes - signature.length);
      const hash = RSA_HASH[algorithm as RsaSigAlgorithm];
      return verify(hash, data, { key: pub.key, padding: cryptoConstants.RSA_PKCS1_PADDING }, padded);
    }
    const curve = EC_CURVES[pub.type]!;
    const p1363 = sshEcdsaToP1363(signature, curve.size);
    return (
      p1363 !== undefined && verify(curve.hash, data, { key: pub.key, dsaEncoding: 'ieee-p1363' }, p1363)
    );
  } catch {
    return false;
  }
}

/** ECDSA `mpint r, mpint s` (RFC 5656 §3.1.2) -> r || s, each left-padded to `size`; undefined if out of range. */
export function sshEcdsaToP1363(sig: Uint8Array, size: number): Buffer | undefined {
  const r = new SshReader(sig, 'ECDSA signature');
  const rs = [r.mpintPositive(), r.mpintPositive()];
  r.end();
  const out = Buffer.alloc(2 * size);
  for (const [i, v] of rs.entries()) {
    if (v.length === 0 || v.length > size) return undefined;
    v.copy(out, (i + 1) * size - v.length);
  }
  return out;
}

/** r || s (P1363) -> the SSH `mpint r, mpint s` encoding. */
export function p1363ToSshEcdsa(p1363: Uint8Array): Buffer {
  const half = p1363.length / 2;
  return new SshWriter().mpint(p1363.subarray(0, half)).mpint(p1363.subarray(half)).toBuffer();
}

/** The signature blob `string algorithm, string signature`. */
export function signatureBlob(algorithm: string, signature: Uint8Array): Buffer {
  return new SshWriter().string(algorithm).string(signature).toBuffer();
}

/** Parses `type base64 [comment]` (an id_*.pub file or the key part of an authorized_keys line). */
export function parsePublicKeyLine(line: string): { key: SshPublicKey; comment: string } {
  const m = /^\s*(\S+)\s+([A-Za-z0-9+/=]+)(?:\s+(.*?))?\s*$/.exec(line);
  if (m === null) throw authError('FCP_ERR_AUTH_MALFORMED', 'not an SSH public key line');
  const key = parsePublicKeyBlob(Buffer.from(m[2]!, 'base64'));
  if (key.type !== m[1])
    throw authError('FCP_ERR_AUTH_MALFORMED', `key type ${m[1]} does not match its blob`);
  return { key, comment: m[3] ?? '' };
}

function importJwk(jwk: Record<string, string>): KeyObject {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (err) {
    // OpenSSL rejects, among others, EC points that are not on the curve.
    throw authError('FCP_ERR_AUTH_MALFORMED', `invalid public key: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function bitLength(magnitude: Buffer): number {
  if (magnitude.length === 0) return 0;
  return (magnitude.length - 1) * 8 + (32 - Math.clz32(magnitude[0]!));
}
