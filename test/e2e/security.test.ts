// Authentication end to end (spec/SECURITY.md §4, §5, §8): the built fcpd and fcp as child processes, keys
// made by the real ssh-keygen, a real `ssh-agent -D -a SOCK`. The daemon serves the unprivileged test
// account (as root: root's `fcpd --user`) with SSH keys only (--no-local-token), so every login is a key
// login; the client runs as us with a private known_hosts (FCP_CONFIG_DIR) and no agent unless a test
// starts one.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { MsgType } from '../../src/protocol/index.js';
import { makeHostProof } from '../../src/security/proofs.js';
import { generateKx } from '../../src/security/session-secret.js';
import type { Handshake } from '../../src/security/transcript.js';
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
import { exchangeHello, helloMsg, RawListener, RawPeer } from '../helpers/raw-peer.js';
import { waitUntil } from '../helpers/reliability.js';
import { generateKey, removeDir, startAgent, type TestAgent, type TestKey } from '../helpers/ssh-keys.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'fcp-e2e-security-'));
chmodSync(tmp, 0o755);
let user: Identity = {};
let keys: { a: TestKey; b: TestKey; c: TestKey; enc: TestKey };
/** authorized_keys of the served account (key a) and of "another account" (key c). */
let authorizedKeys = '';
let otherAccountKeys = '';
let served = '';
let daemon: ChildDaemon;
let configDir = '';
let payload = '';
const agents: TestAgent[] = [];
const daemons: ChildDaemon[] = [];

/** A directory the served account owns (the daemon writes there as that account). */
function ownedDir(name: string): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  if (user.uid !== undefined) chownSync(dir, user.uid, user.gid ?? user.uid);
  return dir;
}

/** fcp as us, with the suite's known_hosts and no ssh-agent unless `env` names one. */
function fcp(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return runFcp(args, { env: { FCP_CONFIG_DIR: configDir, SSH_AUTH_SOCK: '', ...env } });
}

function expectExit(r: RunResult, code: number, what: string): void {
  assert.is(r.code, code, `${what}: ${describeRun(r)}`);
}

/**
 * As root, root's `fcpd --user` serving the account: its socket is root's, so the client may pin its key on
 * first contact (a daemon the account started itself would not be, spec/SECURITY.md §4.2).
 */
async function startDaemon(opts: { root: string; port?: number; stateDir?: string }): Promise<ChildDaemon> {
  const asUser = isRoot() ? ['--user', TEST_USER] : [];
  const d = await spawnDaemon({
    root: opts.root,
    ...(opts.port === undefined ? {} : { port: opts.port }),
    env: { FCPD_STATE_DIR: opts.stateDir ?? ownedDir(`state-${daemons.length}`) },
    args: ['--no-local-token', '--authorized-keys', authorizedKeys, ...asUser],
  });
  daemons.push(d);
  return d;
}

test.before(async () => {
  user = unprivileged();
  const keyDir = path.join(tmp, 'keys');
  mkdirSync(keyDir);
  keys = {
    a: await generateKey(keyDir, 'ed25519', 'a'),
    b: await generateKey(keyDir, 'ecdsa-256', 'b'),
    c: await generateKey(keyDir, 'rsa', 'c'),
    enc: await generateKey(keyDir, 'ed25519', 'enc', { passphrase: 'correct horse' }),
  };
  // sshd's StrictModes, which fcpd applies too: the file and its directory belong to the account or root and
  // nobody else may write them.
  const akDir = path.join(tmp, 'authorized');
  mkdirSync(akDir, { mode: 0o755 });
  chmodSync(akDir, 0o755);
  authorizedKeys = path.join(akDir, 'authorized_keys');
  otherAccountKeys = path.join(akDir, 'other_account_keys');
  await writeFile(authorizedKeys, `# the served account\n${keys.a.publicLine}\n`, { mode: 0o644 });
  await writeFile(otherAccountKeys, `${keys.c.publicLine}\n`, { mode: 0o644 });
  configDir = path.join(tmp, 'config');
  payload = path.join(tmp, 'payload.txt');
  await writeFile(payload, 'authenticated bytes\n');
  served = ownedDir('served');
  daemon = await startDaemon({ root: served });
});

