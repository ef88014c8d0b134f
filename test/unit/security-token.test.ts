import { randomBytes } from 'node:crypto';
import { chmod, chown, readFile, rename, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { MsgType } from '../../src/protocol/constants.js';
import { checkTokenProof, makeTokenProof } from '../../src/security/proofs.js';
import {
  createLocalToken,
  readLocalToken,
  removeLocalToken,
  tokenFileName,
} from '../../src/security/token.js';
import type { Handshake } from '../../src/security/transcript.js';
import { removeDir, tempDir } from '../helpers/ssh-keys.js';

// The same-host token (src/security/token.ts): only the serving user can read it, and it is used only with
// the daemon whose host key it names.

const FP = `SHA256:${'x'.repeat(43)}`;
let dir = '';
test.before(async () => {
  dir = await tempDir('token');
});
test.after(async () => removeDir(dir));

async function rejects(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  try {
    await promise;
  } catch (err) {
    assert.is((err as { code?: string }).code, code);
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

function handshake(): Handshake {
  return {
    clientNonce: randomBytes(32),
    serverNonce: randomBytes(32),
    channelBinding: Buffer.alloc(0),
    hostKeyFingerprint: randomBytes(32),
    clientKx: randomBytes(32),
    serverKx: randomBytes(32),
    user: 'alice',
  };
}

test('token: written 0600 as fcpd-token-PORT, read back with its host fingerprint, removed', async () => {
  const tok = await createLocalToken(dir, 7523, FP);
  assert.is(path.basename(tok.path), tokenFileName(7523));
  assert.is((await stat(tok.path)).mode & 0o777, 0o600);
  assert.is(tok.token.length, 32);
  const read = await readLocalToken(tok.path);
  assert.ok(read.token.equals(tok.token));
  assert.is(read.hostFingerprint, FP);
  assert.not.match(await readFile(tok.path, 'utf8'), tok.token.toString('base64'), 'stored as hex only');
  const again = await createLocalToken(dir, 7523, FP);
  assert.not.ok(again.token.equals(tok.token), 'a restart makes a new token');
  await removeLocalToken(again.path);
  await removeLocalToken(again.path);
  await rejects(readLocalToken(again.path), 'ENOENT', /ENOENT/);
});

test('token: a 0644 token is refused', async () => {
  const tok = await createLocalToken(dir, 1001, FP);
  await chmod(tok.path, 0o644);
  await rejects(readLocalToken(tok.path), 'FCP_ERR_AUTH_INSECURE_FILE', /mode 0644/);
});

test('token: a token owned by another user is refused', async () => {
  if (process.geteuid?.() !== 0) return; // needs root to chown
  const tok = await createLocalToken(dir, 1002, FP);
  await chown(tok.path, 65534, 65534);
  await rejects(readLocalToken(tok.path), 'FCP_ERR_AUTH_INSECURE_FILE', /owned by uid 65534/);
});

test('token: names a daemon may not make the client read', async () => {
  const secret = path.join(dir, 'id_ed25519');
  await writeFile(secret, 'not for daemons\n', { mode: 0o600 });
  await rejects(readLocalToken(secret), 'FCP_ERR_AUTH_INSECURE_FILE', /refusing to read/);
  await rejects(readLocalToken('fcpd-token-7523'), 'FCP_ERR_AUTH_INSECURE_FILE', /refusing/);
  await rejects(readLocalToken(path.join(dir, 'fcpd-token-../x')), 'FCP_ERR_AUTH_INSECURE_FILE', /refusing/);
  const link = path.join(dir, 'fcpd-token-1003');
  await symlink(secret, link);
  await rejects(readLocalToken(link), 'FCP_ERR_AUTH_INSECURE_FILE', /symbolic link/);
  const renamed = path.join(dir, 'fcpd-token-1004');
  await rename(secret, renamed);
  await rejects(readLocalToken(renamed), 'FCP_ERR_AUTH_MALFORMED', /not an fcpd token file/);
});

test('token: the HMAC proof binds the transcript and the request', async () => {
  const { token } = await createLocalToken(dir, 1005, FP);
  const h = handshake();
  const push = { type: MsgType.Push, payload: Buffer.from('dest') };
  const proof = makeTokenProof(token, h, push);
  assert.ok(checkTokenProof(token, h, push, proof));
  assert.not.ok(checkTokenProof(randomBytes(32), h, push, proof), 'another token');
  assert.not.ok(checkTokenProof(token, { ...h, serverNonce: randomBytes(32) }, push, proof), 'replayed');
  assert.not.ok(checkTokenProof(token, h, { ...push, payload: Buffer.from('other') }, proof), 'other dest');
  assert.not.ok(checkTokenProof(token, h, push, proof.subarray(0, 31)), 'short');
});

test.run();
