// fcpd status: the sessions a real fcpd serves now, through its control socket and no network port. A slow
// push (slowed by --bwlimit, not sleeps) is listed with who, from where, direction, bytes and connections,
// and gone once it ends. As root with a daemon serving `fcpuser-daemon`: root and that account may ask,
// another account is refused by the socket's 0700 directory.
import { chmodSync, chownSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import type { SessionStatus } from '../../src/daemon/control-socket.js';
import { accountWithHome } from '../helpers/accounts.js';
import { describeRun, isRoot, runFcp, runFcpd, unprivileged } from '../helpers/cli.js';
import { type ChildDaemon, spawnDaemon } from '../helpers/daemon.js';
import { eventually } from '../helpers/detached.js';
import { test } from '../helpers/test.js';
import { buildTree, removeTree } from '../helpers/tree.js';

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-daemon-status-'));
const served = join(tmp, 'served');
const src = join(tmp, 'src');
const BIG = 8_000_000;
const daemons: ChildDaemon[] = [];

test.before(async () => {
  await buildTree(src, [{ kind: 'file', path: 'big.bin', size: BIG }]);
  await buildTree(served, []);
});

test.after(async () => {
  try {
    await Promise.all(daemons.map((d) => d.stop()));
  } finally {
    await removeTree(tmp);
  }
});

async function sessions(port: number, opts: Parameters<typeof runFcpd>[1] = {}): Promise<SessionStatus[]> {
  const r = await runFcpd(['status', '--port', String(port), '--json'], opts);
  assert.is(r.code, EXIT.OK, describeRun(r));
  return JSON.parse(r.stdout) as SessionStatus[];
}

test('a running push is listed by fcpd status, then gone', async () => {
  const daemon = await spawnDaemon({ root: served });
  daemons.push(daemon);
  assert.equal(await sessions(daemon.port), []);
  const push = runFcp(['push', '--bwlimit', '2M', '-n', '2', `${src}/`, daemon.remote('pushed/')]);
  let listed: SessionStatus[] = [];
  await eventually(20_000, 'the session to move', async () => {
    listed = await sessions(daemon.port);
    return listed.length === 1 && listed[0]!.bytes_done > 0;
  });
  const s = listed[0]!;
  assert.is(s.direction, 'push');
  assert.is(s.who, 'local token');
  assert.match(s.from, /^127\.0\.0\.1:\d+$/);
  assert.is(s.bytes_total, BIG);
  assert.ok(s.connections >= 1 && s.connections <= 2, String(s.connections));
  assert.ok(s.rate > 0);
  assert.ok(!Number.isNaN(Date.parse(s.started_at)));
  const table = await runFcpd(['status', '--port', String(daemon.port)]);
  assert.match(
    table.stdout,
    /^FROM +WHO +DIR +BYTES +RATE +CONNS +SINCE\n127\.0\.0\.1:\d+ +local token +push /,
  );

  const done = await push;
  assert.is(done.code, EXIT.OK, describeRun(done));
  await eventually(5000, 'the session to end', async () => (await sessions(daemon.port)).length === 0);
});

test('no daemon on the port: one line naming the socket, exit 4', async () => {
  const r = await runFcpd(['status', '--port', '1']);
  assert.is(r.code, EXIT.CONNECT, describeRun(r));
  assert.match(r.stderr, /^fcpd: no fcpd answers on .*fcpd-1\.sock: is it running\?\n$/);
});

test('daemon serving fcpuser-daemon: root and the account may ask, another account may not', async () => {
  if (!isRoot()) return;
  const other = unprivileged();
  const account = accountWithHome('fcpuser-daemon');
  // A state directory others may enter, so that what refuses them is the control directory's own mode.
  const stateDir = mkdtempSync(join(tmpdir(), 'fcp-e2e-daemon-status-state-'));
  chownSync(stateDir, account.uid, account.gid);
  chmodSync(stateDir, 0o755);
  const env = { FCPD_STATE_DIR: stateDir };
  const daemon = await spawnDaemon({ root: account.home, args: ['--user', account.name], env });
  daemons.push(daemon);
  void daemon.exited.then(() => removeTree(stateDir));

  const control = join(stateDir, 'control');
  const socket = join(control, `fcpd-${daemon.port}.sock`);
  assert.is(statSync(control).mode & 0o777, 0o700);
  assert.is(statSync(control).uid, account.uid);
  assert.is(statSync(socket).mode & 0o777, 0o600);
  assert.is(statSync(socket).uid, account.uid);

  const asRoot = await runFcpd(['status', '--user', account.name, '--port', String(daemon.port), '--json'], {
    env,
  });
  assert.is(asRoot.code, EXIT.OK, describeRun(asRoot));
  assert.equal(JSON.parse(asRoot.stdout), []);
  const ids = { uid: account.uid, gid: account.gid };
  assert.equal(await sessions(daemon.port, { ...ids, env: { ...env, HOME: account.home } }), []);

  const refused = await runFcpd(['status', '--port', String(daemon.port)], { ...other, env });
  assert.is(refused.code, EXIT.PATH, describeRun(refused));
  assert.match(refused.stderr, /^fcpd: .*fcpd-\d+\.sock: permission denied\n$/, describeRun(refused));
  assert.is(refused.stdout, '');
});

test.run();
