import * as assert from 'uvu/assert';
import { transportChoice, withDefaultSsh } from '../../src/cli/ssh-options.js';
import { cannotInstall, nodeNewEnough } from '../../src/client/remote-install.js';
import { parseOutcome } from '../../src/client/ssh-bootstrap.js';
import { sshEnded } from '../../src/client/ssh-process.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';
import { FcpError } from '../../src/protocol/errors.js';
import { test } from '../helpers/test.js';

test('ssh 255 with a refused login is exit 7; other ssh failures and the remote command are exit 4', () => {
  const denied = sshEnded(
    'box',
    { code: 255, signal: null },
    'root@127.0.0.1: Permission denied (publickey).',
  );
  assert.is(denied.code, 'FCP_ERR_AUTH_DENIED');
  assert.is(exitCodeFor(denied), 7);
  assert.match(denied.message, /^ssh could not log in to box: root@127\.0\.0\.1: Permission denied/);
  const hostKey = sshEnded('box', { code: 255, signal: null }, 'Host key verification failed.');
  assert.is(exitCodeFor(hostKey), 7);
  const unknown = sshEnded('box', { code: 255, signal: null }, 'ssh: Could not resolve hostname box');
  assert.is(exitCodeFor(unknown), 4);
  assert.match(unknown.message, /^ssh could not reach box: ssh: Could not resolve hostname box$/);
  const notFound = sshEnded('box', { code: 127, signal: null }, 'sh: 1: /opt/fcpd: not found');
  assert.is(exitCodeFor(notFound), 4);
  assert.match(
    notFound.message,
    /fcpd did not start on box \(exit status 127\): sh: 1: \/opt\/fcpd: not found/,
  );
  const noSsh = sshEnded(
    'box',
    { code: null, signal: null, error: new Error('spawn nossh ENOENT') },
    undefined,
  );
  assert.match(noSsh.message, /cannot run ssh to reach box: spawn nossh ENOENT/);
});

test('the remote need-install line: node version or null; anything else is skipped or malformed', () => {
  assert.equal(parseOutcome('FCPD-NEED-INSTALL {"node":"22.1.0"}'), { kind: 'need-install', node: '22.1.0' });
  assert.equal(parseOutcome('FCPD-NEED-INSTALL {"node":null}'), { kind: 'need-install', node: null });
  assert.is(parseOutcome('Welcome to box'), undefined);
  assert.throws(() => parseOutcome('FCPD-NEED-INSTALL {"node":3}'), /malformed/);
  assert.throws(() => parseOutcome('FCPD-NEED-INSTALL nonsense'), /malformed/);
});

test('node 20.19 or newer may get the bundle; the reasons it may not name what to do', () => {
  assert.ok(nodeNewEnough('20.19.0'));
  assert.ok(nodeNewEnough('v22.3.1'));
  assert.not.ok(nodeNewEnough('20.18.9'));
  assert.not.ok(nodeNewEnough('18.20.0'));
  assert.not.ok(nodeNewEnough('junk'));
  const bundle = { data: Buffer.alloc(0), sha256: '', name: 'fcpd-x.js' };
  assert.is(cannotInstall('box', '22.0.0', bundle, true), undefined);
  assert.match(cannotInstall('box', '22.0.0', bundle, false)!.message, /--no-remote-install/);
  assert.match(cannotInstall('box', null, bundle, true)!.message, /neither fcpd nor node/);
  assert.match(cannotInstall('box', '18.0.0', bundle, true)!.message, /node 18\.0\.0 is older than 20\.19/);
  assert.match(cannotInstall('box', '22.0.0', undefined, true)!.message, /no dist\/bin\/fcpd\.js to send/);
});

test('--ssh alone is --ssh=ssh (so `fcp --ssh push` keeps push), but not after --', () => {
  assert.equal(withDefaultSsh(['--ssh', 'push', 'a', 'h:b']), ['--ssh=ssh', 'push', 'a', 'h:b']);
  assert.equal(withDefaultSsh(['--ssh=ssh -p 2', 'push']), ['--ssh=ssh -p 2', 'push']);
  assert.equal(withDefaultSsh(['push', '--', '--ssh']), ['push', '--', '--ssh']);
});

const ARGS = {
  ssh: undefined,
  daemon: false,
  'ssh-transport': 'auto',
  'remote-fcpd': undefined,
  'remote-install': true,
  'ssh-config': undefined,
  identity: undefined,
} as const;

test('the rule: --daemon or a port → daemon; --ssh → ssh; neither → auto; -F goes to ssh', () => {
  const none = () => {};
  assert.is(transportChoice(ARGS, { host: 'h', path: '' }, none).mode, 'auto');
  assert.is(transportChoice({ ...ARGS, daemon: true }, { host: 'h', path: '' }, none).mode, 'daemon');
  assert.is(transportChoice(ARGS, { host: 'h', port: 7600, path: '' }, none).mode, 'daemon');
  const ssh = transportChoice(
    { ...ARGS, ssh: 'ssh -p 2222', 'ssh-config': 'cfg' },
    { user: 'ann', host: 'h', path: '' },
    none,
  );
  assert.is(ssh.mode, 'ssh');
  assert.is(ssh.dest, 'ann@h');
  assert.equal(ssh.ssh.args.slice(0, 1), ['-F']);
  assert.equal(ssh.ssh.args.slice(2), ['-p', '2222']);
  const own = transportChoice(
    { ...ARGS, ssh: 'ssh -F mine', 'ssh-config': 'cfg' },
    { host: 'h', path: '' },
    none,
  );
  assert.equal(own.ssh.args, ['-F', 'mine'], 'the ssh command names its own config');
  const key = transportChoice({ ...ARGS, identity: '/k/id' }, { host: 'h', path: '' }, none);
  assert.equal(key.ssh.args, ['-i', '/k/id'], "fcp's -i is ssh's key too");
  for (const [args, spec, message] of [
    [{ ...ARGS, ssh: 'ssh', daemon: true }, { host: 'h', path: '' }, /cannot both/],
    [{ ...ARGS, ssh: 'ssh' }, { host: 'h', port: 7600, path: '' }, /names a standing fcpd/],
  ] as const) {
    assert.throws(
      () => transportChoice(args, spec, none),
      (e: unknown) => e instanceof FcpError && e.code === 'FCP_ERR_USAGE' && message.test(e.message),
    );
  }
});

test.run();
