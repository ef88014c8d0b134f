import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import * as assert from 'uvu/assert';
import { isSameHostAddress } from '../../src/security/same-host.js';
import { MsgType } from '../../src/protocol/index.js';
import { type DaemonAuthConfig, DaemonAuthExchange } from '../../src/security/daemon-auth.js';
import { generateHostKey } from '../../src/security/host-key.js';
import { generateKx } from '../../src/security/session-secret.js';
import { test } from '../helpers/test.js';

// Only a client on this host is told where the same-host token is (spec/SECURITY.md §5.3, §5.4): the path
// names the served account's state directory.

test('loopback and this host own interface addresses are this host; others are not', () => {
  for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1', '::FFFF:127.0.0.1']) {
    assert.ok(isSameHostAddress(a), a);
  }
  for (const list of Object.values(networkInterfaces())) {
    for (const iface of list ?? []) assert.ok(isSameHostAddress(iface.address), iface.address);
  }
  for (const a of ['192.0.2.1', '::ffff:192.0.2.1', '2001:db8::1', '', 'relay']) {
    assert.not.ok(isSameHostAddress(a), a);
  }
});

test("AUTH_CHALLENGE names the token's path to a client on this host only", () => {
  const config: DaemonAuthConfig = {
    hostKey: generateHostKey(),
    account: 'someone',
    token: {
      path: '/home/someone/.local/state/fcpd/fcpd-token-7523',
      token: randomBytes(32),
      hostFingerprint: 'x',
      ownerUid: 1000,
    },
    authorizedKeys: undefined,
    publicKeyRefusal: undefined,
    oneTime: undefined,
    log: () => {},
  };
  const start = {
    type: MsgType.AuthStart,
    clientNonce: randomBytes(32),
    clientKx: generateKx().publicRaw,
    user: '',
  } as const;
  const binding = new Uint8Array(0);
  assert.is(new DaemonAuthExchange(config, start, binding, true).challenge.tokenPath, config.token!.path);
  assert.is(new DaemonAuthExchange(config, start, binding, false).challenge.tokenPath, '');
});

test.run();
