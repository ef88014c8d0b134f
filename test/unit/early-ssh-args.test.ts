// The launcher's guess of the bootstrap ssh argv (src/cli/early-ssh-args.ts): for the plain forms it must be
// exactly what the bootstrap works out from the full parse (else the early ssh is never adopted), and for
// anything it cannot be sure of it must not guess at all.
import path from 'node:path';
import * as assert from 'uvu/assert';
import { configChangesSsh, earlyBootstrapArgv } from '../../src/cli/early-ssh-args.js';
import { bootstrapArgv, parseSshCommand, withUserFiles } from '../../src/transport/ssh-command.js';
import { remoteCommandFor } from '../../src/transport/remote-script.js';
import { test } from '../helpers/test.js';

const NAME = 'fcpd-0.1.0-0123456789abcdef.cjs';
const named = () => NAME;

/** What ssh-bootstrap.ts runs for these options (the same functions the full parse ends in). */
function expected(
  ssh: string,
  dest: string,
  opts: { F?: string; i?: string; remote?: string } = {},
): string[] {
  const command = withUserFiles(parseSshCommand(ssh), opts.F, opts.i);
  return bootstrapArgv(
    command,
    dest,
    remoteCommandFor(opts.remote, opts.remote === undefined ? NAME : undefined),
  );
}

test('push and pull with --ssh guess the argv the bootstrap runs', () => {
  assert.equal(earlyBootstrapArgv(['--ssh', 'push', 'a', 'b/', 'host:dst/'], named), expected('ssh', 'host'));
  assert.equal(
    earlyBootstrapArgv(['pull', '--ssh=ssh -p 2222 -J bastion', 'me@host:/logs/*.gz', '.'], named),
    expected('ssh -p 2222 -J bastion', 'me@host'),
  );
  assert.equal(
    earlyBootstrapArgv(['-q', '-n', '4', 'push', '--ssh-transport', 'direct', '--ssh', 'x', 'h:'], named),
    expected('ssh', 'h'),
  );
});

test('-F, -i and --remote-fcpd, in both spellings, are read as the full parse reads them', () => {
  const words = [
    'push',
    '--ssh',
    '-F',
    'conf',
    '--identity=k',
    '--remote-fcpd',
    'node /o/fcpd.js',
    's',
    'h:d',
  ];
  assert.equal(
    earlyBootstrapArgv(words, named),
    expected('ssh', 'h', { F: 'conf', i: 'k', remote: 'node /o/fcpd.js' }),
  );
  const argv = earlyBootstrapArgv(['push', '--ssh', '--ssh-config=conf', '-i', 'k', 's', 'h:d'], named);
  assert.ok(argv?.includes(path.resolve('conf')) && argv.includes(path.resolve('k')), String(argv));
});

test('the bundle is hashed only when no --remote-fcpd names the remote command', () => {
  let hashed = 0;
  const counting = () => {
    hashed++;
    return NAME;
  };
  earlyBootstrapArgv(['push', '--ssh', '--remote-fcpd=fcpd', 's', 'h:d'], counting);
  assert.is(hashed, 0);
  earlyBootstrapArgv(['push', '--ssh', 's', 'h:d'], counting);
  assert.is(hashed, 1);
});

test('no guess where the run may not go through ssh, or the argv is not plain', () => {
  const none: string[][] = [
    ['push', 's', 'h:d'], // no --ssh: auto mode tries the standing daemon first
    ['push', '--ssh', 's', 'h:7523:d'], // a port names a standing fcpd
    ['push', '--ssh', '--daemon', 's', 'h:d'],
    ['push', '--ssh', '--help'],
    ['--version'],
    ['push', '--ssh', '--background', 's', 'h:d'],
    ['--print-config', 'h', '--ssh'],
    ['push', '--ssh', '--exclude', 'a:b', 's', 'h:d'], // two words that could be the remote
    ['push', '--ssh', '-Fconf', 's', 'h:d'], // a form the guess does not read
    ['push', '--ssh', '-qi', 'k', 's', 'h:d'],
    ['push', '--ssh', '--ssh=other', 's', 'h:d'],
    ['push', '--ssh', 's', '--', 'h:d'],
    ['push', "--ssh=ssh 'unbalanced", 's', 'h:d'],
    ['push', '--ssh', 's', '-oProxyCommand=x:d'], // an option, not an operand; and no remote left
    ['push', '--ssh', 's', 'dir/'], // no remote at all
    ['status', '--ssh'],
  ];
  for (const words of none) assert.is(earlyBootstrapArgv(words, named), undefined, words.join(' '));
});

test('a config file that sets how ssh logs in is not guessed around, in any TOML form', () => {
  const changes = [
    'identity = "~/.ssh/h_key"',
    '[host."backup"]\nretries = 2\n  identity = "k"',
    '"ssh-config" = "/etc/fcp/ssh_config"',
    "ssh = 'ssh -p 2222'",
    'remote-fcpd="/opt/fcp/bin/fcpd"',
    'host."backup".identity = "k"',
    '[host]\n"backup" = { retries = 2, identity = "k" }',
  ];
  for (const text of changes) assert.ok(configChangesSsh(text), text);
  const not = [
    '',
    'retries = 3\nconnections = "auto"',
    'ssh-transport = "carried"',
    '[host."ssh"]\nretries = 1',
  ];
  for (const text of not) assert.not.ok(configChangesSsh(text), text);
});

test.run();
