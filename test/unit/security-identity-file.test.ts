import { chmod, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/errors.js';
import { encryptedKeyMessage, loadIdentityFile } from '../../src/security/identity-file.js';
import { parsePublicKeyLine, verifySshSignature } from '../../src/security/ssh-keys.js';
import { generateKey, removeDir, type TestKeyType, tempDir } from '../helpers/ssh-keys.js';

// Private key files (src/security/identity-file.ts): what `fcp -i FILE` and IdentityFile sign with.

let dir = '';
test.before(async () => {
  dir = await tempDir('idfile');
});
test.after(async () => removeDir(dir));

async function rejects(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, FcpError);
    assert.is((err as FcpError).code, code);
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

for (const type of ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa'] as TestKeyType[]) {
  test(`identity-file: unencrypted OpenSSH ${type} key signs verifiably`, async () => {
    const k = await generateKey(dir, type, `id_${type}`);
    const signer = await loadIdentityFile(k.path);
    const expected = parsePublicKeyLine(k.publicLine).key;
    assert.ok(signer.publicKey.blob.equals(expected.blob), 'public key derived from the file');
    assert.is(signer.comment, `id_${type}@test`);
    const sig = await signer.sign(Buffer.from('msg'));
    assert.ok(verifySshSignature(expected, Buffer.from('msg'), sig));
  });
}

test('identity-file: legacy PEM keys (ssh-keygen -m PEM) sign too', async () => {
  for (const type of ['rsa', 'ecdsa-256'] as TestKeyType[]) {
    const k = await generateKey(dir, type, `pem_${type}`, { pem: true });
    const signer = await loadIdentityFile(k.path);
    assert.ok(signer.publicKey.blob.equals(parsePublicKeyLine(k.publicLine).key.blob), type);
    assert.ok(verifySshSignature(signer.publicKey, Buffer.from('m'), await signer.sign(Buffer.from('m'))));
  }
});

test('identity-file: an encrypted key asks for ssh-add (OpenSSH and PEM formats)', async () => {
  const k = await generateKey(dir, 'ed25519', 'enc_ed25519', { passphrase: 'secret words' });
  await rejects(loadIdentityFile(k.path), 'FCP_ERR_AUTH_KEY_ENCRYPTED', /ssh-add .*enc_ed25519/);
  const pem = await generateKey(dir, 'rsa', 'enc_pem', { passphrase: 'secret words', pem: true });
  await rejects(loadIdentityFile(pem.path), 'FCP_ERR_AUTH_KEY_ENCRYPTED', /ssh-add/);
  assert.match(encryptedKeyMessage('/k'), 'ssh-add /k');
});

test('identity-file: a key readable by others, a symlink, and a non-key are refused', async () => {
  const k = await generateKey(dir, 'ed25519', 'open_key');
  await chmod(k.path, 0o644);
  await rejects(loadIdentityFile(k.path), 'FCP_ERR_AUTH_INSECURE_FILE', /0644 .*too open/);
  await chmod(k.path, 0o600);
  const link = path.join(dir, 'link_key');
  await symlink(k.path, link);
  await rejects(loadIdentityFile(link), 'FCP_ERR_AUTH_INSECURE_FILE', /symbolic link/);
  const junk = path.join(dir, 'junk');
  await writeFile(junk, 'hello\n', { mode: 0o600 });
  await rejects(loadIdentityFile(junk), 'FCP_ERR_AUTH_MALFORMED', /not a private key/);
});

/** The SSH string at `at`: its body and where the next field starts. */
function sshStringAt(buf: Buffer, at: number): { body: Buffer; end: number } {
  const len = buf.readUInt32BE(at);
  return { body: buf.subarray(at + 4, at + 4 + len), end: at + 4 + len };
}

function sshString(body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

test('identity-file: an RSA key whose prime is 1 is refused naming the file, not a division by zero', async () => {
  const k = await generateKey(dir, 'rsa', 'rsa_p1');
  const armored = await readFile(k.path, 'utf8');
  const raw = Buffer.from(armored.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  // openssh-key-v1\0, cipher, kdf, kdf options, a key count (u32), the public key, the private section.
  let at = 'openssh-key-v1\0'.length;
  for (let i = 0; i < 3; i++) at = sshStringAt(raw, at).end;
  at = sshStringAt(raw, at + 4).end;
  const sectionAt = at;
  const section = sshStringAt(raw, sectionAt).body;
  // Two check integers, then key type, n, e, d, iqmp, p, q, comment, padding.
  const starts = [8];
  for (let i = 0; i < 8; i++) starts.push(sshStringAt(section, starts[i]!).end);
  const [pAt, qAt, afterComment] = [starts[5]!, starts[6]!, starts[8]!];
  const body = Buffer.concat([
    section.subarray(0, pAt),
    sshString(Buffer.from([1])),
    section.subarray(qAt, afterComment),
  ]);
  // Padding 1, 2, 3, ... to cipher 'none''s block of 8.
  const padded = Buffer.concat([
    body,
    Buffer.from([1, 2, 3, 4, 5, 6, 7].slice(0, (8 - (body.length % 8)) % 8)),
  ]);
  const forged = Buffer.concat([raw.subarray(0, sectionAt), sshString(padded)]);
  const file = path.join(dir, 'rsa_p1_forged');
  const lines = forged
    .toString('base64')
    .match(/.{1,70}/g)!
    .join('\n');
  await writeFile(
    file,
    `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines}\n-----END OPENSSH PRIVATE KEY-----\n`,
    {
      mode: 0o600,
    },
  );
  await rejects(loadIdentityFile(file), 'FCP_ERR_AUTH_MALFORMED', /rsa_p1_forged: bad RSA key/);
});

test.run();
