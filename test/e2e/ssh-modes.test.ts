// fcp over ssh (issue 17), every way the data can go: direct TLS to the fcpd that ssh started, carried
// inside one ssh per connection, the automatic choice as a user types it (no daemon on 7523), the fall back
// to carried when the port cannot be reached, the remote install and its reuse, and an unprivileged login
// user's rights. Real fcp, a real private sshd (test/helpers/sshd.ts), real files compared byte for byte;
// after each test nothing runs on the remote side and no ssh of ours is left (helpers/ssh-fcp.ts).
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { findLocalBundle } from '../../src/client/remote-install.js';
import { describeRun, parseSummary, runFcp } from '../helpers/cli.js';
import { MiB, writeRandomFile } from '../helpers/reliability.js';
import { cleanUp, sshd, tempDir } from '../helpers/ssh-fcp.js';
import { SSH_TEST_USER } from '../helpers/sshd.js';
import { test } from '../helpers/test.js';
import { compareTrees } from '../helpers/tree.js';

test.after.each(cleanUp);

/** A tree with a file big enough that the extra connections open, and small ones beside it. */
async function sourceTree(): Promise<string> {
  const root = path.join(tempDir(), 'src');
  mkdirSync(path.join(root, 'logs'), { recursive: true });
  await writeRandomFile(path.join(root, 'big.bin'), 6 * MiB + 123);
  for (let i = 0; i < 5; i++) writeFileSync(path.join(root, 'logs', `l${i}.gz`), `log ${i}\n`);
  writeFileSync(path.join(root, 'logs', 'skip.txt'), 'not a .gz\n');
  return root;
}

/** Pushes the tree to HOST:remote/ and pulls its logs back with a glob; both compared with the source. */
async function pushThenPull(args: string[], host: string): Promise<{ push: string; pull: string }> {
  const src = await sourceTree();
  const remote = tempDir('fcp-ssh-remote-');
  const pushed = await runFcp([...args, '-n', '4', 'push', src, `${host}:${remote}/`]);
  assert.is(pushed.code, 0, describeRun(pushed));
  assert.equal(await compareTrees(src, path.join(remote, 'src')), []);
  const local = tempDir('fcp-ssh-local-');
  const pulled = await runFcp([...args, 'pull', `${host}:${remote}/src/logs/*.gz`, '.'], { cwd: local });
  assert.is(pulled.code, 0, describeRun(pulled));
  assert.equal(readdirSync(local).sort(), ['l0.gz', 'l1.gz', 'l2.gz', 'l3.gz', 'l4.gz']);
  return { push: pushed.stderr, pull: pulled.stderr };
}

test('--ssh --ssh-transport=direct: push a tree and pull a glob', async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  const said = await pushThenPull([`--ssh=${s.sshCommand}`, '--ssh-transport=direct'], s.alias);
  assert.not.match(said.push + said.pull, /carrying/);
});

test('--ssh --ssh-transport=carried: the same, each connection its own ssh', async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  await pushThenPull([`--ssh=${s.sshCommand}`, '--ssh-transport=carried'], s.alias);
});

/** Whether something accepts connections on 127.0.0.1:7523 (the tests below need nothing there). */
function standingDaemonAt7523(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: 7523 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('as typed, with only an ssh config: no fcpd on 7523, so through ssh, said once (and not with -q)', async () => {
  assert.not.ok(await standingDaemonAt7523(), 'this test needs 127.0.0.1:7523 free');
  const s = await sshd({ path: { fcpd: true, node: true } });
  const said = await pushThenPull(['-F', s.sshConfigFile], s.alias);
  assert.match(said.push, /^fcp: no fcpd listening on 127\.0\.0\.1:7523; going through ssh$/m);
  assert.is(said.push.match(/going through ssh/g)?.length, 1);
  const quiet = await runFcp([
    '-q',
    '-F',
    s.sshConfigFile,
    'push',
    await sourceTree(),
    `${s.alias}:${tempDir()}/`,
  ]);
  assert.is(quiet.code, 0, describeRun(quiet));
  assert.is(quiet.stderr, '');
});

test("--ssh 'ssh -F FILE' as typed: fcp pull 'alias:/logs/*.gz' .", async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  await pushThenPull(['--ssh=' + s.sshCommand], s.alias);
});