test.after(async () => {
  for (const a of agents) await a.stop();
  for (const d of daemons) await d.stop();
  await removeDir(tmp);
});

test('a key listed in authorized_keys logs in (-i), the file arrives, the host key is pinned', async () => {
  const r = await fcp(['push', '-i', keys.a.path, payload, daemon.remote('a.txt')]);
  expectExit(r, EXIT.OK, 'push with key a');
  assert.is(await readFile(path.join(served, 'a.txt'), 'utf8'), 'authenticated bytes\n');
  const pins = await readFile(path.join(configDir, 'known_hosts'), 'utf8');
  assert.match(pins, new RegExp(`^127\\.0\\.0\\.1:${daemon.port} SHA256:[A-Za-z0-9+/]{43}$`, 'm'));
  // On the session's one log line, written once the daemon has read the client's last message.
  await waitUntil(
    () => /authenticated by publickey SHA256:/.test(daemon.stderr()),
    'the session line',
    10_000,
  );
});

test('an unknown key is refused: exit 7, nothing written, the reason only in the daemon log', async () => {
  const r = await fcp(['push', '-i', keys.b.path, payload, daemon.remote('unknown/b.txt')]);
  expectExit(r, EXIT.AUTH, 'push with an unknown key');
  assert.match(r.stderr, /^fcp: authentication refused/m);
  assert.not.match(r.stderr, /authorized_keys/, 'the client learns nothing about the daemon files');
  assert.not.ok(statSync(path.join(served, 'unknown'), { throwIfNoEntry: false }), 'destination created');
  assert.match(daemon.stderr(), /key not in authorized_keys/);
});

test('a key of another account is refused, and a listed key cannot ask for another account', async () => {
  assert.match(await readFile(otherAccountKeys, 'utf8'), /^ssh-rsa /);
  const other = await fcp(['push', '-i', keys.c.path, payload, daemon.remote('other/c.txt')]);
  expectExit(other, EXIT.AUTH, "push with another account's key");
  const asRoot = await fcp(['push', '-i', keys.a.path, payload, `root@${daemon.remote('other/a.txt')}`]);
  expectExit(asRoot, EXIT.AUTH, 'push as root@ with the served account key');
  assert.not.ok(statSync(path.join(served, 'other'), { throwIfNoEntry: false }), 'destination created');
  if (user.uid !== undefined) {
    const asUser = await fcp([
      'push',
      '-i',
      keys.a.path,
      payload,
      `${TEST_USER}@${daemon.remote('named.txt')}`,
    ]);
    expectExit(asUser, EXIT.OK, `push as ${TEST_USER}@`);
  }
});

test('keys in a real ssh-agent: the refused one is retried past, the listed one logs in', async () => {
  const agentDir = path.join(tmp, 'agent');
  mkdirSync(agentDir);
  const agent = await startAgent(agentDir);
  agents.push(agent);
  agent.add(keys.b.path); // first in the agent's order: refused, AUTH_RETRY
  agent.add(keys.a.path);
  const r = await fcp(['push', '-v', payload, daemon.remote('agent.txt')], { SSH_AUTH_SOCK: agent.socket });
  expectExit(r, EXIT.OK, 'push through ssh-agent');
  assert.match(r.stderr, /offering ecdsa-sha2-nistp256 .*ssh-agent/);
  assert.is(await readFile(path.join(served, 'agent.txt'), 'utf8'), 'authenticated bytes\n');
  // With -i naming a key the agent holds, the agent signs (the file is never read: it could be encrypted).
  const viaAgent = await fcp(['push', '-i', keys.a.path, payload, daemon.remote('agent2.txt')], {
    SSH_AUTH_SOCK: agent.socket,
  });
  expectExit(viaAgent, EXIT.OK, 'push -i through ssh-agent');
  await agent.stop();
});

test('an encrypted key file and no agent: exit 7 with the ssh-add message; no key at all: says so', async () => {
  const r = await fcp(['push', '-i', keys.enc.path, payload, daemon.remote('enc.txt')]);
  expectExit(r, EXIT.AUTH, 'push with an encrypted key');
  assert.match(r.stderr, new RegExp(`ssh-add ${keys.enc.path.replace(/[.]/g, '\\.')}`));
  assert.is(r.stderr.trim().split('\n').length, 1, describeRun(r));
  const none = await fcp(['push', payload, daemon.remote('none.txt')]);
  expectExit(none, EXIT.AUTH, 'push with no key');
  assert.match(none.stderr, /no SSH key or local token: run ssh-add, or pass -i FILE/);
});

