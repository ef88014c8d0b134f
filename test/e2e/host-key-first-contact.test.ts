// Issue 15, item 2: `--accept-host-key FP` is what the user checked out of band, so on first contact too a
// daemon presenting another key is refused (exit 7, both fingerprints named, known_hosts untouched); and
// trust on first use says what it pinned, once, on stderr (unless -q). The daemon has no token, so the
// client pins its key and logs in with an SSH key; as root it is a root-started `fcpd --user` (a daemon on
// this host is trusted on first use only when its socket is ours or root's, spec/SECURITY.md §4.2).
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import {
  describeRun,
  type Identity,
  isRoot,
  type RunResult,
  runFcp,
  runFcpd,
  TEST_USER,
  unprivileged,
} from '../helpers/cli.js';
import { type ChildDaemon, HOST, spawnDaemon } from '../helpers/daemon.js';
import { generateKey, type TestKey } from '../helpers/ssh-keys.js';
import { removeTree } from '../helpers/tree.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'fcp-e2e-first-contact-'));
chmodSync(tmp, 0o755);
const payload = path.join(tmp, 'payload.txt');
writeFileSync(payload, 'pinned bytes\n');
/** A fingerprint of the right form that no key has. */
const WRONG_FP = `SHA256:${'A'.repeat(43)}`;
let user: Identity = {};
let daemon: ChildDaemon;
let served = '';
let realFp = '';
let configs = 0;
let key: TestKey;

/** A directory the daemon's account owns. */
function ownedDir(name: string): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  if (user.uid !== undefined) chownSync(dir, user.uid, user.gid ?? user.uid);
  return dir;
}

/** A fresh, empty client config directory: no known_hosts yet. */
function freshConfig(): { dir: string; knownHosts: string } {
  const dir = path.join(tmp, `config-${++configs}`);
  return { dir, knownHosts: path.join(dir, 'known_hosts') };
}

/** fcp ARGS... with the key the daemon authorizes, `config`'s known_hosts and no ssh-agent. */
function fcp(args: string[], config: { dir: string }): Promise<RunResult> {
  return runFcp([...args.slice(0, 1), '-i', key.path, ...args.slice(1)], {
    env: { FCP_CONFIG_DIR: config.dir, SSH_AUTH_SOCK: '' },
  });
}

test.before(async () => {
  user = unprivileged();
  served = ownedDir('served');
  const state = ownedDir('state');
  key = await generateKey(tmp, 'ed25519', 'client-key');
  const authorizedKeys = path.join(tmp, 'authorized_keys');
  writeFileSync(authorizedKeys, `${key.publicLine}\n`, { mode: 0o644 });
  // Root's daemon serves key logins only with --user (spec/SECURITY.md §8).
  const asUser = isRoot() ? ['--user', TEST_USER] : [];
  const args = ['--no-local-token', '--authorized-keys', authorizedKeys, ...asUser];
  daemon = await spawnDaemon({ root: served, args, env: { FCPD_STATE_DIR: state } });
  const fp = await runFcpd(['--fingerprint'], { ...user, env: { FCPD_STATE_DIR: state } });
  assert.is(fp.code, 0, describeRun(fp));
  realFp = fp.stdout.trim();
});

test.after(async () => {
  await daemon.stop();
  await removeTree(tmp);
});

test('--accept-host-key with another fingerprint on first contact: exit 7, both named, nothing pinned', async () => {
  const config = freshConfig();
  const r = await fcp(['push', '--accept-host-key', WRONG_FP, payload, daemon.remote('wrong.txt')], config);
  assert.is(r.code, EXIT.AUTH, describeRun(r));
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, describeRun(r));
  assert.ok(lines[0]!.includes(realFp) && lines[0]!.includes(WRONG_FP), describeRun(r));
  assert.not.ok(existsSync(config.knownHosts), 'known_hosts written');
  assert.not.ok(existsSync(path.join(served, 'wrong.txt')), 'the copy ran');
  // The daemon never saw a proof: the client stopped before authenticating.
  assert.not.match(daemon.stderr(), /authenticated by/);
});

test('first contact pins the key and says so in one line; the next run says nothing; -q is silent', async () => {
  const config = freshConfig();
  const first = await fcp(['push', payload, daemon.remote('first.txt')], config);
  assert.is(first.code, EXIT.OK, describeRun(first));
  assert.is(
    first.stderr,
    `fcp: pinned host key ${realFp} for ${HOST}:${daemon.port} in ${config.knownHosts}\n`,
    describeRun(first),
  );
  assert.match(await readFile(config.knownHosts, 'utf8'), `${HOST}:${daemon.port} ${realFp}`);
  const again = await fcp(['push', payload, daemon.remote('again.txt')], config);
  assert.is(again.code, EXIT.OK, describeRun(again));
  assert.is(again.stderr, '', describeRun(again));

  const quiet = freshConfig();
  const q = await fcp(['push', '-q', payload, daemon.remote('quiet.txt')], quiet);
  assert.is(q.code, EXIT.OK, describeRun(q));
  assert.is(q.stderr, '', describeRun(q));
  assert.ok(existsSync(quiet.knownHosts), 'pinned under -q too');
});

test('--accept-host-key with the right fingerprint on first contact pins it and says so', async () => {
  const config = freshConfig();
  const r = await fcp(['push', '--accept-host-key', realFp, payload, daemon.remote('right.txt')], config);
  assert.is(r.code, EXIT.OK, describeRun(r));
  assert.match(r.stderr, `pinned host key ${realFp}`);
  assert.match(await readFile(config.knownHosts, 'utf8'), realFp);
});

test.run();
