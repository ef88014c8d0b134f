// What a default fcpd serves (issue 15 item 8; README "Copying", spec/SECURITY.md §11): without --root, what
// its account may open. Absolute remote paths are absolute, relative ones start at the account's HOME, the
// kernel's permissions are the boundary, and below the operand the peer's paths stay confined. The daemon
// runs as the unprivileged test account (root would ignore permission bits) with a HOME of its own; the
// client runs as that account too and logs in with the daemon's same-host token (a client uses no other
// account's token, spec/SECURITY.md §5.4).
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { ERROR_CODES, FileKind, type FileInfoMsg, MsgType, ReadyAction } from '../../src/protocol/index.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { describeRun, type Identity, type RunResult, runFcp, unprivileged } from '../helpers/cli.js';
import { type ChildDaemon, spawnDaemon, startInProcessDaemon } from '../helpers/daemon.js';
import { openPush } from '../helpers/raw-peer.js';
import { buildTree, compareTrees } from '../helpers/tree.js';
import { execFileSync } from '../helpers/sync.js';

const tmp = realpathSync(mkdtempSync(path.join(tmpdir(), 'fcp-e2e-served-')));
chmodSync(tmp, 0o755);
/** The daemon's HOME, and a tree elsewhere its account owns. */
const home = path.join(tmp, 'home');
const pub = path.join(tmp, 'pub');
/** What a followed link would reach: owned by the account too, so only confinement keeps it unchanged. */
const outside = path.join(tmp, 'outside');
const work = path.join(tmp, 'work');
let user: Identity = {};
let daemon: ChildDaemon;
const daemons: ChildDaemon[] = [];

async function start(args: { root?: string } = {}): Promise<ChildDaemon> {
  const d = await spawnDaemon({ ...user, ...args, env: { HOME: home } });
  daemons.push(d);
  return d;
}

function chownToUser(...dirs: string[]): void {
  if (user.uid === undefined) return;
  execFileSync('chown', ['-R', `${user.uid}:${user.gid ?? user.uid}`, ...dirs]);
}

function fcp(args: string[], cwd = work): Promise<RunResult> {
  return runFcp(args, { cwd, ...user });
}

function expectPathError(r: RunResult, names: string, what: RegExp): void {
  assert.is(r.code, EXIT.PATH, describeRun(r));
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, describeRun(r));
  assert.ok(lines[0]!.includes(names), `names ${names}: ${describeRun(r)}`);
  assert.match(lines[0]!, what, describeRun(r));
}

test.before(async () => {
  user = unprivileged();
  for (const dir of [home, pub, outside, work]) mkdirSync(dir);
  await buildTree(path.join(work, 'dir'), [
    { kind: 'file', path: 'a.txt', size: 1234, seed: 1 },
    { kind: 'file', path: 'sub/b.bin', size: 70_000, seed: 2 },
  ]);
  mkdirSync(path.join(pub, 'logs'));
  for (const name of ['one.gz', 'two.gz', 'notes.txt']) writeFileSync(path.join(pub, 'logs', name), name);
  writeFileSync(path.join(outside, 'victim.txt'), 'must never change\n');
  symlinkSync(pub, path.join(tmp, 'via'));
  chownToUser(home, pub, outside, work);
  daemon = await start();
});

test.after(async () => {
  for (const d of daemons) await d.stop();
  rmSync(tmp, { recursive: true, force: true });
});

test('the design card: fcp push ./dir host:/abs/dst works against a default fcpd', async () => {
  const dst = path.join(pub, 'dst');
  const r = await fcp(['push', './dir', daemon.remote(dst)]);
  assert.is(r.code, 0, describeRun(r));
  assert.equal(await compareTrees(path.join(work, 'dir'), path.join(dst, 'dir')), []);
  // The link the client named is the kernel's to follow, as `scp file host:/via/...` does.
  const viaLink = await fcp(['push', './dir/', daemon.remote(`${tmp}/via/dst2`)]);
  assert.is(viaLink.code, 0, describeRun(viaLink));
  assert.equal(await compareTrees(path.join(work, 'dir'), path.join(pub, 'dst2')), []);
});

test('relative remote paths start at the account home', async () => {
  const r = await fcp(['push', './dir', daemon.remote('incoming/')]);
  assert.is(r.code, 0, describeRun(r));
  assert.equal(await compareTrees(path.join(work, 'dir'), path.join(home, 'incoming', 'dir')), []);
  const back = path.join(work, 'back');
  const p = await fcp(['pull', daemon.remote('incoming/dir'), back]);
  assert.is(p.code, 0, describeRun(p));
  assert.equal(await compareTrees(path.join(work, 'dir'), path.join(back, 'dir')), []);
});

