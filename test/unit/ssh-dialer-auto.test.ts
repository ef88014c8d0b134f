/**
 * The ssh dialer's cap on `--connections auto` (CARRIED_AUTO_MAX): carried connections are each an ssh
 * process on the client and one on the server, whose CPU the tuner cannot see, and 8 windows already fill
 * the bench's WAN, so auto stays at 8 there; direct connections are plain TLS sockets and leave the tuner
 * its own cap. Built without dialling: the transport
 * is forced, so nothing is probed. Carried auto also starts at 8 (CARRIED_AUTO_START) rather than the tuner's 2.
 */
import * as assert from 'uvu/assert';
import { CARRIED_AUTO_MAX, CARRIED_AUTO_START, sshDialer } from '../../src/client/ssh-dialer.js';
import type { RemoteFcpd } from '../../src/client/ssh-bootstrap.js';
import { parseSshCommand } from '../../src/transport/ssh-command.js';
import { test } from '../helpers/test.js';

const remote: RemoteFcpd = {
  info: {
    port: 1,
    hostKey: 'SHA256:unused',
    secret: Buffer.alloc(16),
    relay: '/nonexistent/fcp-relay.sock',
    version: '0.0.0',
  },
  cachedName: undefined,
  close: async () => {},
  release: () => {},
  abort: () => {},
};

function dialerFor(transport: 'direct' | 'carried') {
  return sshDialer(
    {
      ssh: parseSshCommand('ssh'),
      dest: 'example.invalid',
      remoteFcpd: undefined,
      transport,
      extraConnections: 0,
      config: { host: '127.0.0.1', forwardings: false, ciphers: undefined },
      onStderr: () => {},
    },
    remote,
  );
}

test('carried connections cap auto at CARRIED_AUTO_MAX', () => {
  const d = dialerFor('carried');
  try {
    assert.is(d.chosen(), 'carried');
    assert.is(d.autoLimit?.(), CARRIED_AUTO_MAX);
    assert.is(CARRIED_AUTO_MAX, 8);
  } finally {
    d.close();
  }
});

test('carried connections start auto at CARRIED_AUTO_START: one ssh window each, two tell nothing on a WAN', () => {
  const d = dialerFor('carried');
  try {
    assert.is(d.autoStart?.(), CARRIED_AUTO_START);
    assert.is(CARRIED_AUTO_START, 8);
  } finally {
    d.close();
  }
});

test('direct connections leave auto its own cap and start', () => {
  const d = dialerFor('direct');
  try {
    assert.is(d.chosen(), 'direct');
    assert.is(d.autoLimit?.(), undefined);
    assert.is(d.autoStart?.(), undefined);
  } finally {
    d.close();
  }
});

test.run();
