import { X509Certificate } from 'node:crypto';
import { chmod, chown, readdir, rm, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import {
  HOST_KEY_FILE,
  hostSign,
  loadOrCreateHostKey,
  spkiFingerprint,
  verifyHostSignature,
} from '../../src/security/host-key.js';
import { removeDir, tempDir } from '../helpers/ssh-keys.js';
import { execFileSync } from '../helpers/sync.js';

// The daemon's host key and certificate (src/security/host-key.ts, self-signed-cert.ts).

let dir = '';
test.before(async () => {
  dir = await tempDir('hostkey');
});
test.after(async () => removeDir(dir));

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  try {
    await promise;
  } catch (err) {
    assert.is((err as { code?: string }).code, code);
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('host-key: created 0600 in a 0700 state dir on first load, then stable', async () => {
  const state = path.join(dir, 'state', 'fcpd');
  const first = await loadOrCreateHostKey(state);
  assert.ok(first.created);
  assert.is((await stat(first.path)).mode & 0o777, 0o600);
  assert.is((await stat(state)).mode & 0o777, 0o700);
  assert.match(first.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  const second = await loadOrCreateHostKey(state);
  assert.not.ok(second.created);
  assert.is(second.fingerprint, first.fingerprint);
  assert.ok(second.spki.equals(first.spki));
  assert.equal((await readdir(state)).sort(), [HOST_KEY_FILE], 'no temporary files left');
});

test('host-key: concurrent first starts agree on one key', async () => {
  const state = path.join(dir, 'race');
  const keys = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateHostKey(state)));
  assert.is(new Set(keys.map((k) => k.fingerprint)).size, 1);
  assert.is(keys.filter((k) => k.created).length, 1);
  assert.equal(await readdir(state), [HOST_KEY_FILE]);
});

test('host-key: the certificate parses, is self-signed by the key, and its SPKI is the fingerprinted one', async () => {
  const key = await loadOrCreateHostKey(path.join(dir, 'cert'));
  const cert = new X509Certificate(key.certPem);
  assert.ok(cert.verify(cert.publicKey), 'self-signature verifies');
  assert.ok(cert.checkPrivateKey(key.privateKey));
  assert.is(spkiFingerprint(cert.publicKey.export({ type: 'spki', format: 'der' })), key.fingerprint);
  assert.is(cert.subject, 'CN=fcpd');
  assert.ok(new Date(cert.validTo).getUTCFullYear() === 9999);
  const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: key.certPem, encoding: 'utf8' });
  assert.match(text, 'Version: 3');
  assert.match(text, 'ED25519');
});

test('host-key: host signatures verify only under the same key and data', async () => {
  const a = await loadOrCreateHostKey(path.join(dir, 'sig-a'));
  const b = await loadOrCreateHostKey(path.join(dir, 'sig-b'));
  const sig = hostSign(a, Buffer.from('transcript'));
  assert.ok(verifyHostSignature(a.spki, Buffer.from('transcript'), sig));
  assert.not.ok(verifyHostSignature(a.spki, Buffer.from('transcripT'), sig));
  assert.not.ok(verifyHostSignature(b.spki, Buffer.from('transcript'), sig));
  assert.not.ok(verifyHostSignature(Buffer.from('junk'), Buffer.from('transcript'), sig));
});

test('host-key: a key file readable by others, owned by another user, or a symlink is refused', async () => {
  const state = path.join(dir, 'unsafe');
  const key = await loadOrCreateHostKey(state);
  await chmod(key.path, 0o640);
  await rejectsWith(loadOrCreateHostKey(state), 'FCP_ERR_AUTH_INSECURE_FILE', /mode 0640.*chmod 600/);
  await chmod(key.path, 0o600);
  if (process.geteuid?.() === 0) {
    await chown(key.path, 65534, 65534);
    await rejectsWith(loadOrCreateHostKey(state), 'FCP_ERR_AUTH_INSECURE_FILE', /owned by uid 65534/);
    await chown(key.path, 0, 0);
  }
  const linked = path.join(dir, 'linked');
  await loadOrCreateHostKey(linked);
  await rm(path.join(linked, HOST_KEY_FILE));
  await symlink(key.path, path.join(linked, HOST_KEY_FILE));
  await rejectsWith(loadOrCreateHostKey(linked), 'FCP_ERR_AUTH_INSECURE_FILE', /symbolic link/);
});

test.run();
