// Security review, session 12 (MEDIUM): a local account that takes over the loopback port of root's daemon
// was trusted on first use, and root even logged in with that account's token. Now (spec/SECURITY.md §4.2,
// §5.4) a daemon on this host is pinned on first contact only when its listening socket is ours or root's,
// and a client uses no token file but its own. The daemon runs as `fcpuser-squat`; root is the client.
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import { type Account, accountWithHome } from '../helpers/accounts.js';
import { describeRun, isRoot, type RunResult, runFcp, runFcpd } from '../helpers/cli.js';
import { type ChildDaemon, HOST, spawnDaemon } from '../helpers/daemon.js';
import { generateKey, type TestKey } from '../helpers/ssh-keys.js';
import { test } from '../helpers/test.js';
import { removeTree } from '../helpers/tree.js';

const USER = 'fcpuser-squat';
const enabled = isRoot();
const tmp = mkdtempSync(path.join(tmpdir(), 'fcp-e2e-squat-'));
chmodSync(tmp, 0o755);
const secret = path.join(tmp, 'secret.txt');
writeFileSync(secret, 'root only\n', { mode: 0o600 });
let account: Account;
let key: TestKey;
let authorizedKeys = '';
let configs = 0;
const daemons: ChildDaemon[] = [];

/** A directory the squatting account owns. */
function ownedDir(name: string): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  chownSync(dir, account.uid, account.gid);
  return dir;
}

/** A fresh client config directory (no known_hosts yet) and its known_hosts path. */
function freshConfig(): { dir: string; knownHosts: string } {
  const dir = path.join(tmp, `config-${++configs}`);
  return { dir, knownHosts: path.join(dir, 'known_hosts') };
}

/** fcp as root with `config`'s known_hosts and no ssh-agent. */
function fcp(args: string[], config: { dir: string }): Promise<RunResult> {
  return runFcp(args, { env: { FCP_CONFIG_DIR: config.dir, SSH_AUTH_SOCK: '' } });
}

/** fcpd run by the account itself, with its token and the key root holds authorized. */
async function squatter(): Promise<{ daemon: ChildDaemon; served: string; fingerprint: string }> {
  const served = ownedDir(`served-${daemons.length}`);
  const env = { FCPD_STATE_DIR: ownedDir(`state-${daemons.length}`) };
  const ids = { uid: account.uid, gid: account.gid };
  const daemon = await spawnDaemon({
    root: served,
    ...ids,
    env,
    args: ['--authorized-keys', authorizedKeys],
  });
  daemons.push(daemon);
  const fp = await runFcpd(['--fingerprint'], { ...ids, env });
  assert.is(fp.code, 0, describeRun(fp));
  return { daemon, served, fingerprint: fp.stdout.trim() };
}

test.before(async () => {
  if (!enabled) return;
  account = accountWithHome(USER);
  key = await generateKey(tmp, 'ed25519', 'root-key');
  const keysDir = ownedDir('keys');
  authorizedKeys = path.join(keysDir, 'authorized_keys');
  writeFileSync(authorizedKeys, `${key.publicLine}\n`, { mode: 0o644 });
  chownSync(authorizedKeys, account.uid, account.gid);
});

test.after(async () => {
  for (const d of daemons) await d.stop();
  await removeTree(tmp);
});

test("another account's daemon on loopback: refused on first contact, one line, nothing sent or pinned", async () => {
  if (!enabled) return; // needs root and a second account
  const { daemon, served, fingerprint } = await squatter();
  const config = freshConfig();
  const r = await fcp(['push', '-i', key.path, secret, daemon.remote('x.txt')], config);
  assert.is(r.code, EXIT.AUTH, describeRun(r));
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, describeRun(r));
  assert.ok(lines[0]!.includes(`${HOST}:${daemon.port}`), describeRun(r));
  assert.ok(lines[0]!.includes(fingerprint), describeRun(r));
  assert.match(lines[0]!, new RegExp(`uid ${account.uid}`));
  assert.match(lines[0]!, /--accept-host-key/);
  assert.not.ok(existsSync(path.join(served, 'x.txt')), 'the file was sent');
  assert.not.ok(existsSync(config.knownHosts), 'a pin was saved');
  assert.not.match(daemon.stderr(), /authenticated by/);
  // A dry run is no way around it either.
  const dry = await fcp(['push', '--dry-run', '-i', key.path, secret, daemon.remote('x.txt')], config);
  assert.is(dry.code, EXIT.AUTH, describeRun(dry));
});

test('--accept-host-key with its fingerprint: the push goes (by key) and the pin is saved for next time', async () => {
  if (!enabled) return; // needs root and a second account
  const { daemon, served, fingerprint } = await squatter();
  const config = freshConfig();
  const args = ['push', '-i', key.path, secret, daemon.remote('ok.txt')];
  const r = await fcp(['--accept-host-key', fingerprint, ...args], config);
  assert.is(r.code, EXIT.OK, describeRun(r));
  assert.is(await readFile(path.join(served, 'ok.txt'), 'utf8'), 'root only\n');
  const pins = await readFile(config.knownHosts, 'utf8');
  assert.ok(pins.includes(`${HOST}:${daemon.port} ${fingerprint}\n`), pins);
  const again = await fcp(args, config);
  assert.is(again.code, EXIT.OK, describeRun(again));
});

test("root never uses another account's token: -v says why, and with no key of its own it is refused", async () => {
  if (!enabled) return; // needs root and a second account
  const { daemon, served, fingerprint } = await squatter();
  const config = freshConfig();
  const r = await fcp(
    ['push', '-v', '--accept-host-key', fingerprint, secret, daemon.remote('t.txt')],
    config,
  );
  assert.is(r.code, EXIT.AUTH, describeRun(r));
  assert.match(r.stderr, /not using the token \S+fcpd-token-\d+: .*owned by uid \d+, not by us \(0\)/);
  assert.match(r.stderr, /no SSH key or local token/);
  assert.not.ok(existsSync(path.join(served, 't.txt')), 'the file was sent');
});

test("root's fcpd --user NAME: its socket is root's, so first contact pins it as before", async () => {
  if (!enabled) return; // needs root and a second account
  const served = ownedDir('served-user');
  const env = { FCPD_STATE_DIR: ownedDir('state-user') };
  const args = ['--user', USER, '--authorized-keys', authorizedKeys];
  const daemon = await spawnDaemon({ root: served, env, args });
  daemons.push(daemon);
  const config = freshConfig();
  const r = await fcp(['push', '-i', key.path, secret, daemon.remote('first.txt')], config);
  assert.is(r.code, EXIT.OK, describeRun(r));
  assert.match(r.stderr, new RegExp(`pinned host key SHA256:\\S+ for ${HOST}:${daemon.port}`));
  assert.ok(existsSync(path.join(served, 'first.txt')));
});

test.run();
