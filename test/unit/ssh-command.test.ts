import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/errors.js';
import {
  bootstrapArgv,
  CARRIED_SSH_TUNABLES,
  carriedSshEnv,
  configQueryArgv,
  dataArgv,
  forwardablePath,
  forwardArgv,
  forwardingsConfigured,
  hostnameFromConfig,
  installArgv,
  parseSshCommand,
  sshDestination,
} from '../../src/transport/ssh-command.js';
import { loginShellCommand, remoteFcpdScript, shellQuote } from '../../src/transport/remote-script.js';
import { test } from '../helpers/test.js';
import { execFileSync, spawnSync } from '../helpers/sync.js';

function usage(fn: () => unknown, message: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, FcpError);
    assert.is((err as FcpError).code, 'FCP_ERR_USAGE');
    assert.match((err as FcpError).message, message);
    return;
  }
  assert.unreachable('should be a usage error');
}

test('--ssh splits into words like sh, without a shell', () => {
  assert.equal(parseSshCommand('ssh'), { file: 'ssh', args: [] });
  assert.equal(parseSshCommand('  ssh   -p 2222 -J bastion '), {
    file: 'ssh',
    args: ['-p', '2222', '-J', 'bastion'],
  });
  assert.equal(parseSshCommand(`ssh -o 'ProxyCommand=nc %h %p' -i "/my keys/id"`), {
    file: 'ssh',
    args: ['-o', 'ProxyCommand=nc %h %p', '-i', '/my keys/id'],
  });
  assert.equal(parseSshCommand(String.raw`ssh -F a\ b "x\"y\\z" 'q'"r"s $HOME`), {
    file: 'ssh',
    args: ['-F', 'a b', 'x"y\\z', 'qrs', '$HOME'],
  });
  assert.equal(parseSshCommand(`ssh ''`), { file: 'ssh', args: [''] });
});