test("the design card: fcp pull 'host:/abs/logs/*.gz' . works against a default fcpd", async () => {
  const here = path.join(tmp, 'pulled');
  mkdirSync(here);
  chownToUser(here);
  const r = await fcp(['pull', daemon.remote(`${pub}/logs/*.gz`), '.'], here);
  assert.is(r.code, 0, describeRun(r));
  assert.equal((await readdir(here)).sort(), ['one.gz', 'two.gz']);
  assert.is(await readFile(path.join(here, 'one.gz'), 'utf8'), 'one.gz');
});

test("the kernel's permissions are the boundary: what the account cannot write or read fails, naming it", async () => {
  // Not the account's to write (root's, or 0555), and not its to read at all (0000).
  const ro = path.join(tmp, 'read-only');
  const secret = path.join(tmp, 'secret');
  mkdirSync(ro);
  mkdirSync(secret);
  writeFileSync(path.join(secret, 'key.gz'), 'secret');
  chmodSync(ro, 0o555);
  chmodSync(secret, 0o000);
  try {
    expectPathError(
      await fcp(['push', './dir', daemon.remote(`${ro}/new`)]),
      `${ro}/new`,
      /permission denied/,
    );
    expectPathError(await fcp(['pull', daemon.remote(`${secret}/*.gz`), '.']), secret, /permission denied/);
    expectPathError(await fcp(['pull', daemon.remote(`${secret}/key.gz`), '.']), secret, /permission denied/);
    // An existing destination it cannot write: every file fails on its own (the exit code is item 9's).
    const into = await fcp(['push', './dir/a.txt', daemon.remote(`${ro}/`)]);
    assert.is.not(into.code, 0, describeRun(into));
    assert.match(into.stderr, /permission denied|EACCES/, describeRun(into));
    assert.equal(await readdir(ro), []);
  } finally {
    chmodSync(ro, 0o755);
    chmodSync(secret, 0o755);
  }
});

test('a link planted in the destination is still never followed by a default fcpd', async () => {
  const planted = path.join(pub, 'planted');
  mkdirSync(planted);
  symlinkSync(outside, path.join(planted, 'dirlink'));
  symlinkSync(path.join(outside, 'victim.txt'), path.join(planted, 'filelink'));
  chownToUser(planted);
  const fileInfo = (id: number, p: string, more: Partial<FileInfoMsg> = {}): FileInfoMsg => ({
    type: MsgType.FileInfo,
    id,
    kind: FileKind.File,
    mode: 0o644,
    size: 5n,
    mtimeNs: 1_500_000_000n * 1_000_000_000n,
    checksum: undefined,
    path: p,
    linkTarget: '',
    ...more,
  });
  // In process, as us: the raw peer reads the daemon's token, which must then be ours.
  const inProcess = await startInProcessDaemon({ more: { home } });
  const { peer } = await openPush(inProcess.port, `${planted}/`);
  try {
    // A hostile peer names entries through the planted link, and plants one of its own first.
    await peer.send(fileInfo(1, 'dirlink/pwned'));
    await peer.send(
      fileInfo(2, 'evil', { kind: FileKind.Symlink, mode: 0o777, size: 0n, linkTarget: outside }),
    );
    await peer.send(fileInfo(3, 'evil/pwned'));
    const symlinkRefused = ERROR_CODES.FCP_ERR_PATH_SYMLINK.wire;
    for (const id of [1, 3]) {
      const answer = await peer.waitAnswer(id);
      assert.is(answer.ready?.action, ReadyAction.Fail, `entry ${id}`);
      assert.is(answer.ready?.code, symlinkRefused, `entry ${id}`);
    }
  } finally {
    peer.destroy();
    await inProcess.stop();
  }
  assert.equal(await readdir(outside), ['victim.txt']);
  // The real client writing a file where a link to a file stands replaces the link, not what it points to.
  writeFileSync(path.join(work, 'filelink'), 'pushed');
  const r = await fcp(['push', './filelink', daemon.remote(`${planted}/`)]);
  assert.is(r.code, 0, describeRun(r));
  assert.is(await readFile(path.join(outside, 'victim.txt'), 'utf8'), 'must never change\n');
  assert.is(await readFile(path.join(planted, 'filelink'), 'utf8'), 'pushed');
});

test('with --root the old confinement holds, and the error names the served root', async () => {
  const confined = await start({ root: home });
  expectPathError(
    await fcp(['push', './dir', confined.remote(`${pub}/dst3`)]),
    `outside the served root ${home}`,
    new RegExp(`^fcp: ${pub}/dst3`),
  );
  expectPathError(
    await fcp(['pull', confined.remote(`${pub}/logs/*.gz`), '.']),
    `outside the served root ${home}`,
    /logs/,
  );
  // Relative paths still resolve under the root, and a link on the way out of it is refused, naming it.
  symlinkSync(pub, path.join(home, 'via-pub'));
  const link = await fcp(['push', './dir', confined.remote('via-pub/dst4')]);
  expectPathError(link, home, /symbolic link/);
  assert.equal((await readdir(pub)).includes('dst3') || (await readdir(pub)).includes('dst4'), false);
});

test.run();
