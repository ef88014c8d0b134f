import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { MsgType } from '../../src/protocol/constants.js';
import { checkAuthorizedKey, parseAuthorizedKeys } from '../../src/security/authorized-keys.js';
import { type HostKey, loadOrCreateHostKey } from '../../src/security/host-key.js';
import { loadIdentityFile } from '../../src/security/identity-file.js';
import {
  checkHostProof,
  checkPublicKeyProof,
  makeHostProof,
  makePublicKeyProof,
} from '../../src/security/proofs.js';
import {
  deriveSessionSecret,
  generateKx,
  type KxKeyPair,
  x25519Shared,
} from '../../src/security/session-secret.js';
import { parsePublicKeyBlob, type SshSigner } from '../../src/security/ssh-keys.js';
import type { Handshake, RequestBinding } from '../../src/security/transcript.js';
import { generateKey, removeDir, tempDir } from '../helpers/ssh-keys.js';

// The session handshake of spec/SECURITY.md §6 played by both ends in memory, with the attacks it must stop:
// a replayed proof (new daemon nonce), a relayed one (another daemon, another channel), a swapped request.

let dir = '';
let daemonA: HostKey;
let daemonB: HostKey;
let alice: SshSigner;
let aliceKeys: ReturnType<typeof parseAuthorizedKeys>;

test.before(async () => {
  dir = await tempDir('handshake');
  daemonA = await loadOrCreateHostKey(path.join(dir, 'a'));
  daemonB = await loadOrCreateHostKey(path.join(dir, 'b'));
  const k = await generateKey(dir, 'ed25519', 'alice');
  alice = await loadIdentityFile(k.path);
  aliceKeys = parseAuthorizedKeys(`${k.publicLine}\n`);
});
test.after(async () => removeDir(dir));

interface DaemonSide {
  host: HostKey;
  kx: KxKeyPair;
  nonce: Buffer;
  binding: Buffer;
}

/** AUTH_START arrives: the daemon picks its nonce and key share and answers with its host proof. */
function challenge(host: HostKey, clientNonce: Buffer, clientKx: Buffer, user: string, binding: Buffer) {
  const d: DaemonSide = { host, kx: generateKx(), nonce: randomBytes(32), binding };
  const h: Handshake = {
    clientNonce,
    serverNonce: d.nonce,
    channelBinding: binding,
    hostKeyFingerprint: host.fingerprintBytes,
    clientKx,
    serverKx: d.kx.publicRaw,
    user,
  };
  return { d, h, hostProof: makeHostProof(host, h) };
}

/** The daemon's checks of AUTH_PROOF for its own transcript. */
function daemonAccepts(h: Handshake, request: RequestBinding, keyBlob: Buffer, proof: Buffer): boolean {
  const decision = checkAuthorizedKey(aliceKeys, keyBlob, { remoteAddress: '127.0.0.1', nowMs: Date.now() });
  return decision.ok && checkPublicKeyProof(parsePublicKeyBlob(keyBlob), h, request, proof);
}

const push: RequestBinding = { type: MsgType.Push, payload: Buffer.from('\0\0\0\0\0\x08\0\x04dest') };

test('handshake: an honest run authenticates both ends and agrees on the session secret', async () => {
  const clientKx = generateKx();
  const clientNonce = randomBytes(32);
  const binding = randomBytes(32);
  const { d, h, hostProof } = challenge(daemonA, clientNonce, clientKx.publicRaw, 'alice', binding);
  assert.ok(checkHostProof(daemonA.spki, h, hostProof), 'client verifies the daemon');
  const proof = await makePublicKeyProof(alice, h, push);
  assert.ok(daemonAccepts(h, push, alice.publicKey.blob, proof), 'daemon verifies the client');
  const cs = deriveSessionSecret(x25519Shared(clientKx.privateKey, d.kx.publicRaw), h);
  const ds = deriveSessionSecret(x25519Shared(d.kx.privateKey, clientKx.publicRaw), h);
  assert.ok(cs.equals(ds));
});

test('handshake: a captured proof replayed into a new session is refused', async () => {
  const clientKx = generateKx();
  const clientNonce = randomBytes(32);
  const first = challenge(daemonA, clientNonce, clientKx.publicRaw, 'alice', Buffer.alloc(0));
  const proof = await makePublicKeyProof(alice, first.h, push);
  // The attacker replays AUTH_START byte for byte; the daemon's fresh nonce and key share differ.
  const second = challenge(daemonA, clientNonce, clientKx.publicRaw, 'alice', Buffer.alloc(0));
  assert.not.ok(daemonAccepts(second.h, push, alice.publicKey.blob, proof));
});

test('handshake: a proof relayed by a hostile daemon to another one is refused', async () => {
  const clientKx = generateKx();
  const clientNonce = randomBytes(32);
  // The client talks to B (hostile), which opens its own connection to A and forwards A's nonce and share.
  const atA = challenge(daemonA, clientNonce, clientKx.publicRaw, 'alice', randomBytes(32));
  const seenByClient: Handshake = {
    ...atA.h,
    channelBinding: randomBytes(32), // the client's TLS channel is with B, not A
    hostKeyFingerprint: daemonB.fingerprintBytes,
  };
  // B cannot produce A's host proof for the client's view, and A's does not verify under B's key.
  assert.not.ok(checkHostProof(daemonB.spki, seenByClient, atA.hostProof));
  const proof = await makePublicKeyProof(alice, seenByClient, push);
  assert.not.ok(
    daemonAccepts(atA.h, push, alice.publicKey.blob, proof),
    'A sees another fingerprint and channel',
  );
  // Even with B pretending to be A by fingerprint, the TLS exporter differs between the two channels.
  const sameFp = { ...seenByClient, hostKeyFingerprint: daemonA.fingerprintBytes };
  assert.not.ok(
    daemonAccepts(atA.h, push, alice.publicKey.blob, await makePublicKeyProof(alice, sameFp, push)),
  );
});

test('handshake: a proof made for one request, user or key does not authorize another', async () => {
  const clientKx = generateKx();
  const { h } = challenge(daemonA, randomBytes(32), clientKx.publicRaw, 'alice', randomBytes(32));
  const proof = await makePublicKeyProof(alice, h, push);
  const pull: RequestBinding = { type: MsgType.Pull, payload: push.payload };
  assert.not.ok(daemonAccepts(h, pull, alice.publicKey.blob, proof), 'PUSH swapped for PULL');
  assert.not.ok(
    daemonAccepts(h, { ...push, payload: Buffer.from('elsewhere') }, alice.publicKey.blob, proof),
  );
  assert.not.ok(daemonAccepts({ ...h, user: 'root' }, push, alice.publicKey.blob, proof), 'other user');
  const mallory = await loadIdentityFile((await generateKey(dir, 'ed25519', 'mallory')).path);
  const malloryProof = await makePublicKeyProof(mallory, h, push);
  assert.not.ok(daemonAccepts(h, push, mallory.publicKey.blob, malloryProof), 'unknown key');
  assert.not.ok(
    daemonAccepts(h, push, alice.publicKey.blob, malloryProof),
    "alice's blob, mallory's signature",
  );
});

test.run();
