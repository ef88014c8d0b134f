// The client's check of the daemon's ATTACH answer (src/client/extra-connections.ts checkAttachAnswer;
// spec/PROTOCOL.md §3.2 AttachProven, review F4): what the client takes from a daemon that offered the
// capability on the control connection, and from an older one that did not.
import { randomBytes } from 'node:crypto';
import * as assert from 'uvu/assert';
import { checkAttachAnswer } from '../../src/client/extra-connections.js';
import { FcpError } from '../../src/protocol/errors.js';
import { attachAnswerProof, attachProof } from '../../src/security/session-secret.js';
import { test } from '../helpers/test.js';

const secret = randomBytes(32);
const sessionId = randomBytes(16);
const nonce = randomBytes(32);
const channel = { binding: new Uint8Array(0), peer: 'a relayed connection' };
const ours = attachProof(secret, sessionId, nonce, channel.binding);
const valid = attachAnswerProof(secret, sessionId, nonce, channel.binding, ours);

function link(attachProven: boolean) {
  return { attachProven, auth: { sessionSecret: secret, hostFingerprint: 'SHA256:x' } };
}

function check(attachProven: boolean, theirs: Uint8Array | undefined): void {
  checkAttachAnswer(link(attachProven), channel, sessionId, nonce, ours, theirs);
}

function refused(attachProven: boolean, theirs: Uint8Array | undefined, what: string): void {
  try {
    check(attachProven, theirs);
  } catch (err) {
    assert.instance(err, FcpError, what);
    assert.is((err as FcpError).code, 'FCP_ERR_AUTH_HOST_PROOF', what);
    assert.match((err as FcpError).message, 'a relayed connection answered ATTACH without proof', what);
    return;
  }
  assert.unreachable(`${what}: accepted`);
}

test('a daemon that offered AttachProven: only its valid proof is taken', () => {
  check(true, valid);
  refused(true, undefined, 'missing proof');
  refused(true, randomBytes(32), 'wrong proof');
  refused(true, ours, 'our own proof echoed');
  refused(true, attachAnswerProof(randomBytes(32), sessionId, nonce, channel.binding, ours), 'other secret');
});

test('an older daemon (no AttachProven on the control connection): its 16-byte answer is taken as before', () => {
  check(false, undefined);
});

test.run();
