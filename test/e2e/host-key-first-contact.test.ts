// Issue 15, item 2: `--accept-host-key FP` is what the user checked out of band, so on first contact too a
// daemon presenting another key is refused (exit 7, both fingerprints named, known_hosts untouched); and
// trust on first use says what it pinned, once, on stderr (unless -q). The daemon runs as the unprivileged
// test account, so the client (root) does not let that daemon's token vouch for its key and pins it.
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import { describeRun, type Identity, runFcp, runFcpd, unprivileged } from '../helpers/cli.js';
import { type ChildDaemon, HOST, spawnDaemon } from '../helpers/daemon.js';
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

test.before(async () => {
  user = unprivileged();
  served = ownedDir('served');
  const state = ownedDir('state');
  daemon = await spawnDaemon({ root: served, ...user, env: { FCPD_STATE_DIR: state } });
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
  const r = await runFcp(['push', '--accept-host-key', WRONG_FP, payload, daemon.remote('wrong.txt')], {
    env: { FCP_CONFIG_DIR: config.dir },
  });
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
  const env = { env: { FCP_CONFIG_DIR: config.dir } };
  const first = await runFcp(['push', payload, daemon.remote('first.txt')], env);
  assert.is(first.code, EXIT.OK, describeRun(first));
  assert.is(
    first.stderr,
    `fcp: pinned host key ${realFp} for ${HOST}:${daemon.port} in ${config.knownHosts}\n`,
    describeRun(first),
  );
  assert.match(await readFile(config.knownHosts, 'utf8'), `${HOST}:${daemon.port} ${realFp}`);
  const again = await runFcp(['push', payload, daemon.remote('again.txt')], env);
  assert.is(again.code, EXIT.OK, describeRun(again));
  assert.is(again.stderr, '', describeRun(again));

  const quiet = freshConfig();
  const q = await runFcp(['push', '-q', payload, daemon.remote('quiet.txt')], {
    env: { FCP_CONFIG_DIR: quiet.dir },
  });
  assert.is(q.code, EXIT.OK, describeRun(q));
  assert.is(q.stderr, '', describeRun(q));
  assert.ok(existsSync(quiet.knownHosts), 'pinned under -q too');
});

test('--accept-host-key with the right fingerprint on first contact pins it and says so', async () => {
  const config = freshConfig();
  const r = await runFcp(['push', '--accept-host-key', realFp, payload, daemon.remote('right.txt')], {
    env: { FCP_CONFIG_DIR: config.dir },
  });
  assert.is(r.code, EXIT.OK, describeRun(r));
  assert.match(r.stderr, `pinned host key ${realFp}`);
  assert.match(await readFile(config.knownHosts, 'utf8'), realFp);
});

test.run();
