import { randomBytes } from 'node:crypto';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import {
  attachAnswerProof,
  attachProof,
  deriveSessionSecret,
  generateKx,
  verifyAttachAnswer,
  verifyAttachProof,
  x25519Shared,
} from '../../src/security/session-secret.js';
import type { Handshake } from '../../src/security/transcript.js';

// The session secret and ATTACH proofs (src/security/session-secret.ts).

function handshakeWith(clientKx: Buffer, serverKx: Buffer, channelBinding: Buffer): Handshake {
  return {
    clientNonce: Buffer.alloc(32, 1),
    serverNonce: Buffer.alloc(32, 2),
    channelBinding,
    hostKeyFingerprint: Buffer.alloc(32, 3),
    clientKx,
    serverKx,
    user: 'alice',
  };
}

test('session-secret: both ends derive the same secret; nothing on the wire reveals it', () => {
  const c = generateKx();
  const d = generateKx();
  assert.is(c.publicRaw.length, 32);
  const h = handshakeWith(c.publicRaw, d.publicRaw, Buffer.alloc(0));
  const client = deriveSessionSecret(x25519Shared(c.privateKey, d.publicRaw), h);
  const daemon = deriveSessionSecret(x25519Shared(d.privateKey, c.publicRaw), h);
  assert.ok(client.equals(daemon));
  assert.is(client.length, 32);
  // A sniffer's view: both public shares and the transcript. A third key pair does not get there.
  const eve = generateKx();
  assert.not.ok(deriveSessionSecret(x25519Shared(eve.privateKey, d.publicRaw), h).equals(client));
});

test('session-secret: the secret depends on the whole transcript (channel binding included)', () => {
  const c = generateKx();
  const d = generateKx();
  const shared = x25519Shared(c.privateKey, d.publicRaw);
  const a = deriveSessionSecret(shared, handshakeWith(c.publicRaw, d.publicRaw, Buffer.alloc(32, 9)));
  const b = deriveSessionSecret(shared, handshakeWith(c.publicRaw, d.publicRaw, Buffer.alloc(32, 8)));
  const plain = deriveSessionSecret(shared, handshakeWith(c.publicRaw, d.publicRaw, Buffer.alloc(0)));
  assert.not.ok(a.equals(b));
  assert.not.ok(a.equals(plain));
});

test('session-secret: low-order and malformed key shares are refused', () => {
  const d = generateKx();
  assert.throws(() => x25519Shared(d.privateKey, Buffer.alloc(32)), /low order|invalid/);
  const one = Buffer.alloc(32);
  one[0] = 1;
  assert.throws(() => x25519Shared(d.privateKey, one), /low order|invalid/);
  assert.throws(() => x25519Shared(d.privateKey, Buffer.alloc(31, 5)), /32 bytes/);
});

test('session-secret: an ATTACH proof needs the secret, the daemon nonce and the connection binding', () => {
  const secret = randomBytes(32);
  const sessionId = randomBytes(16);
  const nonce = randomBytes(32);
  const binding = randomBytes(32);
  const proof = attachProof(secret, sessionId, nonce, binding);
  assert.ok(verifyAttachProof(secret, sessionId, nonce, binding, proof));
  assert.not.ok(
    verifyAttachProof(randomBytes(32), sessionId, nonce, binding, proof),
    'sniffed id, no secret',
  );
  assert.not.ok(verifyAttachProof(secret, randomBytes(16), nonce, binding, proof), 'other session');
  assert.not.ok(verifyAttachProof(secret, sessionId, randomBytes(32), binding, proof), 'replayed proof');
  assert.not.ok(
    verifyAttachProof(secret, sessionId, nonce, randomBytes(32), proof),
    'relayed to another conn',
  );
  assert.not.ok(verifyAttachProof(secret, sessionId, nonce, binding, Buffer.alloc(32)), 'zero proof');
  assert.not.ok(verifyAttachProof(secret, sessionId, nonce, binding, proof.subarray(1)), 'short proof');
  // Without TLS the binding is empty and the daemon nonce alone keeps proofs fresh.
  const plain = attachProof(secret, sessionId, nonce, Buffer.alloc(0));
  assert.ok(verifyAttachProof(secret, sessionId, nonce, Buffer.alloc(0), plain));
  assert.not.ok(verifyAttachProof(secret, sessionId, randomBytes(32), Buffer.alloc(0), plain));
});

test("session-secret: the daemon's ATTACH answer proof is its own (distinct label), bound to the client's proof", () => {
  const secret = randomBytes(32);
  const id = randomBytes(16);
  const nonce = randomBytes(32);
  const binding = randomBytes(32);
  const ours = attachProof(secret, id, nonce, binding);
  const answer = attachAnswerProof(secret, id, nonce, binding, ours);
  assert.is(answer.length, 32);
  assert.not.ok(answer.equals(ours), 'not the client proof echoed');
  assert.ok(verifyAttachAnswer(secret, id, nonce, binding, ours, answer));
  // Missing, wrong secret, another exchange's client proof, another nonce or channel: all refused.
  assert.not.ok(verifyAttachAnswer(secret, id, nonce, binding, ours, undefined), 'missing');
  assert.not.ok(verifyAttachAnswer(secret, id, nonce, binding, ours, ours), 'echo of our proof');
  assert.not.ok(verifyAttachAnswer(randomBytes(32), id, nonce, binding, ours, answer), 'other secret');
  assert.not.ok(
    verifyAttachAnswer(secret, id, nonce, binding, randomBytes(32), answer),
    'other client proof',
  );
  assert.not.ok(verifyAttachAnswer(secret, id, randomBytes(32), binding, ours, answer), 'other nonce');
  assert.not.ok(verifyAttachAnswer(secret, id, nonce, new Uint8Array(0), ours, answer), 'other channel');
  assert.not.ok(verifyAttachAnswer(secret, id, nonce, binding, ours, answer.subarray(0, 31)), 'short');
});

test.run();
