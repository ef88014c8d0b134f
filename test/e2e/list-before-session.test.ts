// The push list before SESSION (spec/PROTOCOL.md §3.2), seen from the daemon's end of the wire: a fake
// daemon (RawListener) serves the real client's handshake and records what arrives between the client's
// AUTH_PROOF and our SESSION. With LIST_BEFORE_SESSION in the daemon's HELLO the list comes right behind the
// proof; without it (an older daemon) nothing comes until SESSION. "Nothing came" is checked once the
// client itself reports it holds its list ('list-held'), never after a quiet interval.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { push } from '../../src/client/transfer-client.js';
import {
  Capability,
  encodeMessage,
  FRAME_HEADER_SIZE,
  MAX_LIST_BEFORE_SESSION,
  MAX_LIST_BYTES_BEFORE_SESSION,
  type Message,
  MsgType,
} from '../../src/protocol/index.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import type { TransferListener } from '../../src/transfer/events.js';
import { createStats } from '../../src/transfer/stats.js';
import { abortFakeSession } from '../helpers/fake-session.js';
import { LOOPBACK, RawListener, type RawPeer, serveSession, WAIT_MS } from '../helpers/raw-peer.js';
import { bounded } from '../helpers/reliability.js';

const FILES = ['a.txt', 'b.txt', 'c.txt'];
const LIST_TYPES = new Set<number>([MsgType.DirInfo, MsgType.FileInfo, MsgType.FileCount]);

let base = '';
let src = '';

test.before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'fcp-list-early-'));
  src = path.join(base, 'src');
  await mkdir(src);
  for (const name of FILES) await writeFile(path.join(src, name), `${name}\n`);
});

test.after(async () => {
  await rm(base, { recursive: true, force: true });
});

/** Messages the client sent after its AUTH_PROOF so far. */
function afterProof(peer: RawPeer): Message[] {
  const at = peer.received.findIndex((m) => m.type === MsgType.AuthProof);
  return at === -1 ? [] : peer.received.slice(at + 1);
}

/**
 * Resolves with the entries the client had announced when it first held its list for SESSION. The client
 * emits 'list-held' in the same synchronous step where it decides not to write its next entry (or its
 * FILE_COUNT), so everything it was going to send before SESSION has been written by then and what it holds
 * was never written: nothing more can be in flight, and a check right after it needs no quiet interval.
 */
function listHeld(): { listener: TransferListener; held: Promise<number> } {
  let resolve: (entries: number) => void = () => {};
  const held = new Promise<number>((r) => (resolve = r));
  const listener: TransferListener = (event) => {
    if (event.type === 'list-held') resolve(event.entries);
  };
  return { listener, held };
}

/**
 * Runs a real push of `src` against a fake daemon offering `capabilities`; `beforeSession` runs between the
 * proof and SESSION (with the client's first 'list-held', bounded), `afterSession` after it. The fake daemon
 * then aborts the session (it has no receiver).
 */
async function pushAgainstFake(
  capabilities: number,
  beforeSession: (peer: RawPeer, held: () => Promise<number>) => Promise<void>,
  afterSession: (peer: RawPeer) => Promise<void>,
  what: { sources: string[]; exclude?: string[] } = { sources: [src] },
): Promise<void> {
  const listener = await RawListener.listen();
  const { listener: onHeld, held } = listHeld();
  const heldBounded = (): Promise<number> =>
    bounded(held, WAIT_MS, 'the client to hold its list for SESSION (list-held)');
  try {
    const pushing = push({
      listeners: [onHeld],
      endpoint: { host: LOOPBACK, port: listener.port },
      security: { knownHostsFile: path.join(base, 'known_hosts') },
      connections: 1,
      checksum: false,
      select: { exclude: what.exclude },
      hasher: await loadHasher(),
      stats: createStats(performance.now()),
      onWarning: () => {},
      sources: what.sources,
      dest: 'dst/',
    }).then(
      () => new Error('the push succeeded against a daemon that never received anything'),
      (err: unknown) => err,
    );
    const peer = await listener.accept();
    await serveSession(peer, { capabilities, beforeSession: (p) => beforeSession(p, heldBounded) });
    await afterSession(peer);
    await abortFakeSession(peer, pushing);
  } finally {
    await listener.close();
  }
}

test('with LIST_BEFORE_SESSION the whole small list and FILE_COUNT come before SESSION', async () => {
  await pushAgainstFake(
    Capability.ListBeforeSession,
    async (peer) => {
      await peer.expect(MsgType.FileCount);
      const early = afterProof(peer);
      const names = early.flatMap((m) => (m.type === MsgType.FileInfo ? [m.path] : []));
      assert.equal(names.sort(), FILES.map((f) => `src/${f}`).sort());
      assert.ok(
        early.some((m) => m.type === MsgType.DirInfo),
        'the directory entry',
      );
      assert.ok(
        early.every((m) => LIST_TYPES.has(m.type)),
        `only list messages before SESSION: ${early.map((m) => m.type).join(',')}`,
      );
    },
    async () => {},
  );
});

