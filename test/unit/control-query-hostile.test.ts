// `fcpd status --user NAME` run by root asks a socket NAME controls: a fake server there answering a
// wrong-typed reply gets one clear error naming the socket (not "x.replace is not a function", rc 70), and
// one trickling bytes forever is cut off by the whole-answer deadline, not held open by each new byte.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { checkSocketOwner, queryStatus } from '../../src/daemon/control-socket.js';
import { FcpError } from '../../src/protocol/index.js';
import { test } from '../helpers/test.js';

const servers: net.Server[] = [];
const dirs: string[] = [];

test.after.each(() => {
  for (const s of servers.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function fakeDaemon(onConnection: (socket: net.Socket) => void): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fcp-control-fake-'));
  dirs.push(dir);
  const socketPath = path.join(dir, 'fcpd-1.sock');
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    onConnection(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return socketPath;
}

async function failure(p: Promise<unknown>): Promise<FcpError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, FcpError);
    return err as FcpError;
  }
  throw new Error('the query succeeded');
}

test('a reply with wrong-typed fields is one error naming the socket', async () => {
  const session = { who: 1, from: {}, direction: 'push', bytes_done: 'x', started_at: 5 };
  const socketPath = await fakeDaemon((s) =>
    s.end(`${JSON.stringify({ version: 1, sessions: [session] })}\n`),
  );
  const err = await failure(queryStatus(socketPath));
  assert.is(err.code, 'FCP_ERR_PROTO_MALFORMED');
  assert.ok(err.message.includes(socketPath), err.message);
});

test('a reply trickled byte by byte is cut off by the whole-answer deadline', async () => {
  const timers: NodeJS.Timeout[] = [];
  const socketPath = await fakeDaemon((s) => {
    const t = setInterval(() => s.write(' '), 50);
    timers.push(t);
    s.on('close', () => clearInterval(t));
  });
  try {
    const err = await failure(queryStatus(socketPath, 500));
    assert.is(err.code, 'FCP_ERR_NET_TIMEOUT');
    assert.ok(err.message.includes(socketPath), err.message);
  } finally {
    for (const t of timers) clearInterval(t);
  }
});

test("a socket that is not the named account's own is not asked", async () => {
  const socketPath = await fakeDaemon((s) => s.end('{}\n'));
  const err = await failure(Promise.resolve().then(() => checkSocketOwner(socketPath, 12345)));
  assert.is(err.code, 'FCP_ERR_AUTH_INSECURE_FILE');
  assert.ok(err.message.includes(socketPath), err.message);
  checkSocketOwner(socketPath, process.getuid?.() ?? 0);
});

test.run();
