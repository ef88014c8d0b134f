import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Admission } from '../../src/daemon/admission.js';

// The cap on connections in their handshake (src/daemon/admission.ts, spec/SECURITY.md §10).

test('admission: a cap per address and a total cap; released slots are reused', () => {
  const a = new Admission(5, 2);
  assert.ok(a.admit('10.0.0.1'));
  assert.ok(a.admit('10.0.0.1'));
  assert.not.ok(a.admit('10.0.0.1'), 'third from one address');
  assert.ok(a.admit('10.0.0.2'));
  assert.ok(a.admit('10.0.0.2'));
  assert.ok(a.admit('10.0.0.3'));
  assert.is(a.pending, 5);
  assert.not.ok(a.admit('10.0.0.4'), 'over the total');
  a.release('10.0.0.1');
  assert.ok(a.admit('10.0.0.4'));
  assert.not.ok(a.admit('10.0.0.1'), 'the freed slot went to another address');
});

test("admission: an authenticated session's address gets room for its extra connections", () => {
  const a = new Admission(100, 2);
  a.grant('10.0.0.1', 8);
  for (let i = 0; i < 10; i++) assert.ok(a.admit('10.0.0.1'), `connection ${i}`);
  assert.not.ok(a.admit('10.0.0.1'));
  for (let i = 0; i < 10; i++) a.release('10.0.0.1');
  a.revoke('10.0.0.1', 8);
  assert.ok(a.admit('10.0.0.1'));
  assert.ok(a.admit('10.0.0.1'));
  assert.not.ok(a.admit('10.0.0.1'), 'back to the plain cap once the session ended');
});

test.run();
