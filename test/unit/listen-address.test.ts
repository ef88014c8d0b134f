// Which address fcpd listens on without --bind, and the one line it says when it cannot
// (src/daemon/listen-address.ts). The binds are real sockets on loopback.
import net from 'node:net';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { ANY_ADDRESSES, formatAddress, listenError, listenOnFirst } from '../../src/daemon/listen-address.js';
import { FcpError } from '../../src/protocol/errors.js';
import { exitCodeFor, EXIT } from '../../src/cli/exit-codes.js';

/** Binds a real listener on `address`; resolves with it, or rejects with node's own bind error. */
function bind(address: string, port = 0): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, address, () => resolve(server));
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A bind error of the kind a host without IPv6 gives for `::`. */
function familyUnavailable(address: string): Error {
  return Object.assign(new Error(`listen EAFNOSUPPORT: address family not supported ${address}`), {
    code: 'EAFNOSUPPORT',
    syscall: 'listen',
    address,
  });
}

test('addresses are written so the port stays readable', () => {
  assert.is(formatAddress('::', 7523), '[::]:7523');
  assert.is(formatAddress('::1', 1), '[::1]:1');
  assert.is(formatAddress('0.0.0.0', 7523), '0.0.0.0:7523');
});

test('without --bind: IPv6 (dual-stack) first, then 0.0.0.0', async () => {
  assert.equal(ANY_ADDRESSES, ['::', '0.0.0.0']);
  const tried: string[] = [];
  const { result, address } = await listenOnFirst(ANY_ADDRESSES, 0, (a) => {
    tried.push(a);
    return bind(a);
  });
  try {
    assert.equal(tried, ['::']);
    assert.is(address, '::');
  } finally {
    await close(result);
  }
});

test('a host without IPv6 falls back to 0.0.0.0', async () => {
  const tried: string[] = [];
  const { result, address } = await listenOnFirst(ANY_ADDRESSES, 0, async (a) => {
    tried.push(a);
    if (a === '::') throw familyUnavailable(a);
    return bind('127.0.0.1');
  });
  try {
    assert.equal(tried, ['::', '0.0.0.0']);
    assert.is(address, '0.0.0.0');
  } finally {
    await close(result);
  }
});

test('a port in use is not retried on another address, and the error names address and port', async () => {
  const taken = await bind('127.0.0.1');
  const port = (taken.address() as net.AddressInfo).port;
  const tried: string[] = [];
  try {
    await listenOnFirst(['127.0.0.1', '0.0.0.0'], port, (a) => {
      tried.push(a);
      return bind(a, port);
    });
    assert.unreachable('the second bind must fail');
  } catch (err) {
    assert.instance(err, FcpError);
    assert.is(
      (err as FcpError).message,
      `cannot listen on 127.0.0.1:${port}: address already in use (is another fcpd running on this port?)`,
    );
    assert.is(exitCodeFor(err), EXIT.USAGE);
    assert.equal(tried, ['127.0.0.1']);
  } finally {
    await close(taken);
  }
});

test('errors after the bind pass through untouched', async () => {
  const own = new FcpError('ENOENT', 'no such file or directory', { path: '/nonexistent' });
  try {
    await listenOnFirst(ANY_ADDRESSES, 0, () => Promise.reject(own));
    assert.unreachable('must reject');
  } catch (err) {
    assert.is(err, own);
  }
});

test('a privileged port says which port and why', () => {
  const denied = Object.assign(new Error('listen EACCES: permission denied :::80'), {
    code: 'EACCES',
    syscall: 'listen',
  });
  const e = listenError(denied, '::', 80);
  assert.match(e.message, /^cannot listen on \[::\]:80: permission denied \(ports below 1024 need root/);
  assert.is(exitCodeFor(e), EXIT.USAGE);
  assert.is(
    listenError(denied, '127.0.0.1', 8080).message,
    'cannot listen on 127.0.0.1:8080: permission denied',
  );
});

test.run();
