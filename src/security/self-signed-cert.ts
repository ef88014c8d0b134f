/**
 * A minimal self-signed X.509 v3 certificate (RFC 5280 §4.1) for an Ed25519 key, DER-encoded here and signed
 * by node:crypto. It exists only because OpenSSL's TLS server needs a certificate to present: the client never
 * trusts it as a certificate; it pins the SHA-256 of the SubjectPublicKeyInfo and TLS proves the daemon holds
 * the matching private key (spec/SECURITY.md §4.1). A defect here makes OpenSSL refuse the certificate; it
 * cannot make the client accept another key.
 */
import { createPublicKey, type KeyObject, randomBytes, sign } from 'node:crypto';

/** id-Ed25519, RFC 8410 §3. */
const OID_ED25519 = Buffer.from('06032b6570', 'hex');
/** id-at-commonName. */
const OID_COMMON_NAME = Buffer.from('0603550403', 'hex');
const DAY_MS = 86_400_000;

/**
 * Certificate for `privateKey` (Ed25519), subject = issuer = CN=`commonName`, valid from a day ago to
 * 9999-12-31 (RFC 5280's "no well-defined expiration"). Returns PEM.
 */
export function createSelfSignedCert(
  privateKey: KeyObject,
  commonName: string,
  nowMs: number = Date.now(),
): string {
  if (privateKey.asymmetricKeyType !== 'ed25519')
    throw new Error('self-signed certificates need an Ed25519 key');
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const algorithm = seq(OID_ED25519);
  const name = seq(set(seq(OID_COMMON_NAME, tlv(0x0c, Buffer.from(commonName, 'utf8')))));
  const validity = seq(
    utcTime(new Date(nowMs - DAY_MS)),
    tlv(0x18, Buffer.from('99991231235959Z', 'latin1')),
  );
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.of(2))), // [0] EXPLICIT Version v3
    tlv(0x02, serialNumber()),
    algorithm,
    name,
    validity,
    name,
    spki,
  );
  const signature = sign(null, tbs, privateKey);
  const der = seq(tbs, algorithm, tlv(0x03, Buffer.concat([Buffer.of(0), signature])));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}

/** 16 random bytes, made positive and non-zero-led as DER INTEGER requires (RFC 5280 §4.1.2.2: ≤ 20 bytes). */
function serialNumber(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  return serial;
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function utcTime(date: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, '0');
  const year = date.getUTCFullYear();
  const rest = `${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}Z`;
  if (year >= 2050) return tlv(0x18, Buffer.from(`${year}${rest}`, 'latin1'));
  return tlv(0x17, Buffer.from(`${p(year % 100)}${rest}`, 'latin1'));
}

function seq(...items: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(items));
}

function set(...items: Buffer[]): Buffer {
  return tlv(0x31, Buffer.concat(items));
}

/** DER tag-length-value with the definite length form (short below 128, else 0x80|n followed by n bytes). */
function tlv(tag: number, content: Buffer): Buffer {
  const len = content.length;
  let header: Buffer;
  if (len < 0x80) header = Buffer.of(tag, len);
  else if (len < 0x100) header = Buffer.of(tag, 0x81, len);
  else if (len < 0x10000) header = Buffer.of(tag, 0x82, len >> 8, len & 0xff);
  else throw new Error('DER value too long');
  return Buffer.concat([header, content]);
}
