// Two ends of one loopback TCP connection, for tests of code that sits on a socket.
import { once } from 'node:events';
import net from 'node:net';
import { TLSSocket } from 'node:tls';
import { type Channel, socketChannel } from '../../src/transport/channel.js';

/** [client, server] of a fresh connection on 127.0.0.1 (ephemeral port; the listener is closed). */
export async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'connection');
  const client = net.connect(port, '127.0.0.1');
  await once(client, 'connect');
  const [peer] = (await accepted) as [net.Socket];
  server.close();
  return [client, peer];
}

/** The channel a FramedConn gets for `socket`: encrypted when it is a TLSSocket, as the real dialers say. */
export function channelOf(socket: net.Socket): Channel {
  return socketChannel(socket, socket instanceof TLSSocket);
}
