// Issue 15 item 4: a pre-authentication flood from many addresses must not lock a legitimate client out.
// 200 connections from 127.0.0.2-9 that never say a word used to fill the table of connections in their
// handshake (128) until their handshake timed out, 10 s later; the real client gave up or got in only after
// that. With sshd-style random early drop (src/daemon/admission.ts, spec/SECURITY.md §10) and the client
// trying a dropped connection again at once (src/client/busy-retry.ts), the push gets in while the flood
// is still held.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { describeRun, runFcp } from '../helpers/cli.js';
import { HOST, startInProcessDaemon } from '../helpers/daemon.js';
import { waitUntil } from '../helpers/reliability.js';
import { removeTree } from '../helpers/tree.js';

const FLOOD = 200;
const FLOOD_ADDRESSES = 8;
const CONNECT_TIMEOUT_MS = 5_000;
const SETTLE_TIMEOUT_MS = 5_000;
const PUSH_TIMEOUT_MS = 30_000;

interface Held {
  socket: net.Socket;
  closed: boolean;
}

/** A TCP connection from `localAddress` that sends nothing; resolves once connected. */
function holdOne(port: number, localAddress: string): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port, localAddress });
    const held: Held = { socket, closed: false };
    const timer = setTimeout(
      () => reject(new Error(`no connection from ${localAddress}`)),
      CONNECT_TIMEOUT_MS,
    );
    socket.on('error', () => {});
    socket.once('close', () => {
      held.closed = true;
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(held);
    });
  });
}

test('a flood of 200 silent connections from 8 addresses: a real push gets in while they are held', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-flood-'));
  const served = join(tmp, 'served');
  mkdirSync(served);
  const file = join(tmp, 'small.txt');
  writeFileSync(file, 'got in during the flood\n');
  const daemon = await startInProcessDaemon({ root: served, verbose: false });
  const flood: Held[] = [];
  try {
    for (let i = 0; i < FLOOD; i++) {
      flood.push(await holdOne(daemon.port, `127.0.0.${2 + (i % FLOOD_ADDRESSES)}`));
    }
    // Dropped ones are closed at accept; wait until every survivor is one the daemon holds in its handshake.
    const open = () => flood.filter((h) => !h.closed).length;
    await waitUntil(
      () => open() === daemon.server.handshakesPending,
      'the flood to settle',
      SETTLE_TIMEOUT_MS,
    );
    const held = flood.filter((h) => !h.closed);
    assert.ok(held.length >= 32, `the daemon holds ${held.length} of the flood`);
    assert.ok(held.length < FLOOD, 'some of the flood was dropped');

    const r = await runFcp(['push', '-v', file, daemon.remote('in.txt')], { timeoutMs: PUSH_TIMEOUT_MS });
    assert.is(r.code, 0, describeRun(r));
    assert.is(await readFile(join(served, 'in.txt'), 'utf8'), 'got in during the flood\n');
    // The push got in while the flood was held: none of it has yet timed out of its handshake.
    const stillHeld = held.filter((h) => !h.closed).length;
    assert.is(
      stillHeld,
      held.length,
      `${held.length - stillHeld} flood connections ended before the push did`,
    );
    assert.ok(
      daemon.logs.some((l) => /dropping new ones \(MaxStartups \d+:\d+:\d+\)/.test(l)),
      daemon.logs.join('\n'),
    );
  } finally {
    for (const h of flood) h.socket.destroy();
    await daemon.stop();
    await removeTree(tmp);
  }
});

test.run();