test('a signed proof relayed by a hostile daemon into its own connection to fcpd is refused', async () => {
  // The hostile daemon is a host the client trusts on first use; it collects the client's AUTH_PROOF and
  // replays it, with the client's own AUTH_START and request, on a fresh connection to the real fcpd.
  const hostile = await RawListener.listen();
  const relayConfig = path.join(tmp, 'relay-config');
  const client = runFcp(
    ['push', '--retries', '0', '-i', keys.a.path, payload, `${HOST}:${hostile.port}:x.txt`],
    {
      env: { FCP_CONFIG_DIR: relayConfig, SSH_AUTH_SOCK: '' },
    },
  );
  try {
    const victim = await hostile.accept();
    await victim.expect(MsgType.Hello);
    await victim.send(helloMsg());
    const start = await victim.expect(MsgType.AuthStart);
    const kx = generateKx();
    const h: Handshake = {
      clientNonce: start.clientNonce,
      serverNonce: Buffer.alloc(32, 7),
      channelBinding: victim.binding,
      hostKeyFingerprint: hostile.identity.hostKey.fingerprintBytes,
      clientKx: start.clientKx,
      serverKx: kx.publicRaw,
      user: start.user,
    };
    await victim.send({
      type: MsgType.AuthChallenge,
      serverNonce: h.serverNonce,
      serverKx: kx.publicRaw,
      hostKey: hostile.identity.hostKey.spki,
      hostProof: makeHostProof(hostile.identity.hostKey, h),
      tokenPath: '', // no token: make the client sign with its key
    });
    const request = await victim.next();
    assert.is(request.type, MsgType.Push);
    const proof = await victim.expect(MsgType.AuthProof);
    assert.is(proof.method, 1, 'a publickey proof');

    const relay = await RawPeer.connect(daemon.port);
    try {
      await exchangeHello(relay);
      await relay.send(start);
      await relay.expect(MsgType.AuthChallenge);
      if (request.type !== MsgType.Push) throw new Error('expected PUSH');
      await relay.send(request);
      await relay.send(proof);
      const answer = await relay.next();
      assert.is(
        answer.type,
        MsgType.AuthRetry,
        `the relayed proof was not refused: ${JSON.stringify(answer)}`,
      );
      assert.not.ok(relay.received.some((m) => m.type === MsgType.Session));
    } finally {
      relay.destroy();
    }
    victim.destroy();
  } finally {
    await hostile.close();
  }
  const r = await client;
  assert.is.not(r.code, EXIT.OK, describeRun(r));
  assert.not.ok(statSync(path.join(served, 'x.txt'), { throwIfNoEntry: false }), 'the relayed push wrote');
  assert.match(daemon.stderr(), /bad signature/);
});