test('without it nothing follows the proof until SESSION, then the list does', async () => {
  await pushAgainstFake(
    0,
    async (peer, held) => {
      assert.is(await held(), 0, 'entries the client wrote before SESSION');
      assert.equal(
        afterProof(peer).map((m) => m.type),
        [],
        'the client sent something before SESSION to a daemon without LIST_BEFORE_SESSION',
      );
    },
    async (peer) => {
      await peer.expect(MsgType.FileCount);
      const names = afterProof(peer).flatMap((m) => (m.type === MsgType.FileInfo ? [m.path] : []));
      assert.equal(names.sort(), FILES.map((f) => `src/${f}`).sort());
    },
  );
});

test('without it an empty list holds back its FILE_COUNT too', async () => {
  await pushAgainstFake(
    0,
    async (peer, held) => {
      assert.is(await held(), 0, 'entries the client wrote before SESSION');
      assert.equal(afterProof(peer).length, 0, 'FILE_COUNT before SESSION');
    },
    async (peer) => {
      const count = await peer.expect(MsgType.FileCount);
      assert.is(count.entries, 0);
    },
    { sources: [path.join(src, FILES[0]!)], exclude: [FILES[0]!] },
  );
});

test('a list longer than the protocol allows before SESSION stops at 1024 entries, without FILE_COUNT', async () => {
  const many = path.join(base, 'many');
  await mkdir(many);
  const count = MAX_LIST_BEFORE_SESSION + 76;
  for (let i = 0; i < count; i++) await writeFile(path.join(many, `f${i}`), '');
  const entries = (peer: RawPeer): number =>
    afterProof(peer).filter((m) => m.type === MsgType.FileInfo || m.type === MsgType.DirInfo).length;
  await pushAgainstFake(
    Capability.ListBeforeSession,
    async (peer, held) => {
      // What the client wrote before it held is exactly what must arrive; it wrote nothing after.
      assert.is(await held(), MAX_LIST_BEFORE_SESSION, 'entries the client wrote before SESSION');
      await peer.until(() => entries(peer) >= MAX_LIST_BEFORE_SESSION, WAIT_MS, '1024 entries');
      assert.is(entries(peer), MAX_LIST_BEFORE_SESSION);
      assert.not.ok(
        afterProof(peer).some((m) => m.type === MsgType.FileCount),
        'FILE_COUNT before SESSION',
      );
    },
    async (peer) => {
      const fileCount = await peer.expect(MsgType.FileCount);
      // The directory and its files.
      assert.is(fileCount.entries, count + 1);
      assert.is(entries(peer), count + 1);
    },
    { sources: [many] },
  );
});

test('a list of long paths stops before SESSION at the byte bound, though its entries go out in batches', async () => {
  // Ten 250-byte directory names, then 300 files of 250-byte names: ~2,800-byte paths, ~800 KiB of list.
  const long = path.join(base, 'long');
  const deep = path.join(long, ...Array.from({ length: 10 }, (_, i) => `${i}`.padEnd(250, 'd')));
  await mkdir(deep, { recursive: true });
  for (let i = 0; i < 300; i++) await writeFile(path.join(deep, `${i}`.padEnd(250, 'f')), '');
  const listed = (peer: RawPeer): Message[] =>
    afterProof(peer).filter((m) => m.type === MsgType.FileInfo || m.type === MsgType.DirInfo);
  const frameBytes = (msgs: Message[]): number =>
    msgs.reduce(
      (n, m) =>
        n + FRAME_HEADER_SIZE + encodeMessage(m as Exclude<Message, { type: typeof MsgType.Data }>).length,
      0,
    );
  await pushAgainstFake(
    Capability.ListBeforeSession,
    async (peer, held) => {
      const entries = await held();
      await peer.until(() => listed(peer).length >= entries, WAIT_MS, `${entries} entries`);
      const bytes = frameBytes(listed(peer));
      // The bound stopped the list, not the entry count: the last entry written crossed it, no more followed.
      assert.ok(entries < MAX_LIST_BEFORE_SESSION, `${entries} entries`);
      assert.ok(bytes >= MAX_LIST_BYTES_BEFORE_SESSION, `${bytes} bytes`);
      const last = frameBytes(listed(peer).slice(-1));
      assert.ok(bytes - last < MAX_LIST_BYTES_BEFORE_SESSION, `${bytes} bytes, the last frame ${last}`);
    },
    async (peer) => {
      const fileCount = await peer.expect(MsgType.FileCount);
      assert.is(fileCount.entries, 300 + 11);
    },
    { sources: [long] },
  );
});

test.run();
