// Issue 15, item 15 (the client's half): `[v6addr]:port:path` and `[v6addr]:path` operands reach a daemon
// listening on ::1, for push and pull, and the messages name the address in brackets.
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import { describeRun, FCPD_BIN, runFcp, spawnNode } from '../helpers/cli.js';
import { waitUntil } from '../helpers/reliability.js';
import { removeTree } from '../helpers/tree.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'fcp-e2e-ipv6-'));
chmodSync(tmp, 0o755);
const served = path.join(tmp, 'served');
mkdirSync(served);
const payload = path.join(tmp, 'payload.txt');
writeFileSync(payload, 'over IPv6\n');
const READY = /^fcpd listening on \[?::1\]?:(\d+)$/m;

/** Whether this host can listen on ::1 at all (a container without IPv6 cannot). */
async function hasIpv6Loopback(): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, '::1', () => server.close(() => resolve(true)));
  });
}

test('push and pull with [::1]:port:path; [::1]:path uses the default port', async () => {
  if (!(await hasIpv6Loopback())) return; // no IPv6 here: nothing to test
  const child = spawnNode(FCPD_BIN, ['--port', '0', '--bind', '::1', '--root', served], {
    env: { FCPD_STATE_DIR: path.join(tmp, 'state') },
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  try {
    await waitUntil(() => READY.test(out), 'fcpd listening on ::1', 10_000);
    const port = Number(READY.exec(out)![1]);
    const push = await runFcp(['push', payload, `[::1]:${port}:v6.txt`]);
    assert.is(push.code, EXIT.OK, describeRun(push));
    assert.is(await readFile(path.join(served, 'v6.txt'), 'utf8'), 'over IPv6\n');
    const back = path.join(tmp, 'back.txt');
    const pull = await runFcp(['pull', `[::1]:${port}:v6.txt`, back]);
    assert.is(pull.code, EXIT.OK, describeRun(pull));
    assert.is(await readFile(back, 'utf8'), 'over IPv6\n');
  } finally {
    child.kill('SIGTERM');
  }
  // Nothing listens on the default port of ::1 here (tests never use it): refused, named in brackets.
  // --daemon: without it, fcp would go on through ssh (README "Works wherever ssh works").
  const defaultPort = await runFcp(['--daemon', 'push', payload, '[::1]:x.txt']);
  assert.is(defaultPort.code, EXIT.CONNECT, describeRun(defaultPort));
  assert.match(defaultPort.stderr, /cannot connect to \[::1\]:7523: /);
});

test.after(async () => {
  await removeTree(tmp);
});

test.run();
