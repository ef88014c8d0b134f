import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { parseRemoteSpec } from '../../src/client/remote-spec.js';
import { hostPort } from '../../src/transport/channel.js';
import { FcpError } from '../../src/protocol/errors.js';

function usageError(arg: string, message: RegExp): void {
  try {
    parseRemoteSpec(arg);
  } catch (err) {
    assert.instance(err, FcpError);
    assert.is((err as FcpError).code, 'FCP_ERR_USAGE');
    assert.match((err as FcpError).message, message);
    return;
  }
  assert.unreachable(`"${arg}" should be a usage error`);
}

test('host:path', () => {
  assert.equal(parseRemoteSpec('box:data/x'), { host: 'box', path: 'data/x' });
  assert.equal(parseRemoteSpec('box:/abs/path'), { host: 'box', path: '/abs/path' });
});

test('host: means the default root', () => {
  assert.equal(parseRemoteSpec('box:'), { host: 'box', path: '' });
});

test('user@host:path, user with @ splits at the last @', () => {
  assert.equal(parseRemoteSpec('ann@box:x'), { user: 'ann', host: 'box', path: 'x' });
  assert.equal(parseRemoteSpec('ann@corp.example@box:x'), {
    user: 'ann@corp.example',
    host: 'box',
    path: 'x',
  });
});

test('host:port:path', () => {
  assert.equal(parseRemoteSpec('box:7600:data'), { host: 'box', port: 7600, path: 'data' });
  assert.equal(parseRemoteSpec('ann@box:1:'), { user: 'ann', host: 'box', port: 1, path: '' });
  assert.equal(parseRemoteSpec('box:65535:a:b'), { host: 'box', port: 65535, path: 'a:b' });
});

test('digits without a second colon are a path, non-digits before a colon are a path', () => {
  assert.equal(parseRemoteSpec('box:123'), { host: 'box', path: '123' });
  assert.equal(parseRemoteSpec('box:12a:x'), { host: 'box', path: '12a:x' });
  assert.equal(parseRemoteSpec('box:./12:x'), { host: 'box', path: './12:x' });
  assert.equal(parseRemoteSpec('box::x'), { host: 'box', path: ':x' });
});

test('bad ports are usage errors', () => {
  usageError('box:0:x', /invalid port in "box:0:x"/);
  usageError('box:65536:x', /invalid port/);
  usageError('box:99999999999999999999:x', /invalid port/);
});

test('IPv6 literals in brackets', () => {
  assert.equal(parseRemoteSpec('[::1]:x'), { host: '::1', path: 'x' });
  assert.equal(parseRemoteSpec('[fe80::1%eth0]:'), { host: 'fe80::1%eth0', path: '' });
  assert.equal(parseRemoteSpec('ann@[2001:db8::2]:7523:dir/f'), {
    user: 'ann',
    host: '2001:db8::2',
    port: 7523,
    path: 'dir/f',
  });
});

test('host:port in messages puts an IPv6 literal in brackets, as operands write it', () => {
  assert.is(hostPort('::1', 7523), '[::1]:7523');
  assert.is(hostPort('box', 7523), 'box:7523');
  assert.is(hostPort('127.0.0.1', 1), '127.0.0.1:1');
});

test('local operands', () => {
  for (const arg of ['file', 'dir/sub', './a:b', '/x:y', 'a/b:c', 'a/b@c:d', '[::1', '[::1]x:y', '']) {
    assert.is(parseRemoteSpec(arg), undefined, arg);
  }
});

test('empty host or user is a usage error', () => {
  usageError(':path', /empty host/);
  usageError('ann@:path', /empty host/);
  usageError('[]:path', /empty host/);
  usageError('@box:path', /empty user/);
});

test('malformed hosts are usage errors', () => {
  usageError('a[b]:x', /invalid host/);
  usageError('my box:x', /invalid host/);
});

test.run();
