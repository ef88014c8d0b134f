/**
 * The ssh dialer's count for `--connections auto` (carriedAutoCount): carried connections are each an ssh
 * login and process on the client and on the server, whose CPU the tuner cannot see, so auto's count is
 * fixed there: 8 windows (CARRIED_AUTO_MAX) where the data is in big files, 4 (CARRIED_AUTO_START) where
 * per-file work, not the window, is the limit. Direct connections are plain TLS sockets and leave the
 * tuner its own. Built without dialling: the transport is forced, so nothing is probed.
 */
import * as assert from 'uvu/assert';
import {
  CARRIED_AUTO_MAX,
  CARRIED_AUTO_START,
  CARRIED_SMALL_FILE_BYTES,
  sshDialer,
} from '../../src/client/ssh-dialer.js';
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

const MiB = 1024 * 1024;
/** The receiver's first ~1 MiB asked for: 120 files of ~8.5 KiB, or one big file. */
const SMALL_FILES = { bytes: 120 * 8700, files: 120 };
const BIG_FILE = { bytes: 1024 * MiB, files: 1 };

test('carried auto opens CARRIED_AUTO_MAX (8) for big files, fixed', () => {
  const d = dialerFor('carried');
  try {
    assert.is(d.chosen(), 'carried');
    assert.is(d.autoLimit?.(BIG_FILE), CARRIED_AUTO_MAX);
    assert.is(d.autoStart?.(BIG_FILE), CARRIED_AUTO_MAX);
    assert.is(CARRIED_AUTO_MAX, 8);
  } finally {
    d.close();
  }
});

test('carried auto stays at CARRIED_AUTO_START (4) for small files: each more is a login on both ends', () => {
  const d = dialerFor('carried');
  try {
    assert.is(d.autoStart?.(SMALL_FILES), CARRIED_AUTO_START);
    assert.is(d.autoLimit?.(SMALL_FILES), CARRIED_AUTO_START);
    assert.is(CARRIED_AUTO_START, 4);
  } finally {
    d.close();
  }
});

test('the line between them is a piece per file on average', () => {
  const d = dialerFor('carried');
  try {
    const at = (bytes: number, files: number) => d.autoStart?.({ bytes, files });
    assert.is(at(3 * CARRIED_SMALL_FILE_BYTES - 3, 3), CARRIED_AUTO_START);
    assert.is(at(3 * CARRIED_SMALL_FILE_BYTES, 3), CARRIED_AUTO_MAX);
    // Nothing asked for yet: the big-file count, as before.
    assert.is(at(0, 0), CARRIED_AUTO_MAX);
  } finally {
    d.close();
  }
});

test('direct connections leave auto its own cap and start', () => {
  const d = dialerFor('direct');
  try {
    assert.is(d.chosen(), 'direct');
    assert.is(d.autoLimit?.(SMALL_FILES), undefined);
    assert.is(d.autoStart?.(BIG_FILE), undefined);
  } finally {
    d.close();
  }
});

test.run();