test('a changed host key stops the client (exit 7, ssh-style warning); --accept-host-key FP accepts it', async () => {
  const root = ownedDir('rekeyed');
  const state1 = ownedDir('state-1');
  const state2 = ownedDir('state-2');
  const first = await startDaemon({ root, stateDir: state1 });
  const port = first.port;
  const pinned = await fcp(['push', '-i', keys.a.path, payload, first.remote('one.txt')]);
  expectExit(pinned, EXIT.OK, 'first push (pins the key)');
  await first.stop();
  const fp = async (stateDir: string) => {
    const r = await runFcpd(['--fingerprint'], { ...user, env: { FCPD_STATE_DIR: stateDir } });
    assert.is(r.code, 0, describeRun(r));
    return r.stdout.trim();
  };
  const oldFp = await fp(state1);
  assert.match(await readFile(path.join(configDir, 'known_hosts'), 'utf8'), `127.0.0.1:${port} ${oldFp}`);

  const second = await startDaemon({ root, port, stateDir: state2 });
  const newFp = await fp(state2);
  assert.is.not(newFp, oldFp);
  const refused = await fcp(['push', '-i', keys.a.path, payload, second.remote('two.txt')]);
  expectExit(refused, EXIT.AUTH, 'push to the re-keyed daemon');
  assert.match(refused.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED/);
  // One readable line (regression: the multi-line banner came out as one line of escaped "\n").
  assert.is(refused.stderr.trim().split('\n').length, 1, describeRun(refused));
  assert.not.match(refused.stderr, /\\n/, describeRun(refused));
  assert.ok(refused.stderr.includes(newFp) && refused.stderr.includes(oldFp), describeRun(refused));
  assert.match(refused.stderr, /--accept-host-key/);
  assert.not.ok(
    statSync(path.join(root, 'two.txt'), { throwIfNoEntry: false }),
    'written despite the change',
  );
  assert.not.match(second.stderr(), /authenticated by/, 'the client offered a proof to an unverified key');

  const wrong = await fcp([
    'push',
    '--accept-host-key',
    oldFp,
    '-i',
    keys.a.path,
    payload,
    second.remote('two.txt'),
  ]);
  expectExit(wrong, EXIT.AUTH, '--accept-host-key with another fingerprint');
  const accepted = await fcp([
    'push',
    '--accept-host-key',
    newFp,
    '-i',
    keys.a.path,
    payload,
    second.remote('two.txt'),
  ]);
  expectExit(accepted, EXIT.OK, '--accept-host-key with the new fingerprint');
  const after = await fcp(['push', '-i', keys.a.path, payload, second.remote('three.txt')]);
  expectExit(after, EXIT.OK, 'push once the new key is pinned');
  await second.stop();
});

test('fcpd as root without --user refuses SSH-key logins, telling the administrator to use --user', async () => {
  if (!isRoot()) return; // needs root
  const root = path.join(tmp, 'root-served');
  mkdirSync(root);
  const d = await spawnDaemon({ root, args: ['--no-local-token', '--authorized-keys', authorizedKeys] });
  daemons.push(d);
  const r = await fcp(['push', '-i', keys.a.path, payload, d.remote('x.txt')]);
  expectExit(r, EXIT.AUTH, 'SSH-key push to a root daemon');
  assert.match(r.stderr, /runs as root without --user/);
  assert.match(r.stderr, /--user NAME/);
  assert.not.ok(statSync(path.join(root, 'x.txt'), { throwIfNoEntry: false }));
  assert.match(d.stderr(), /serving as root without --user/);
  await d.stop();
});

test('fcpd --user drops privileges right after binding: pushed files belong to the account', async () => {
  if (!isRoot() || user.uid === undefined) return; // needs root
  const root = ownedDir('user-served');
  // With --user every file of the daemon's state is written as the account: its state dir must be the account's.
  const env = { FCPD_STATE_DIR: ownedDir('user-state') };
  const d = await spawnDaemon({
    root,
    env,
    args: ['--user', TEST_USER, '--authorized-keys', authorizedKeys],
  });
  daemons.push(d);
  const r = await fcp(['push', '-i', keys.a.path, payload, d.remote('owned.txt')]);
  expectExit(r, EXIT.OK, 'push to fcpd --user');
  const st = statSync(path.join(root, 'owned.txt'));
  assert.is(st.uid, user.uid, 'file owned by the --user account');
  assert.is(st.gid, user.gid, 'file group of the --user account');
  assert.match(d.stderr(), new RegExp(`serving as ${TEST_USER} \\(uid ${user.uid}\\)`));
  // The daemon cannot write where only root may, inside its own root: it really is the account now.
  const locked = path.join(root, 'locked');
  mkdirSync(locked);
  chownSync(locked, 0, 0);
  chmodSync(locked, 0o755);
  const denied = await fcp(['push', '-i', keys.a.path, payload, d.remote('locked/x.txt')]);
  expectExit(denied, EXIT.PATH, 'push into a root-owned directory (issue 15: exit 2, not 3)');
  assert.match(denied.stderr, /cannot write in the destination directory .*locked: permission denied/);
  assert.not.ok(statSync(path.join(locked, 'x.txt'), { throwIfNoEntry: false }));
  await d.stop();
  const asRoot = await runFcpd(['--user', 'root', '--port', '0', '--root', root]);
  assert.is(asRoot.code, EXIT.USAGE, describeRun(asRoot));
  assert.match(asRoot.stderr, /root: nothing would be dropped/);
});

test.run();