test('the started fcpd cannot be reached directly (bound elsewhere): the data is carried through ssh', async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  // The client dials ssh's HostName, 127.0.0.1; the remote fcpd listens on 127.0.0.3 only, a firewall's effect.
  const said = await pushThenPull(
    [`--ssh=${s.sshCommand}`, '--remote-fcpd', 'fcpd --bind 127.0.0.3'],
    s.alias,
  );
  assert.match(said.push, /^fcp: 127\.0\.0\.1:\d+ not reachable directly; carrying the data through ssh$/m);
});

test('login output before the line is skipped; --remote-fcpd may be a command line', async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  const remoteFcpd = 'echo Welcome; echo "FCPD-SERVE-ONCEish junk"; cd / && fcpd';
  await pushThenPull(
    [`--ssh=${s.sshCommand}`, '--ssh-transport=direct', '--remote-fcpd', remoteFcpd],
    s.alias,
  );
});

test('over IPv6: ssh -G gives ::1, and the direct connections go there', async () => {
  const s = await sshd({ ipv6: true, path: { fcpd: true, node: true } });
  const said = await pushThenPull([`--ssh=${s.sshCommand}`, '-v'], s.alias6!);
  assert.not.match(said.push, /carrying/);
});

test("fcp's -i FILE is the key ssh logs in with too", async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  const config = s.configWith({ IdentityFile: '/nonexistent/key' });
  const r = await runFcp([
    '-F',
    config,
    '--ssh',
    '-i',
    s.keyFile,
    'push',
    await sourceTree(),
    `${s.alias}:${tempDir()}/`,
  ]);
  assert.is(r.code, 0, describeRun(r));
});

test('remote install: node but no fcpd gets the bundle in ~/.cache/fcp once; the next run reuses it, an edited one is replaced', async () => {
  const s = await sshd({ path: { fcpd: false, node: true } });
  const cache = path.join(s.home, '.cache/fcp');
  const src = await sourceTree();
  const first = await runFcp([`--ssh=${s.sshCommand}`, 'push', src, `${s.alias}:${tempDir()}/`]);
  assert.is(first.code, 0, describeRun(first));
  // `run` is the serve-once daemon's socket directory (without XDG_RUNTIME_DIR) and `v8` its code cache
  // (cli/compile-cache.ts), not the install's.
  const [bundle, ...others] = readdirSync(cache).filter((name) => name !== 'run' && name !== 'v8');
  assert.match(bundle ?? '', /^fcpd-0\.1\.0-[0-9a-f]{16}\.cjs$/);
  assert.equal(others, [], 'no temp file left');
  const before = statSync(path.join(cache, bundle!));
  assert.is(before.mode & 0o777, 0o600);
  assert.is(statSync(cache).mode & 0o777, 0o700);
  const second = await runFcp([`--ssh=${s.sshCommand}`, 'push', src, `${s.alias}:${tempDir()}/`]);
  assert.is(second.code, 0, describeRun(second));
  const after = statSync(path.join(cache, bundle!));
  assert.is(after.ino, before.ino, 'the same file, not installed again');
  assert.is(after.mtimeMs, before.mtimeMs);
  // Damaged on disk or edited since (still valid JavaScript): not run, but installed again over its name.
  const data = readFileSync(path.join(cache, bundle!));
  writeFileSync(path.join(cache, bundle!), Buffer.concat([data, Buffer.from('\n// edited\n')]));
  const third = await runFcp([`--ssh=${s.sshCommand}`, 'push', src, `${s.alias}:${tempDir()}/`]);
  assert.is(third.code, 0, describeRun(third));
  assert.ok(readFileSync(path.join(cache, bundle!)).equals(data), 'the edited copy was installed again');
});

