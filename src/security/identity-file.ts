/**
 * Signing with an unencrypted private key file (IdentityFile, `fcp -i`), the way ssh(1) reads it: the OpenSSH
 * format (`openssh-key-v1`, PROTOCOL.key) or a PEM PKCS#1/SEC1/PKCS#8 key. Encrypted keys are never decrypted
 * here: the user loads them into ssh-agent (spec/SECURITY.md §5.2).
 */
import { createPrivateKey, type KeyObject, sign } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { authError } from './auth-errors.js';
import {
  EC_CURVES,
  p1363ToSshEcdsa,
  parsePublicKeyBlob,
  publicKeyBlobOf,
  type RsaSigAlgorithm,
  type SshPublicKey,
  type SshSigner,
  signatureBlob,
} from './ssh-keys.js';
import { b64u, SshReader } from './ssh-wire.js';

const OPENSSH_BEGIN = '-----BEGIN OPENSSH PRIVATE KEY-----';
const OPENSSH_END = '-----END OPENSSH PRIVATE KEY-----';
const AUTH_MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');
/** Private key files are a few KiB; refuse to read anything much larger. */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

/** The message for an encrypted key that no agent holds. */
export function encryptedKeyMessage(path: string): string {
  return `${path} is encrypted (passphrase-protected); fcp does not ask for passphrases: load it into ssh-agent with \`ssh-add ${path}\` and try again`;
}

/**
 * Reads a private key file and returns a signer. Like ssh(1), refuses a file others can read
 * (FCP_ERR_AUTH_INSECURE_FILE); an encrypted key is FCP_ERR_AUTH_KEY_ENCRYPTED with the ssh-add hint.
 */
export async function loadIdentityFile(path: string): Promise<SshSigner> {
  const text = await readPrivateKeyFile(path);
  const { key, comment } = parsePrivateKey(text, path);
  return signerFor(key, comment, path);
}

/** Parses the text of a private key file (see loadIdentityFile); `path` is only used in messages. */
export function parsePrivateKey(text: string, path: string): { key: KeyObject; comment: string } {
  if (text.includes(OPENSSH_BEGIN)) return parseOpenSshKey(text, path);
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/.test(text)) {
    throw authError('FCP_ERR_AUTH_KEY_ENCRYPTED', encryptedKeyMessage(path), { path });
  }
  if (/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(text)) {
    try {
      return { key: createPrivateKey({ key: text, format: 'pem' }), comment: '' };
    } catch (err) {
      throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: unreadable private key`, { path, cause: err });
    }
  }
  throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: not a private key file`, { path });
}

/** A signer over a node private KeyObject; the SSH public key is derived from it. */
export function signerFor(key: KeyObject, comment: string, source: string): SshSigner {
  const publicKey: SshPublicKey = parsePublicKeyBlob(publicKeyBlobOf(key));
  return {
    publicKey,
    comment,
    source,
    sign: async (data: Uint8Array, rsaAlgorithm: RsaSigAlgorithm = 'rsa-sha2-512') =>
      signWith(key, publicKey, data, rsaAlgorithm),
  };
}

function signWith(
  key: KeyObject,
  pub: SshPublicKey,
  data: Uint8Array,
  rsaAlgorithm: RsaSigAlgorithm,
): Buffer {
  if (pub.type === 'ssh-ed25519') return signatureBlob('ssh-ed25519', sign(null, data, key));
  if (pub.type === 'ssh-rsa') {
    const hash = rsaAlgorithm === 'rsa-sha2-256' ? 'sha256' : 'sha512';
    return signatureBlob(rsaAlgorithm, sign(hash, data, key));
  }
  const curve = EC_CURVES[pub.type]!;
  const p1363 = sign(curve.hash, data, { key, dsaEncoding: 'ieee-p1363' });
  return signatureBlob(pub.type, p1363ToSshEcdsa(p1363));
}

