// transport/first-answer-dial.ts on real loopback sockets: a preferred way whose peer closes (or resets)
// without a byte makes the channel replay what was written on the fallback way, unseen by the reader; a
// preferred way that answers decides every later channel; a preferred way that cannot open falls back too.
import { once } from 'node:events';
import type net from 'node:net';
import * as assert from 'uvu/assert';
import type { CommandDialer } from '../../src/transport/command-dial.js';
import { UNPROVEN } from '../../src/transport/command-dial.js';
import type { DialedChannel } from '../../src/transport/dialer.js';
import { firstAnswerDialer, type Way } from '../../src/transport/first-answer-dial.js';
import { socketPair } from '../helpers/socket-pair.js';
import { test } from '../helpers/test.js';

/** A dialer whose every open() makes a socket pair and hands the far end to `serve`. */
function fakeDialer(serve: (peer: net.Socket) => void): CommandDialer & { opened: number } {
  const d = {
    opened: 0,
    peerName: 'fake',
    open: async (): Promise<DialedChannel> => {
      d.opened++;
      const [client, peer] = await socketPair();
      serve(peer);
      const channel = { stream: client, encrypted: true, binding: new Uint8Array(0), peer: 'fake' };
      return { channel, identity: UNPROVEN, resumption: () => undefined };
    },
    unanswered: (err: unknown) => err,
    close: () => {},
  };
  return d;
}

/** Answers each chunk with `prefix` + the chunk. */
function echo(prefix: string) {
  return (peer: net.Socket) => peer.on('data', (chunk: Buffer) => peer.write(prefix + chunk.toString()));
}

async function firstReply(stream: NodeJS.ReadableStream): Promise<string> {
  const [chunk] = (await once(stream, 'data')) as [Buffer];
  return chunk.toString();
}

for (const [name, refuse] of [
  ['closes', (peer: net.Socket) => peer.end()],
  ['resets', (peer: net.Socket) => peer.resetAndDestroy()],
] as const) {
  test(`the preferred way ${name} without a byte: the HELLO is written again the other way`, async () => {
    const preferred = fakeDialer((peer) => peer.once('data', () => refuse(peer)));
    const fallback = fakeDialer(echo('fallback:'));
    const ways: Way[] = [];
    const dialer = firstAnswerDialer(preferred, fallback, (w) => ways.push(w));
    const { channel } = await dialer.open(undefined);
    channel.stream.write('HELLO');
    assert.is(await firstReply(channel.stream), 'fallback:HELLO');
    assert.equal(ways, ['fallback']);
    const second = await dialer.open(undefined);
    second.channel.stream.write('again');
    assert.is(await firstReply(second.channel.stream), 'fallback:again');
    assert.is(preferred.opened, 1);
    assert.is(fallback.opened, 2);
    channel.stream.destroy();
    second.channel.stream.destroy();
  });
}

test('the preferred way answers: it serves this channel and every later one', async () => {
  const preferred = fakeDialer(echo('preferred:'));
  const fallback = fakeDialer(echo('fallback:'));
  const dialer = firstAnswerDialer(preferred, fallback);
  const first = dialer.open(undefined);
  const waiting = dialer.open(undefined);
  const { channel } = await first;
  channel.stream.write('HELLO');
  assert.is(await firstReply(channel.stream), 'preferred:HELLO');
  const later = await waiting;
  later.channel.stream.write('x');
  assert.is(await firstReply(later.channel.stream), 'preferred:x');
  assert.is(fallback.opened, 0);
  channel.stream.destroy();
  later.channel.stream.destroy();
});

test('the preferred way cannot even open: the fallback serves', async () => {
  const fallback = fakeDialer(echo('fallback:'));
  const broken: CommandDialer = {
    ...fakeDialer(() => {}),
    open: () => Promise.reject(new Error('no ssh')),
  };
  const { channel } = await firstAnswerDialer(broken, fallback).open(undefined);
  channel.stream.write('HELLO');
  assert.is(await firstReply(channel.stream), 'fallback:HELLO');
  channel.stream.destroy();
});

test.run();
