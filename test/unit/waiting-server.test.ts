// A listening server whose connections wait, unread, until a handler takes them (src/daemon/waiting-server.ts):
// fcpd --serve-once announces its port before the code that serves is loaded.
import net from 'node:net';
import { once } from 'node:events';
import * as assert from 'uvu/assert';
import { WaitingServer } from '../../src/daemon/waiting-server.js';
import { test } from '../helpers/test.js';

function boundPort(w: WaitingServer): number {
  return (w.server.address() as net.AddressInfo).port;
}

/** Resolves once the server has accepted `n` connections (none can be taken before it has seen them). */
async function accepted(w: WaitingServer, n: number): Promise<void> {
  const count = () =>
    new Promise<number>((resolve, reject) =>
      w.server.getConnections((err, c) => (err ? reject(err) : resolve(c))),
    );
  while ((await count()) < n) await new Promise((resolve) => setImmediate(resolve));
}

async function connectAndSend(port: number, text: string): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(text);
  return socket;
}

test('connections before take() wait with their bytes, in order; later ones go straight to the handler', async () => {
  const w = new WaitingServer({ noDelay: true });
  await w.listen({ port: 0, host: '127.0.0.1' });
  const clients = [await connectAndSend(boundPort(w), 'first'), await connectAndSend(boundPort(w), 'second')];
  await accepted(w, 2);
  const got: string[] = [];
  const allRead = new Promise<void>((resolve) => {
    w.take((socket) => {
      socket.setEncoding('utf8').once('data', (text: string) => {
        got.push(text);
        if (got.length === 3) resolve();
      });
    });
  });
  clients.push(await connectAndSend(boundPort(w), 'third'));
  await allRead;
  assert.equal(got, ['first', 'second', 'third']);
  for (const c of clients) c.destroy();
  await w.close();
});

test('close() ends the connections still waiting', async () => {
  const w = new WaitingServer();
  await w.listen({ port: 0, host: '127.0.0.1' });
  const client = await connectAndSend(boundPort(w), 'x');
  await accepted(w, 1);
  // Its unread bytes make the close a reset (which events.once would reject on).
  client.on('error', () => {});
  const closed = new Promise((resolve) => client.once('close', resolve));
  await w.close();
  await closed;
});

test('a bind that fails rejects with its own error', async () => {
  const first = new WaitingServer();
  await first.listen({ port: 0, host: '127.0.0.1' });
  const second = new WaitingServer();
  const err = await second.listen({ port: boundPort(first), host: '127.0.0.1' }).catch((e: unknown) => e);
  assert.is((err as NodeJS.ErrnoException).code, 'EADDRINUSE');
  await first.close();
});

test.run();
