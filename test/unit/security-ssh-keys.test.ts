import { generateKeyPairSync } from 'node:crypto';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { loadIdentityFile } from '../../src/security/identity-file.js';
import {
  MIN_RSA_BITS,
  parsePublicKeyBlob,
  parsePublicKeyLine,
  publicKeyBlobOf,
  signatureBlob,
  verifySshSignature,
} from '../../src/security/ssh-keys.js';
import { SshWriter } from '../../src/security/ssh-wire.js';
import { sshsigSignedData } from '../../src/security/transcript.js';
import {
  generateKey,
  keygenFingerprint,
  keygenSign,
  removeDir,
  type TestKey,
  type TestKeyType,
  tempDir,
} from '../helpers/ssh-keys.js';

// SSH public keys and signatures (src/security/ssh-keys.ts), against keys and signatures made by OpenSSH.

const TYPES: TestKeyType[] = ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa'];
let dir = '';
const keys = new Map<TestKeyType, TestKey>();

test.before(async () => {
  dir = await tempDir('sshkeys');
  for (const type of TYPES) keys.set(type, await generateKey(dir, type, `id_${type}`));
});
test.after(async () => removeDir(dir));

test('ssh-keys: public key lines parse, and fingerprints equal ssh-keygen -l', () => {
  for (const type of TYPES) {
    const k = keys.get(type)!;
    const { key, comment } = parsePublicKeyLine(k.publicLine);
    assert.is(comment, `id_${type}@test`);
    assert.is(key.fingerprint, keygenFingerprint(`${k.path}.pub`), type);
    assert.ok(publicKeyBlobOf(key.key).equals(key.blob), `${type} blob round trip`);
  }
});

test('ssh-keys: OpenSSH signatures (ssh-keygen -Y sign) verify over our SSHSIG bytes', async () => {
  const message = Buffer.from('the transcript stands here');
  for (const type of TYPES) {
    const k = keys.get(type)!;
    const sig = await keygenSign(dir, k.path, 'fcp-test', message);
    const pub = parsePublicKeyBlob(sig.publicKey);
    assert.is(sig.hashAlgorithm, 'sha512');
    assert.ok(verifySshSignature(pub, sshsigSignedData(message, 'fcp-test'), sig.signature), `${type} valid`);
    assert.not.ok(
      verifySshSignature(
        pub,
        sshsigSignedData(Buffer.from('the transcript stands hers'), 'fcp-test'),
        sig.signature,
      ),
      `${type} tampered message`,
    );
    assert.not.ok(
      verifySshSignature(pub, sshsigSignedData(message, 'other'), sig.signature),
      `${type} namespace`,
    );
  }
});

test('ssh-keys: a signature by another key is refused', async () => {
  const message = Buffer.from('hello');
  const signer = await loadIdentityFile(keys.get('ed25519')!.path);
  const other = await generateKey(dir, 'ed25519', 'id_other');
  const otherPub = parsePublicKeyLine(other.publicLine).key;
  const sig = await signer.sign(message);
  assert.ok(verifySshSignature(signer.publicKey, message, sig));
  assert.not.ok(verifySshSignature(otherPub, message, sig));
});

test('ssh-keys: RSA signs with rsa-sha2-256 and -512; ssh-rsa (SHA-1) and algorithm swaps are refused', async () => {
  const signer = await loadIdentityFile(keys.get('rsa')!.path);
  const data = Buffer.from('data');
  const s256 = await signer.sign(data, 'rsa-sha2-256');
  const s512 = await signer.sign(data, 'rsa-sha2-512');
  assert.ok(verifySshSignature(signer.publicKey, data, s256));
  assert.ok(verifySshSignature(signer.publicKey, data, s512));
  const inner = (blob: Buffer) => blob.subarray(4 + blob.readUInt32BE(0) + 4);
  assert.not.ok(
    verifySshSignature(signer.publicKey, data, signatureBlob('rsa-sha2-512', inner(s256))),
    'relabelled',
  );
  assert.not.ok(verifySshSignature(signer.publicKey, data, signatureBlob('ssh-rsa', inner(s256))), 'ssh-rsa');
  // An ed25519 algorithm name on an RSA key.
  assert.not.ok(verifySshSignature(signer.publicKey, data, signatureBlob('ssh-ed25519', inner(s256))));
});

test('ssh-keys: malformed signature blobs are invalid, never thrown', async () => {
  const signer = await loadIdentityFile(keys.get('ecdsa-256')!.path);
  const data = Buffer.from('x');
  const good = await signer.sign(data);
  assert.ok(verifySshSignature(signer.publicKey, data, good));
  for (let cut = 0; cut < good.length; cut++) {
    assert.not.ok(verifySshSignature(signer.publicKey, data, good.subarray(0, cut)), `cut at ${cut}`);
  }
  assert.not.ok(
    verifySshSignature(signer.publicKey, data, Buffer.concat([good, Buffer.of(0)])),
    'trailing byte',
  );
  // r and s larger than the curve's field.
  const huge = new SshWriter().mpint(Buffer.alloc(40, 0x7f)).mpint(Buffer.alloc(32, 1)).toBuffer();
  assert.not.ok(verifySshSignature(signer.publicKey, data, signatureBlob('ecdsa-sha2-nistp256', huge)));
});

test('ssh-keys: weak RSA, unknown types, off-curve points and trailing bytes are malformed keys', () => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  assert.throws(() => parsePublicKeyBlob(publicKeyBlobOf(publicKey)), new RegExp(`allowed ${MIN_RSA_BITS}`));
  assert.throws(
    () => parsePublicKeyBlob(new SshWriter().string('ssh-dss').toBuffer()),
    /unsupported key type/,
  );
  const ec = parsePublicKeyLine(keys.get('ecdsa-256')!.publicLine).key.blob;
  const bent = Buffer.from(ec);
  bent[bent.length - 1]! ^= 1; // y no longer matches x
  assert.throws(() => parsePublicKeyBlob(bent), /invalid public key/);
  assert.throws(() => parsePublicKeyBlob(Buffer.concat([ec, Buffer.of(0)])), /trailing/);
  const ed = parsePublicKeyLine(keys.get('ed25519')!.publicLine).key.blob;
  assert.throws(() => parsePublicKeyLine(`ssh-rsa ${ed.toString('base64')}`), /does not match/);
});

test.run();