test('remote install: a package.json of "type": "module" in the login user\'s home does not stop the bundle', async () => {
  // node reads the nearest package.json above a .js file for its module type; the cached bundle is CommonJS.
  const s = await sshd({ path: { fcpd: false, node: true } });
  writeFileSync(path.join(s.home, 'package.json'), '{"type": "module"}\n');
  const r = await runFcp([`--ssh=${s.sshCommand}`, 'push', await sourceTree(), `${s.alias}:${tempDir()}/`]);
  assert.is(r.code, 0, describeRun(r));
});

test('remote install over a crashed install of the same pid: installed; old leftovers go, links stay', async () => {
  const bundle = await findLocalBundle();
  assert.ok(bundle !== undefined, 'no dist/bin/fcpd.js to install');
  // The remote `node` plants, for the install only, the leftover a crashed install of this very pid would
  // have left ($$ is the pid node gets by exec): before the fix, open(..., "wx") failed with EEXIST.
  const tools = tempDir('fcp-ssh-tools-');
  const plant = `"$HOME"/.cache/fcp/.${bundle.name}.$$.tmp`;
  const wrapper = `#!/bin/sh\nif [ "$1" = "-e" ]; then mkdir -p "$HOME"/.cache/fcp && : > ${plant}; fi\nexec ${process.execPath} "$@"\n`;
  writeFileSync(path.join(tools, 'node'), wrapper, { mode: 0o755 });
  const s = await sshd({ path: `${tools}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` });
  const cache = path.join(s.home, '.cache/fcp');
  mkdirSync(cache, { recursive: true, mode: 0o700 });
  chmodSync(path.dirname(cache), 0o700);
  const hoursAgo = (Date.now() - 2 * 3_600_000) / 1000;
  const oldLeftover = path.join(cache, `.${bundle.name}.4242.tmp`);
  writeFileSync(oldLeftover, 'half a bundle');
  utimesSync(oldLeftover, hoursAgo, hoursAgo);
  const victim = path.join(tempDir(), 'victim');
  writeFileSync(victim, 'not ours to remove\n');
  const link = path.join(cache, '.fcpd-link.tmp');
  symlinkSync(victim, link);
  lutimesSync(link, hoursAgo, hoursAgo);

  const r = await runFcp([`--ssh=${s.sshCommand}`, 'push', await sourceTree(), `${s.alias}:${tempDir()}/`]);
  assert.is(r.code, 0, describeRun(r));
  assert.ok(readFileSync(path.join(cache, bundle.name)).equals(bundle.data), 'the bundle was not installed');
  assert.not.ok(existsSync(oldLeftover), 'an hour-old leftover was kept');
  assert.ok(lstatSync(link).isSymbolicLink(), 'a link was removed');
  assert.is(readFileSync(victim, 'utf8'), 'not ours to remove\n');
});

test("an unprivileged login user: the transfer has that user's rights, no more", async () => {
  const s = await sshd({ user: SSH_TEST_USER, path: { fcpd: true, node: true } });
  const src = await sourceTree();
  const mine = await runFcp([`--ssh=${s.sshCommand}`, 'push', path.join(src, 'logs'), `${s.alias}:in/`]);
  assert.is(mine.code, 0, describeRun(mine));
  const landed = path.join(s.home, 'in', 'logs', 'l0.gz');
  assert.is(statSync(landed).uid, statSync(s.home).uid, 'written as the login user, in its HOME');
  // Root's directory, which the login user may read but not write.
  const closed = tempDir('fcp-ssh-closed-');
  chownSync(closed, 0, 0);
  chmodSync(closed, 0o755);
  const denied = await runFcp([
    `--ssh=${s.sshCommand}`,
    'push',
    path.join(src, 'big.bin'),
    `${s.alias}:${closed}/`,
  ]);
  assert.is(denied.code, 2, describeRun(denied));
  assert.match(denied.stderr, /permission denied/);
  assert.not.ok(existsSync(path.join(closed, 'big.bin')));
  assert.is(parseSummary(mine.stdout)?.sent, 6);
});

test.run();
