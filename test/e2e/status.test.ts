// fcp status from another process: a running transfer (slowed by --bwlimit rather than sleeps) is listed with
// its figures, as a table and as JSON; it is gone once it ends; a killed transfer's entry is cleaned and
// never shown as running; an unknown id is one line and exit 1.
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import type { TransferStatus } from '../../src/client/transfer-registry.js';
import { describeRun, FCP_BIN, runFcp, spawnNode, unprivileged } from '../helpers/cli.js';
import { eventually } from '../helpers/detached.js';
import { test } from '../helpers/test.js';
import { movingTo, privateState, servedTree, transferWhere } from '../helpers/transfers.js';
import { buildTree, removeTree } from '../helpers/tree.js';
import { freePort } from '../helpers/daemon.js';

const BIG = 8_000_000;
const { tmp, remote, daemon } = servedTree('fcp-e2e-status-', (t) =>
  buildTree(join(t.tmp, 'src'), [{ kind: 'file', path: 'big.bin', size: BIG }]),
);
const src = join(tmp, 'src');

test('a running push is listed with its figures, then gone once it ends', async () => {
  const state = privateState();
  const run = runFcp(['push', '--bwlimit', '2M', '-n', '2', `${src}/`, remote('listed/')], {
    env: state.env,
  });
  const t = await transferWhere(state.dir, 'the push to show progress', movingTo('listed/'));
  assert.is(t.direction, 'push');
  assert.equal(t.sources, [src]);
  assert.is(t.port, daemon().port);
  assert.is(t.transport, 'daemon');
  assert.is(t.bytes_total, BIG);
  assert.is(t.bwlimit, 2_000_000);
  assert.is(t.current_file, 'big.bin');
  assert.ok(t.connections >= 1);
  assert.ok(!Number.isNaN(Date.parse(t.started_at)));

  const json = await runFcp(['status', '--json'], { env: state.env });
  assert.is(json.code, EXIT.OK, describeRun(json));
  const listed = JSON.parse(json.stdout) as TransferStatus[];
  assert.equal(
    listed.map((l) => [l.id, l.state, l.direction]),
    [[t.id, 'running', 'push']],
  );
  const one = await runFcp(['status', t.id, '--json'], { env: state.env });
  assert.is((JSON.parse(one.stdout) as TransferStatus[])[0]?.id, t.id, describeRun(one));

  const table = await runFcp(['status'], { env: state.env });
  const lines = table.stdout.trimEnd().split('\n');
  assert.is(lines.length, 2, describeRun(table));
  assert.match(lines[0]!, /^ID +STATE +DIR +BYTES +RATE +ETA +CONNS +STARTED +VIA +ENDPOINTS +FILE$/);
  assert.match(
    lines[1]!,
    new RegExp(`^${t.id} +running +push .* daemon +.* -> 127\\.0\\.0\\.1:\\d+:listed/ +big\\.bin$`),
  );

  const done = await run;
  assert.is(done.code, EXIT.OK, describeRun(done));
  const after = await runFcp(['status', '--json'], { env: state.env });
  assert.equal(JSON.parse(after.stdout), []);
  assert.not.ok(existsSync(join(state.dir, `${t.id}.json`)));
});

test('a killed transfer is cleaned from the registry, never shown as running', async () => {
  const state = privateState();
  const child = spawnNode(FCP_BIN, ['push', '--bwlimit', '1M', `${src}/`, remote('killed/')], {
    env: state.env,
  });
  const t = await transferWhere(state.dir, 'the push to be listed', movingTo('killed/'));
  assert.is(t.pid, child.pid);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  // Its file is still there, saying "running": only a reader can tell it is dead.
  assert.ok(existsSync(join(state.dir, `${t.id}.json`)));
  const r = await runFcp(['status', '--json'], { env: state.env });
  assert.is(r.code, EXIT.OK, describeRun(r));
  assert.equal(JSON.parse(r.stdout), []);
  await eventually(1000, 'the entry to be removed', () => !existsSync(join(state.dir, `${t.id}.json`)));
});

test('a registry the user cannot write costs fcp status only, not the transfer', async () => {
  const user = unprivileged();
  // A state directory the user may read but not write (root's, 0755).
  const readOnly = mkdtempSync(join(tmpdir(), 'fcp-e2e-status-ro-'));
  chmodSync(readOnly, 0o755);
  const source = join(readOnly, 'f.txt');
  writeFileSync(source, 'readable\n', { mode: 0o644 });
  try {
    const r = await runFcp(['push', '-v', '--retries', '0', source, `127.0.0.1:${await freePort()}:x/`], {
      ...user,
      env: { XDG_STATE_HOME: readOnly },
    });
    // The transfer itself goes as far as it can: here, to the missing daemon (exit 4), not EACCES (2).
    assert.is(r.code, EXIT.CONNECT, describeRun(r));
    assert.match(
      r.stderr,
      /^fcp: fcp status will not list this transfer: .*fcp\/transfers: permission denied\n/,
      describeRun(r),
    );
  } finally {
    await removeTree(readOnly);
  }
});

test('an unknown id is one line and exit 1', async () => {
  const state = privateState();
  const r = await runFcp(['status', '0123456789ab'], { env: state.env });
  assert.is(r.code, EXIT.USAGE, describeRun(r));
  assert.is(r.stderr, 'fcp: no transfer 0123456789ab (fcp status lists the running ones)\n');
  assert.is(r.stdout, '');
});

test.run();