async function readPrivateKeyFile(path: string): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP')
      throw authError('FCP_ERR_AUTH_INSECURE_FILE', `${path} is a symbolic link`, { path });
    throw err;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw authError('FCP_ERR_AUTH_MALFORMED', `${path} is not a regular file`, { path });
    // ssh(1): "UNPROTECTED PRIVATE KEY FILE!" -- a key others can read is not a secret any more.
    if (st.uid === process.geteuid?.() && (st.mode & 0o077) !== 0) {
      throw authError(
        'FCP_ERR_AUTH_INSECURE_FILE',
        `permissions ${(st.mode & 0o777).toString(8).padStart(4, '0')} for ${path} are too open: the key must not be readable by others (chmod 600)`,
        { path },
      );
    }
    if (st.size > MAX_KEY_FILE_BYTES)
      throw authError('FCP_ERR_AUTH_MALFORMED', `${path} is too large`, { path });
    const buf = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_KEY_FILE_BYTES)
      throw authError('FCP_ERR_AUTH_MALFORMED', `${path} is too large`, { path });
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** PROTOCOL.key: the `openssh-key-v1` container with one key, unencrypted. */
function parseOpenSshKey(text: string, path: string): { key: KeyObject; comment: string } {
  const start = text.indexOf(OPENSSH_BEGIN) + OPENSSH_BEGIN.length;
  const end = text.indexOf(OPENSSH_END, start);
  if (end < 0) throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: truncated OpenSSH key`, { path });
  const raw = Buffer.from(text.slice(start, end).replace(/\s+/g, ''), 'base64');
  if (!raw.subarray(0, AUTH_MAGIC.length).equals(AUTH_MAGIC)) {
    throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: not an openssh-key-v1 file`, { path });
  }
  const r = new SshReader(raw.subarray(AUTH_MAGIC.length), `OpenSSH key ${path}`);
  const cipher = r.name();
  const kdf = r.name();
  r.string(); // kdf options
  if (cipher !== 'none' || kdf !== 'none') {
    throw authError('FCP_ERR_AUTH_KEY_ENCRYPTED', encryptedKeyMessage(path), { path });
  }
  if (r.u32() !== 1) throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: holds more than one key`, { path });
  const publicBlob = r.string();
  const priv = new SshReader(r.string(), `OpenSSH private section ${path}`);
  r.end();
  // Two equal random words: with a cipher they detect a wrong passphrase; unencrypted they must still match.
  const check1 = priv.u32();
  const check2 = priv.u32();
  if (check1 !== check2) throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: check bytes differ`, { path });
  const type = priv.name();
  const jwk = privateJwk(type, priv, path);
  const comment = priv.string().toString('utf8');
  // Padding 1, 2, 3, ... up to the cipher block size.
  for (let i = 1; priv.remaining > 0; i++) {
    if (priv.u8() !== i) throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: bad padding`, { path });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: jwk, format: 'jwk' });
  } catch (err) {
    throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: invalid key: ${(err as Error).message}`, {
      path,
      cause: err,
    });
  }
  if (!publicKeyBlobOf(key).equals(publicBlob)) {
    throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: public and private halves differ`, { path });
  }
  return { key, comment };
}

function privateJwk(type: string, r: SshReader, path: string): Record<string, string> {
  if (type === 'ssh-ed25519') {
    const pk = r.string();
    const sk = r.string(); // seed (32) || public key (32)
    if (pk.length !== 32 || sk.length !== 64)
      throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: bad ed25519 key`);
    return { kty: 'OKP', crv: 'Ed25519', x: b64u(pk), d: b64u(sk.subarray(0, 32)) };
  }
  if (type === 'ssh-rsa') {
    const n = r.mpintPositive();
    const e = r.mpintPositive();
    const d = r.mpintPositive();
    const iqmp = r.mpintPositive();
    const p = r.mpintPositive();
    const q = r.mpintPositive();
    // JWK wants the CRT exponents the file leaves out: d mod (p-1), d mod (q-1). Plain integer arithmetic.
    const [pn, qn] = [toBig(p), toBig(q)];
    // A prime of 1 (a damaged or forged file) would divide by zero below: say which file it is.
    if (pn < 2n || qn < 2n)
      throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: bad RSA key (a prime < 2)`, { path });
    const dn = toBig(d);
    const dp = dn % (pn - 1n);
    const dq = dn % (qn - 1n);
    return {
      kty: 'RSA',
      n: b64u(n),
      e: b64u(e),
      d: b64u(d),
      p: b64u(p),
      q: b64u(q),
      dp: b64u(fromBig(dp)),
      dq: b64u(fromBig(dq)),
      qi: b64u(iqmp),
    };
  }
  const curve = EC_CURVES[type];
  if (curve === undefined)
    throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: unsupported key type ${type}`, { path });
  if (r.name() !== curve.ident)
    throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: curve mismatch`, { path });
  const q = r.string();
  const d = r.mpintPositive();
  if (q.length !== 1 + 2 * curve.size || q[0] !== 0x04 || d.length > curve.size) {
    throw authError('FCP_ERR_AUTH_MALFORMED', `${path}: bad ECDSA key`, { path });
  }
  const dPadded = Buffer.alloc(curve.size);
  d.copy(dPadded, curve.size - d.length);
  return {
    kty: 'EC',
    crv: curve.crv,
    x: b64u(q.subarray(1, 1 + curve.size)),
    y: b64u(q.subarray(1 + curve.size)),
    d: b64u(dPadded),
  };
}

function toBig(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

function fromBig(v: bigint): Buffer {
  let hex = v.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  return Buffer.from(hex, 'hex');
}
