import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { AuthMethodCode, type AuthProofMsg, MsgType, type PushMsg } from '../../src/protocol/index.js';
import { ClientAuthExchange, type OneTimeCredential } from '../../src/security/client-auth.js';
import {
  type DaemonAuthConfig,
  DaemonAuthExchange,
  ONE_TIME_ONLY,
  ONE_TIME_SPENT,
  OneTimeLogin,
  requestBinding,
} from '../../src/security/daemon-auth.js';
import { generateHostKey, type HostKey } from '../../src/security/host-key.js';
import { loadIdentityFile } from '../../src/security/identity-file.js';
import { makePublicKeyProof } from '../../src/security/proofs.js';
import type { Handshake } from '../../src/security/transcript.js';
import { generateKey, removeDir, tempDir } from '../helpers/ssh-keys.js';

// The one-time secret of fcpd --serve-once (spec/SECURITY.md §14), both ends of the real exchanges in
// memory: one login, then none; SSH keys refused; the client pins the announced key and never touches
// known_hosts.

let dir = '';
test.before(async () => {
  dir = await tempDir('one-time');
});
test.after(async () => removeDir(dir));

const REQUEST: PushMsg = { type: MsgType.Push, flags: 0, connections: 4, dest: 'dst' };

function daemonConfig(hostKey: HostKey, login: OneTimeLogin, logs: string[]): DaemonAuthConfig {
  return {
    hostKey,
    account: 'someone',
    token: undefined,
    authorizedKeys: undefined,
    publicKeyRefusal: ONE_TIME_ONLY,
    oneTime: login,
    log: (line) => logs.push(line),
  };
}

function client(oneTime: OneTimeCredential): ClientAuthExchange {
  return new ClientAuthExchange(
    {
      host: '127.0.0.1',
      port: 4000,
      knownHostsFile: path.join(dir, 'known_hosts'),
      acceptHostKey: undefined,
      user: '',
      identityFile: undefined,
      configIdentityFiles: [],
      homeDir: dir,
      agentSocket: undefined,
      onNotice: () => {},
      onHostKeyRecorded: () => assert.unreachable('recorded a host key'),
      oneTime,
    },
    { tlsHostKey: undefined, binding: new Uint8Array(0) },
  );
}

/** One control login: the client's proofs against a daemon exchange; what verify() said of each. */
async function login(hostKey: HostKey, daemon: OneTimeLogin, cred: OneTimeCredential, logs: string[]) {
  const c = client(cred);
  const d = new DaemonAuthExchange(daemonConfig(hostKey, daemon, logs), c.start, new Uint8Array(0), true);
  await c.acceptChallenge(d.challenge);
  const proofs: AuthProofMsg[] = [];
  for await (const p of c.proofs(requestBinding(REQUEST))) proofs.push(p);
  assert.is(proofs.length, 1, 'only the one-time proof is offered');
  return { client: c, daemon: d, result: await d.verify(REQUEST, proofs[0]!, 'peer', '127.0.0.1') };
}

test('the secret logs in once; a second login with it is refused at once, saying why', async () => {
  const hostKey = generateHostKey();
  assert.is(hostKey.path, '');
  const secret = randomBytes(16);
  const daemon = new OneTimeLogin(secret);
  const logs: string[] = [];
  const cred = { hostFingerprint: hostKey.fingerprint, secret };
  const first = await login(hostKey, daemon, cred, logs);
  assert.is(first.result?.who, 'one-time secret');
  assert.ok(first.result!.sessionSecret.equals(first.client.session().sessionSecret));
  assert.ok(daemon.spent);
  try {
    await login(hostKey, daemon, cred, logs);
    assert.unreachable('second login accepted');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'FCP_ERR_AUTH_DENIED');
    assert.is((err as Error).message, ONE_TIME_SPENT);
  }
  assert.not.ok(existsSync(path.join(dir, 'known_hosts')), 'known_hosts neither read into nor written');
});

test('a wrong secret is refused (AUTH_RETRY), and does not spend the right one', async () => {
  const hostKey = generateHostKey();
  const secret = randomBytes(16);
  const daemon = new OneTimeLogin(secret);
  const logs: string[] = [];
  const wrong = await login(
    hostKey,
    daemon,
    { hostFingerprint: hostKey.fingerprint, secret: randomBytes(16) },
    logs,
  );
  assert.is(wrong.result, undefined);
  assert.match(logs.join('\n'), /wrong one-time secret/);
  assert.not.ok(daemon.spent);
  const right = await login(hostKey, daemon, { hostFingerprint: hostKey.fingerprint, secret }, logs);
  assert.ok(right.result !== undefined);
});

test('an SSH key is refused at once by a serve-once daemon', async () => {
  const hostKey = generateHostKey();
  const daemon = new OneTimeLogin(randomBytes(16));
  const key = await loadIdentityFile((await generateKey(dir, 'ed25519', 'mallory')).path);
  const c = client({ hostFingerprint: hostKey.fingerprint, secret: randomBytes(16) });
  const d = new DaemonAuthExchange(daemonConfig(hostKey, daemon, []), c.start, new Uint8Array(0), true);
  const h: Handshake = {
    clientNonce: c.start.clientNonce,
    serverNonce: d.challenge.serverNonce,
    channelBinding: new Uint8Array(0),
    hostKeyFingerprint: hostKey.fingerprintBytes,
    clientKx: c.start.clientKx,
    serverKx: d.challenge.serverKx,
    user: '',
  };
  const proof: AuthProofMsg = {
    type: MsgType.AuthProof,
    method: AuthMethodCode.PublicKey,
    keyBlob: key.publicKey.blob,
    proof: await makePublicKeyProof(key, h, requestBinding(REQUEST)),
  };
  try {
    await d.verify(REQUEST, proof, 'peer', '127.0.0.1');
    assert.unreachable('SSH key accepted');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'FCP_ERR_AUTH_DENIED');
    assert.is((err as Error).message, ONE_TIME_ONLY);
  }
  assert.not.ok(daemon.spent);
});

test('the client refuses a daemon whose key is not the announced one, naming both', async () => {
  const hostKey = generateHostKey();
  const other = generateHostKey();
  const daemon = new OneTimeLogin(randomBytes(16));
  try {
    await login(hostKey, daemon, { hostFingerprint: other.fingerprint, secret: randomBytes(16) }, []);
    assert.unreachable('accepted another key');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'FCP_ERR_AUTH_HOST_PROOF');
    assert.ok((err as Error).message.includes(hostKey.fingerprint));
    assert.ok((err as Error).message.includes(other.fingerprint));
  }
  assert.not.ok(existsSync(path.join(dir, 'known_hosts')));
});

test.run();
