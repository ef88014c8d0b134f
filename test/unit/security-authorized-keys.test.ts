import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { checkAuthorizedKey, matchFrom, parseAuthorizedKeys } from '../../src/security/authorized-keys.js';
import { parsePublicKeyLine } from '../../src/security/ssh-keys.js';
import { generateKey, removeDir, type TestKey, tempDir } from '../helpers/ssh-keys.js';

// authorized_keys (src/security/authorized-keys.ts): which keys a daemon accepts, and the options it honours.

let dir = '';
let alice: TestKey;
let aliceRsa: TestKey;
let bob: TestKey;
const ctx = { remoteAddress: '192.0.2.7', nowMs: Date.UTC(2030, 0, 1) };

test.before(async () => {
  dir = await tempDir('authkeys');
  alice = await generateKey(dir, 'ed25519', 'alice');
  aliceRsa = await generateKey(dir, 'rsa', 'alice_rsa');
  bob = await generateKey(dir, 'ecdsa-256', 'bob');
});
test.after(async () => removeDir(dir));

const blobOf = (k: TestKey) => parsePublicKeyLine(k.publicLine).key.blob;

test('authorized-keys: plain lines, comments, blanks; bad lines are skipped with a reason', () => {
  const text = [
    '# alice',
    '',
    alice.publicLine,
    `  ${aliceRsa.publicLine}  `,
    'ssh-dss AAAAB3NzaC1kc3MAAACBAP== old',
    'garbage',
    `ssh-rsa ${blobOf(alice).toString('base64')} wrong type`,
  ].join('\n');
  const keys = parseAuthorizedKeys(text);
  assert.is(keys.entries.length, 2);
  assert.is(keys.entries[0]!.line, 3);
  assert.is(keys.entries[1]!.comment, 'alice_rsa@test');
  assert.is(keys.skipped.length, 3);
  assert.match(keys.skipped[0]!, 'line 5: unsupported key type ssh-dss');
  assert.ok(checkAuthorizedKey(keys, blobOf(alice), ctx).ok);
  assert.ok(checkAuthorizedKey(keys, blobOf(aliceRsa), ctx).ok);
});

test("authorized-keys: another account's key is refused", () => {
  const alices = parseAuthorizedKeys(`${alice.publicLine}\n`);
  const decision = checkAuthorizedKey(alices, blobOf(bob), ctx);
  assert.equal(decision, { ok: false, reason: 'key not in authorized_keys' });
});

test('authorized-keys: options are parsed with quotes and escapes', () => {
  const keys = parseAuthorizedKeys(
    `no-pty,from="192.0.2.0/24,!192.0.2.66",environment="A=\\"x y\\"" ${alice.publicLine}\n`,
  );
  const e = keys.entries[0]!;
  assert.equal(
    e.options.map((o) => [o.name, o.value]),
    [
      ['no-pty', undefined],
      ['from', '192.0.2.0/24,!192.0.2.66'],
      ['environment', 'A="x y"'],
    ],
  );
  assert.ok(checkAuthorizedKey(keys, blobOf(alice), ctx).ok);
  assert.not.ok(
    checkAuthorizedKey(keys, blobOf(alice), { ...ctx, remoteAddress: '192.0.2.66' }).ok,
    'negated',
  );
  assert.not.ok(
    checkAuthorizedKey(keys, blobOf(alice), { ...ctx, remoteAddress: '198.51.100.1' }).ok,
    'outside',
  );
  assert.ok(
    checkAuthorizedKey(keys, blobOf(alice), { ...ctx, remoteAddress: '::ffff:192.0.2.9' }).ok,
    'mapped',
  );
});

test('authorized-keys: from= wildcards, CIDR, host names never match an address', () => {
  assert.ok(matchFrom('192.0.2.*', '192.0.2.200'));
  assert.ok(matchFrom('10.?.0.1,192.0.2.7', '192.0.2.7'));
  assert.not.ok(matchFrom('*.example.org', '192.0.2.7'));
  assert.not.ok(matchFrom('*,!192.0.2.7', '192.0.2.7'));
  assert.ok(matchFrom('2001:db8::/32', '2001:db8::1'));
  assert.not.ok(matchFrom('2001:db8::/32', '192.0.2.7'));
  assert.not.ok(matchFrom('192.0.2.0/33', '192.0.2.7'), 'a malformed CIDR refuses');
});

test('authorized-keys: command=, cert-authority, unknown options and expired keys are refused', () => {
  const lines = [
    `command="/usr/bin/backup" ${alice.publicLine}`,
    `cert-authority ${aliceRsa.publicLine}`,
    `frobnicate ${bob.publicLine}`,
  ].join('\n');
  const keys = parseAuthorizedKeys(lines);
  assert.match((checkAuthorizedKey(keys, blobOf(alice), ctx) as { reason: string }).reason, 'forced command');
  assert.match((checkAuthorizedKey(keys, blobOf(aliceRsa), ctx) as { reason: string }).reason, 'certificate');
  assert.match((checkAuthorizedKey(keys, blobOf(bob), ctx) as { reason: string }).reason, 'unknown option');
  const expiring = parseAuthorizedKeys(`expiry-time="20291231Z" ${alice.publicLine}`);
  assert.not.ok(checkAuthorizedKey(expiring, blobOf(alice), ctx).ok, 'expired');
  assert.ok(
    checkAuthorizedKey(expiring, blobOf(alice), { ...ctx, nowMs: Date.UTC(2029, 5, 1) }).ok,
    'not yet',
  );
});

test('authorized-keys: the first line holding a key decides, as in sshd', () => {
  const keys = parseAuthorizedKeys(`from="10.0.0.1" ${alice.publicLine}\n${alice.publicLine}\n`);
  assert.not.ok(checkAuthorizedKey(keys, blobOf(alice), ctx).ok);
});

test.run();
