import { createHash } from 'node:crypto';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import {
  attachProofData,
  clientAuthData,
  type Handshake,
  handshakeTranscript,
  hostProofData,
  safeEqual,
  sshsigSignedData,
} from '../../src/security/transcript.js';

// The bytes every proof covers (src/security/transcript.ts), checked against spec/SECURITY.md §6 byte by byte.

const str = (b: Buffer | string) => {
  const bytes = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
};

const H: Handshake = {
  clientNonce: Buffer.alloc(32, 0xc1),
  serverNonce: Buffer.alloc(32, 0x5e),
  channelBinding: Buffer.alloc(32, 0xcb),
  hostKeyFingerprint: Buffer.alloc(32, 0xf9),
  clientKx: Buffer.alloc(32, 0xa1),
  serverKx: Buffer.alloc(32, 0xb2),
  user: 'zoë',
};

test('transcript: the shared transcript layout', () => {
  const expected = Buffer.concat([
    str(Buffer.alloc(32, 0xc1)),
    str(Buffer.alloc(32, 0x5e)),
    str(Buffer.alloc(32, 0xcb)),
    str(Buffer.alloc(32, 0xf9)),
    str(Buffer.alloc(32, 0xa1)),
    str(Buffer.alloc(32, 0xb2)),
    str(Buffer.from('zoë', 'utf8')),
  ]);
  assert.ok(handshakeTranscript(H).equals(expected));
  assert.is(expected.length, 6 * 36 + 4 + 4);
  const plain = handshakeTranscript({ ...H, channelBinding: Buffer.alloc(0) });
  assert.ok(plain.subarray(72, 76).equals(Buffer.alloc(4)), 'no TLS: an empty string');
});

test('transcript: host proof, client auth, SSHSIG wrapper and attach layouts', () => {
  const t = handshakeTranscript(H);
  assert.ok(hostProofData(H).equals(Buffer.concat([str('fcp-host-v1'), t])));
  const payload = Buffer.from('the PUSH payload');
  const blob = Buffer.from('key blob');
  const auth = clientAuthData(H, { type: 0x01, payload }, 'publickey', blob);
  const want = Buffer.concat([
    str('fcp-auth-v1'),
    t,
    Buffer.of(0x01),
    str(createHash('sha256').update(payload).digest()),
    str('publickey'),
    str(blob),
  ]);
  assert.ok(auth.equals(want));
  const tokenAuth = clientAuthData(H, { type: 0x02, payload }, 'token', Buffer.alloc(0));
  assert.ok(tokenAuth.subarray(-13).equals(Buffer.concat([str('token'), str(Buffer.alloc(0))])));
  assert.throws(() => clientAuthData(H, { type: 2, payload }, 'token', blob), /carry no key/);
  const sshsig = sshsigSignedData(auth);
  assert.ok(
    sshsig.equals(
      Buffer.concat([
        Buffer.from('SSHSIG'),
        str('fcp-auth-v1@fcp'),
        str(''),
        str('sha512'),
        str(createHash('sha512').update(auth).digest()),
      ]),
    ),
  );
  const id = Buffer.alloc(16, 0x1d);
  const nonce = Buffer.alloc(32, 0x0e);
  assert.ok(
    attachProofData(id, nonce, Buffer.alloc(0)).equals(
      Buffer.concat([str('fcp-attach-v1'), str(id), str(nonce), str(Buffer.alloc(0))]),
    ),
  );
});

test('transcript: wrong field sizes and long user names are refused', () => {
  assert.throws(
    () => handshakeTranscript({ ...H, clientNonce: Buffer.alloc(31) }),
    /client nonce must be 32/,
  );
  assert.throws(() => handshakeTranscript({ ...H, channelBinding: Buffer.alloc(16) }), /channel binding/);
  assert.throws(() => handshakeTranscript({ ...H, hostKeyFingerprint: Buffer.alloc(20) }), /fingerprint/);
  assert.throws(() => handshakeTranscript({ ...H, user: 'u'.repeat(256) }), /255 bytes/);
  assert.throws(() => attachProofData(Buffer.alloc(16), Buffer.alloc(8), Buffer.alloc(0)), /attach nonce/);
});

test('transcript: length prefixes keep neighbouring fields from sliding into each other', () => {
  const a = clientAuthData(
    { ...H, user: 'ab' },
    { type: 1, payload: Buffer.alloc(0) },
    'publickey',
    Buffer.from('c'),
  );
  const b = clientAuthData(
    { ...H, user: 'a' },
    { type: 1, payload: Buffer.alloc(0) },
    'publickey',
    Buffer.from('bc'),
  );
  assert.not.ok(a.equals(b));
});

test('transcript: safeEqual', () => {
  assert.ok(safeEqual(Buffer.from('abc'), Buffer.from('abc')));
  assert.not.ok(safeEqual(Buffer.from('abc'), Buffer.from('abd')));
  assert.not.ok(safeEqual(Buffer.from('abc'), Buffer.from('ab')));
});

test.run();