test('an empty or unbalanced --ssh is a usage error naming --ssh', () => {
  usage(() => parseSshCommand(''), /--ssh/);
  usage(() => parseSshCommand('   '), /--ssh/);
  usage(() => parseSshCommand(`ssh -o 'x`), /--ssh.*unbalanced '/);
  usage(() => parseSshCommand('ssh "x'), /--ssh.*unbalanced "/);
  usage(() => parseSshCommand('ssh x\\'), /--ssh.*lone \\/);
});

test('a destination that ssh would read as an option is refused', () => {
  assert.is(sshDestination('box', undefined), 'box');
  assert.is(sshDestination('box', 'ann'), 'ann@box');
  usage(() => sshDestination('-oProxyCommand=x', undefined), /starts with -/);
  usage(() => sshDestination('box', '-x'), /starts with -/);
});

/** Runs a login-shell command line as ssh would: `$SHELL -c "<the one word>"`. */
function asLoginShell(shell: string, command: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(shell, ['-c', command], { env, encoding: 'utf8' });
}

/** The login shells the remote command must read alike: sh, dash, bash always; zsh, fish, csh where installed. */
const LOGIN_SHELLS = [
  '/bin/sh',
  '/usr/bin/dash',
  '/usr/bin/bash',
  '/usr/bin/zsh',
  '/usr/bin/fish',
  '/bin/csh',
].filter((shell) => existsSync(shell));

test('shellQuote and loginShellCommand survive every login shell unchanged', () => {
  const tricky = `it's "quoted" $HOME \`x\` ; & | * ~ {a,b}`;
  // A quote in a quoted word quoted again: the '\'' form came out unbalanced in fish ('\' inside '...').
  for (const word of [tricky, "/run/user/1/it's", "a'b'c"]) {
    for (const shell of LOGIN_SHELLS) {
      assert.is(asLoginShell(shell, `printf %s ${shellQuote(word)}`), word, shell);
      const command = loginShellCommand(`printf %s ${shellQuote(word)}`);
      assert.is(asLoginShell(shell, command), word, shell);
    }
  }
});

test('a relay socket path with a quote reaches the remote script intact in every login shell', () => {
  const socket = "/home/o'brien/.cache/fcp/run/s.sock";
  const word = dataArgv(parseSshCommand('ssh'), 'box', { kind: 'given', command: 'printf %s' }, socket).at(
    -1,
  )!;
  for (const shell of LOGIN_SHELLS) assert.is(asLoginShell(shell, word), `--stdio${socket}`, shell);
});

test('a relay socket path that some login shell would change is a connect error naming it', () => {
  for (const socket of ['/home/a!b/s.sock', '/home/a\\b/s.sock']) {
    assert.throws(
      () => dataArgv(parseSshCommand('ssh'), 'box', { kind: 'search', cachedName: undefined }, socket),
      (e: unknown) =>
        (e as FcpError).code === 'FCP_ERR_NET_CONNECT' && (e as FcpError).message.includes(socket),
    );
  }
});

test('loginShellCommand refuses what some login shell would change', () => {
  for (const bad of ['a\nb', 'echo hi!', 'a\\\\b', "a\\'b"]) {
    assert.throws(
      () => loginShellCommand(bad),
      (e: unknown) => (e as FcpError).code === 'FCP_ERR_INTERNAL',
    );
  }
});

test('the remote scripts pass loginShellCommand (one line, no \\\\ or !)', () => {
  const ssh = parseSshCommand('ssh -p 2222');
  const search = { kind: 'search', cachedName: 'fcpd-0.1.0-0123456789abcdef.cjs' } as const;
  bootstrapArgv(ssh, 'box', search);
  dataArgv(ssh, 'box', search, '/run/user/1/fcp/s.sock');
  installArgv(ssh, 'box', 'fcpd-0.1.0-0123456789abcdef.cjs', 'a'.repeat(64));
});

test('the data connections never share an ssh master, and ours come before the user options', () => {
  const ssh = parseSshCommand('ssh -o ControlMaster=auto -p 2222');
  const argv = dataArgv(ssh, 'ann@box', { kind: 'given', command: '/opt/fcpd' }, '/tmp/s');
  const master = argv.indexOf('ControlMaster=no');
  assert.ok(master > 0 && master < argv.indexOf('ControlMaster=auto'));
  assert.ok(argv.includes('ControlPath=none'));
  assert.ok(argv.indexOf('Compression=no') > 0 && argv.indexOf('Compression=no') < argv.indexOf('-p'));
  assert.is(argv[0], 'ssh');
  assert.is(argv.at(-2), 'ann@box');
  assert.match(argv.at(-1)!, /^exec sh -c '/);
  const boot = bootstrapArgv(ssh, 'ann@box', { kind: 'given', command: '/opt/fcpd' });
  assert.not.ok(boot.includes('ControlMaster=no'), 'the bootstrap may use a master');
  assert.not.ok(boot.includes('Compression=no'), "the bootstrap's few bytes as the user configured");
  assert.equal(configQueryArgv(ssh, 'box').slice(-2), ['-G', 'box']);
});

test('a forwarded connection: no remote command, ours before the user options, ssh under its stdin watcher', () => {
  const ssh = parseSshCommand('ssh -o ControlMaster=auto -p 2222');
  const argv = forwardArgv(ssh, 'ann@box', '/tmp/fcp-fwd-x/1.sock', '/run/user/1/fcp/s.sock');
  assert.equal(argv.slice(0, 2), ['sh', '-c']);
  assert.equal(argv.slice(3, 6), ['sh', '/tmp/fcp-fwd-x/1.sock', 'ssh']);
  const ours = ['-N', 'Compression=no', 'ControlMaster=no', 'ControlPath=none', 'ExitOnForwardFailure=yes'];
  for (const word of ours) {
    assert.ok(argv.includes(word), word);
    assert.ok(argv.indexOf(word) < argv.indexOf('ControlMaster=auto'), word);
  }
  assert.is(argv[argv.indexOf('-L') + 1], '/tmp/fcp-fwd-x/1.sock:/run/user/1/fcp/s.sock');
  assert.is(argv.at(-1), 'ann@box', 'no remote command');
});

test('which relay paths -L can carry, and which ssh configs forward ports of their own', () => {
  assert.ok(forwardablePath('/home/ann/.cache/fcp/run/serve-once-1-ab.sock'));
  for (const bad of ['relative.sock', '/a:b/s.sock', '/a b/s.sock', '/a[1]/s.sock'])
    assert.not.ok(forwardablePath(bad), bad);
  assert.not.ok(forwardingsConfigured('user ann\nhostname box\nclearallforwardings no\n'));
  assert.ok(forwardingsConfigured('user ann\nlocalforward 127.0.0.1:8080 [127.0.0.1]:80\n'));
  assert.ok(forwardingsConfigured('remoteforward 9000 localhost:9000\n'));
  assert.ok(forwardingsConfigured('dynamicforward 1080\n'));
  assert.ok(forwardingsConfigured('clearallforwardings yes\n'));
});

test('a relay path -L carries reaches the server as the remote announced it: ssh expands none of it', () => {
  // ssh expands %-tokens and ${VAR} in -L socket paths: a hostile remote announcing such a relay would
  // learn this machine's user, home and environment (a token in it) from the path sent back to it.
  const env = { ...process.env, FCP_TEST_LEAK: 'local-secret' };
  for (const relay of ['/run/fcp/s-${FCP_TEST_LEAK}.sock', '/run/fcp/s-%u-%d.sock', '/run/fcp/s.sock']) {
    if (!forwardablePath(relay)) continue;
    const argv = forwardArgv(
      { file: 'ssh', args: ['-F', '/dev/null'] },
      'box',
      '/tmp/fcp-fwd-x/1.sock',
      relay,
    );
    const forward = argv[argv.indexOf('-L') + 1]!;
    const r = spawnSync('ssh', ['-F', '/dev/null', '-G', '-L', forward, 'box'], { encoding: 'utf8', env });
    const seen = /^localforward (\S+) (\S+)$/m.exec(r.stdout);
    assert.is(seen?.[2], relay, `${relay}: ssh -G says ${r.stdout.match(/^localforward.*$/m)?.[0]}`);
  }
});

test('ssh -G: the hostname line', () => {
  assert.is(hostnameFromConfig('user ann\nhostname 10.0.0.7\nport 22\n'), '10.0.0.7');
  assert.is(hostnameFromConfig('user ann\n'), undefined);
});

/** A home and a PATH for running the remote script here, as the remote login would. */
function fakeRemote(
  withNode: boolean,
  hashTools: readonly string[] = [],
): { home: string; bin: string; env: NodeJS.ProcessEnv } {
  const home = mkdtempSync(path.join(tmpdir(), 'fcp-ssh-cmd-'));
  const bin = path.join(home, 'bin');
  mkdirSync(bin);
  if (withNode)
    writeFileSync(path.join(bin, 'node'), `#!/bin/sh\nexec ${process.execPath} "$@"\n`, { mode: 0o755 });
  for (const tool of ['sh', 'printf', 'echo', '[', ...hashTools]) {
    // Only the tools the script needs, so no fcpd or node of this machine is found.
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (found.startsWith('/'))
      writeFileSync(path.join(bin, tool), `#!/bin/sh\nexec ${found} "$@"\n`, { mode: 0o755 });
  }
  return { home, bin, env: { HOME: home, PATH: bin } };
}

function runScript(script: string, env: NodeJS.ProcessEnv, input?: Buffer) {
  return spawnSync('/bin/sh', ['-c', loginShellCommand(script)], { env, input, encoding: 'utf8' });
}

test('the search: no fcpd, no node → the need-install line with node null', () => {
  const r = fakeRemote(false);
  try {
    const out = runScript(
      remoteFcpdScript({ kind: 'search', cachedName: 'fcpd-x.js' }, ['--serve-once']),
      r.env,
    );
    assert.is(out.stdout, 'FCPD-NEED-INSTALL {"node":null}\n');
  } finally {
    rmSync(r.home, { recursive: true, force: true });
  }
});

test('the search: node but no fcpd → node version; fcpd on PATH → it runs with the arguments', () => {
  const r = fakeRemote(true);
  try {
    const search = { kind: 'search', cachedName: 'fcpd-x.js' } as const;
    const out = runScript(remoteFcpdScript(search, ['--stdio', "/tmp/a b's"]), r.env);
    assert.is(out.stdout, `FCPD-NEED-INSTALL {"node":"${process.versions.node}"}\n`);
    writeFileSync(path.join(r.bin, 'fcpd'), '#!/bin/sh\nfor a; do echo "[$a]"; done\n', { mode: 0o755 });
    const ran = runScript(remoteFcpdScript(search, ['--stdio', "/tmp/a b's"]), r.env);
    assert.is(ran.stdout, "[--stdio]\n[/tmp/a b's]\n");
  } finally {
    rmSync(r.home, { recursive: true, force: true });
  }
});

test('install: the bundle lands in ~/.cache/fcp under its name, 0600, and the search then runs it', () => {
  const r = fakeRemote(true);
  try {
    const bundle = Buffer.from('console.log(JSON.stringify(process.argv.slice(2)))\n');
    const sha = createHash('sha256').update(bundle).digest('hex');
    const name = 'fcpd-0.1.0-0123456789abcdef.cjs';
    const argv = installArgv(parseSshCommand('ssh'), 'box', name, sha);
    const out = spawnSync('/bin/sh', ['-c', argv.at(-1)!], { env: r.env, input: bundle, encoding: 'utf8' });
    assert.is(out.status, 0, out.stderr);
    const installed = path.join(r.home, '.cache/fcp', name);
    assert.equal(readFileSync(installed), bundle);
    assert.is(statSync(installed).mode & 0o777, 0o600);
    assert.is(statSync(path.dirname(installed)).mode & 0o777, 0o700);
    assert.equal(readdirSync(path.dirname(installed)), [name], 'no temp file left');
    const ran = runScript(remoteFcpdScript({ kind: 'search', cachedName: name }, ['--serve-once']), r.env);
    assert.is(ran.stdout, '["--serve-once"]\n');
  } finally {
    rmSync(r.home, { recursive: true, force: true });
  }
});

for (const tool of ['sha256sum', 'shasum']) {
  test(`the cached bundle runs only while its ${tool} starts with its name's hash; else install again`, () => {
    const r = fakeRemote(true, [tool]);
    try {
      const bundle = Buffer.from('console.log(JSON.stringify(process.argv.slice(2)))\n');
      const name = `fcpd-0.1.0-${createHash('sha256').update(bundle).digest('hex').slice(0, 16)}.cjs`;
      mkdirSync(path.join(r.home, '.cache/fcp'), { recursive: true });
      const cached = path.join(r.home, '.cache/fcp', name);
      writeFileSync(cached, bundle, { mode: 0o600 });
      const search = remoteFcpdScript({ kind: 'search', cachedName: name }, ['--serve-once']);
      assert.is(runScript(search, r.env).stdout, '["--serve-once"]\n');
      // Damaged on disk or edited since: still valid JavaScript, but not what was installed.
      writeFileSync(cached, `${bundle.toString()}console.log("edited")\n`);
      const out = runScript(search, r.env);
      assert.is(out.stdout, `FCPD-NEED-INSTALL {"node":"${process.versions.node}"}\n`, out.stderr);
    } finally {
      rmSync(r.home, { recursive: true, force: true });
    }
  });
}

test('install: a damaged bundle or a cache dir others can write is refused, nothing installed', () => {
  const r = fakeRemote(true);
  try {
    const name = 'fcpd-0.1.0-0123456789abcdef.cjs';
    const argv = installArgv(parseSshCommand('ssh'), 'box', name, 'b'.repeat(64));
    const damaged = spawnSync('/bin/sh', ['-c', argv.at(-1)!], { env: r.env, input: 'x', encoding: 'utf8' });
    assert.is.not(damaged.status, 0);
    assert.match(damaged.stderr, /damaged/);
    assert.equal(readdirSync(path.join(r.home, '.cache/fcp')), []);
    execFileSync('chmod', ['0777', path.join(r.home, '.cache/fcp')]);
    const sha = createHash('sha256').update('x').digest('hex');
    const open = installArgv(parseSshCommand('ssh'), 'box', name, sha);
    const refused = spawnSync('/bin/sh', ['-c', open.at(-1)!], { env: r.env, input: 'x', encoding: 'utf8' });
    assert.is.not(refused.status, 0);
    assert.match(refused.stderr, /group and other cannot write/);
    assert.equal(readdirSync(path.join(r.home, '.cache/fcp')), []);
  } finally {
    rmSync(r.home, { recursive: true, force: true });
  }
});
test("carried ssh: glibc's malloc kept off mmap for channel buffers, unless the user set GLIBC_TUNABLES", () => {
  const env = carriedSshEnv({ PATH: '/bin', HOME: '/h' });
  assert.equal(env, { PATH: '/bin', HOME: '/h', GLIBC_TUNABLES: CARRIED_SSH_TUNABLES });
  assert.match(CARRIED_SSH_TUNABLES, /^glibc\.malloc\.mmap_threshold=\d+:glibc\.malloc\.trim_threshold=\d+$/);
  const theirs = { PATH: '/bin', GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0' };
  assert.equal(carriedSshEnv(theirs), theirs);
});

test.run();
