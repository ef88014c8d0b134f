import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import * as assert from 'uvu/assert';
import { type ForwardDialer, socketForwardDialer } from '../../src/transport/socket-forward-dial.js';
import { isRunning } from '../helpers/remote-processes.js';
import { waitUntil } from '../helpers/reliability.js';
import { test } from '../helpers/test.js';

// The forwarding transport's spares (src/transport/socket-forward-dial.ts prestart): children started ahead of
// need listen without being connected to, the next open()s take them instead of starting new ones, and
// close() ends the ones never taken. The "forwarding" here is a node child echoing on its unix socket.

/** Listens on argv[1], writes its pid beside it, echoes each connection, and exits when its stdin ends. */
const FORWARDER = [
  '-e',
  [
    'const net = require("net"), fs = require("fs"), local = process.argv[1];',
    'let connections = 0;',
    'net.createServer((s) => { connections++; s.pipe(s); }).listen(local, () =>',
    '  fs.writeFileSync(local + ".pid", String(process.pid)));',
    'process.stdin.on("end", () => { fs.writeFileSync(local + ".seen", String(connections)); process.exit(0); });',
    'process.stdin.resume();',
  ].join('\n'),
];

let dialer: ForwardDialer | undefined;
test.after.each(() => dialer?.close());

function forwarder(started: string[]): ForwardDialer {
  dialer = socketForwardDialer({
    peerName: 'the test forwarder',
    argv: (local) => {
      started.push(local);
      return [process.execPath, ...FORWARDER, local];
    },
  });
  return dialer;
}

async function echoes(d: ForwardDialer, text: string): Promise<void> {
  const { channel } = await d.open(undefined);
  channel.stream.write(text);
  const [back] = (await once(channel.stream, 'data')) as [Buffer];
  assert.is(back.toString(), text);
  channel.stream.destroy();
}

test('prestart(n): n children listen before any open(), unconnected; the next opens take them', async () => {
  const started: string[] = [];
  const d = forwarder(started);
  d.prestart(2);
  await waitUntil(
    () => started.length === 2 && started.every((l) => existsSync(`${l}.pid`)),
    'two spares listening',
    20_000,
  );
  await echoes(d, 'one');
  await echoes(d, 'two');
  assert.is(started.length, 2, 'no child started beyond the spares');
  await echoes(d, 'three');
  assert.is(started.length, 3, 'spares used up: the next open starts its own');
});

test('close() ends a spare never taken, and it was never connected to', async () => {
  const started: string[] = [];
  const d = forwarder(started);
  d.prestart(1);
  await waitUntil(
    () => started.length === 1 && existsSync(`${started[0]}.pid`),
    'the spare listening',
    20_000,
  );
  const pid = Number(readFileSync(`${started[0]}.pid`, 'utf8'));
  const seen = `${started[0]}.seen`;
  d.close();
  dialer = undefined;
  await waitUntil(() => !isRunning(pid), 'the spare to exit', 20_000);
  // It wrote how many connections it had before its directory went, or the directory is gone already.
  if (existsSync(seen)) assert.is(readFileSync(seen, 'utf8'), '0');
});

test.run();
