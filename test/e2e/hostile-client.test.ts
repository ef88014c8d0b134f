// A hostile client against a real, in-process fcpd. Every case speaks raw frames (test/helpers/raw-peer.ts)
// over TLS, authenticated with the daemon's same-host token where a session is needed (an authenticated
// client is the strongest attacker the confinement rules face), and ends with the same three checks: nothing was written outside the served root (a sibling 'outside'
// directory with a canary is compared byte for byte), and the daemon still serves a legitimate push made
// with the real client ("the daemon survives"). spec/security.md: every path from the wire is hostile.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { push } from '../../src/client/transfer-client.js';
import { FcpServer } from '../../src/daemon/server.js';
import { HANDSHAKE_TIMEOUT_MS } from '../../src/transport/hello.js';
import {
  AuthMethodCode,
  Capability,
  ERROR_CODES,
  type FcpErrorCode,
  type FileInfoMsg,
  FileKind,
  type FileReadyMsg,
  MAX_LIST_BEFORE_SESSION,
  MsgType,
  PIECE_SIZE,
  type PullMsg,
  type PushMsg,
  ReadyAction,
  TransferFlag,
} from '../../src/protocol/index.js';
import { generateKx } from '../../src/security/session-secret.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import { createStats } from '../../src/transfer/stats.js';
import {
  authenticate,
  dataFrame,
  exchangeHello,
  fileChecksum,
  helloMsg,
  LOOPBACK,
  messageFrame,
  messagePayload,
  openPush,
  RawPeer,
  rawFrame,
  sendAttach,
  sendPullRequest,
  sendPushRequest,
} from '../helpers/raw-peer.js';

const LIMIT_MS = 10_000;
/** An mtime no file on disk has, so the quick check never skips our entries. */
const OLD_MTIME_NS = 1_500_000_000n * 1_000_000_000n;
const HALF_OPEN = 200;

function wire(code: FcpErrorCode): number {
  return ERROR_CODES[code].wire;
}

function hex(code: number | undefined): string {
  return code === undefined ? 'none' : `0x${code.toString(16).padStart(4, '0')}`;
}

let server: FcpServer;
let port = 0;
let base = '';
let stateDir = '';
let root = '';
let outside = '';
let src = '';
let outsideBaseline = new Map<string, string>();
let legitRuns = 0;
const logs: string[] = [];
const peers = new Set<RawPeer>();

async function connect(): Promise<RawPeer> {
  return track(await RawPeer.connect(port));
}

function track(peer: RawPeer): RawPeer {
  peers.add(peer);
  return peer;
}

async function pushSession(dest: string, opts: { flags?: number; connections?: number } = {}) {
  const opened = await openPush(port, dest, opts);
  track(opened.peer);
  return opened;
}

/** Every entry under `dir` (not following links) with what it is: type, size, content hash, link target. */
async function snapshot(dir: string, rel = ''): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of (await readdir(path.join(dir, rel))).sort()) {
    const r = rel === '' ? name : `${rel}/${name}`;
    const abs = path.join(dir, r);
    // The daemon may be removing a temporary file right now: an entry that vanished is not there.
    const st = await lstat(abs).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (st === undefined) continue;
    if (st.isSymbolicLink()) out.set(r, `link -> ${await readlink(abs)}`);
    else if (st.isDirectory()) {
      out.set(r, `dir ${(st.mode & 0o7777).toString(8)}`);
      for (const [k, v] of await snapshot(dir, r)) out.set(k, v);
    } else {
      const sum = createHash('sha256')
        .update(await readFile(abs))
        .digest('hex');
      out.set(r, `file ${st.size} ${sum} ${st.mtimeMs} ${(st.mode & 0o7777).toString(8)}`);
    }
  }
  return out;
}

async function tempsUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).filter((rel) => rel.endsWith('.fcp-part'));
}

async function eventually(ready: () => Promise<boolean>, what: string, limitMs = LIMIT_MS): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${limitMs} ms: ${what}`);
    await delay(20);
  }
}

function within<T>(promise: Promise<T>, what: string, limitMs = LIMIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${limitMs} ms: ${what}`)), limitMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Nothing outside the root changed, and nothing new appeared next to it or in /etc. */
async function assertNothingOutside(): Promise<void> {
  assert.equal(await snapshot(outside), outsideBaseline, 'the outside directory changed');
  assert.equal(
    (await readdir(base)).sort(),
    ['outside', 'root', 'src'],
    'something appeared beside the root',
  );
  assert.not.ok(existsSync('/etc/fcp-hostile-pwned'), 'a file appeared in /etc');
}

/** A legitimate push with the real client completes and delivers the right bytes. */
async function assertDaemonSurvives(): Promise<void> {
  const n = ++legitRuns;
  const content = randomBytes(1000 + n);
  await writeFile(path.join(src, 'legit.bin'), content);
  const warnings: string[] = [];
  await within(
    push({
      endpoint: { host: LOOPBACK, port },
      connections: 2,
      checksum: false,
      select: {},
      hasher: await loadHasher(),
      stats: createStats(performance.now()),
      onWarning: (err) => warnings.push(`${err.code}: ${err.message}`),
      sources: [path.join(src, 'legit.bin')],
      dest: `legit/${n}/`,
    }),
    'a legitimate push',
  );
  assert.equal(warnings, [], 'the legitimate push had warnings');
  assert.ok((await readFile(path.join(root, 'legit', String(n), 'legit.bin'))).equals(content));
}

async function afterCase(): Promise<void> {
  await assertNothingOutside();
  await assertDaemonSurvives();
  await assertNothingOutside();
}

function fileInfo(
  id: number,
  p: string,
  size: number | bigint,
  more: Partial<FileInfoMsg> = {},
): FileInfoMsg {
  return {
    type: MsgType.FileInfo,
    id,
    kind: FileKind.File,
    mode: 0o644,
    size: BigInt(size),
    mtimeNs: OLD_MTIME_NS,
    checksum: undefined,
    path: p,
    linkTarget: '',
    ...more,
  };
}

function linkInfo(id: number, p: string, target: string): FileInfoMsg {
  return fileInfo(id, p, 0, { kind: FileKind.Symlink, mode: 0o777, linkTarget: target });
}

interface Outcome {
  /** 'need' | 'skip' | 'fail' from FILE_READY, or 'done' when a link was settled by FILE_DONE alone. */
  action: string;
  code: number;
  /** FILE_DONE code after we sent the data, when it was needed. */
  done: number | undefined;
}

const ACTIONS: Record<number, string> = {
  [ReadyAction.Need]: 'need',
  [ReadyAction.Skip]: 'skip',
  [ReadyAction.Fail]: 'fail',
};

/**
 * Waits for the answer to an entry already announced; when the daemon wants the data it gets it, so a
 * daemon that wrongly accepts a hostile path really writes, and the outside checks catch it.
 */
async function settle(peer: RawPeer, id: number, content: Buffer): Promise<Outcome> {
  const answer = await peer.waitAnswer(id);
  if (answer.ready === undefined)
    return { action: 'done', code: answer.done?.code ?? -1, done: answer.done?.code };
  const action = ACTIONS[answer.ready.action] ?? '?';
  if (answer.ready.action !== ReadyAction.Need) return { action, code: answer.ready.code, done: undefined };
  await peer.sendFile(id, content);
  return { action, code: answer.ready.code, done: (await peer.waitFileDone(id)).code };
}

async function offer(peer: RawPeer, info: FileInfoMsg, content = Buffer.alloc(Number(info.size), 0x41)) {
  await peer.send(info);
  return settle(peer, info.id, content);
}

/** FILE_COUNT and DONE, then the daemon's DONE: the session ended cleanly. */
async function finishSession(peer: RawPeer, entries: number): Promise<void> {
  await peer.send({ type: MsgType.FileCount, entries, bytes: 0n });
  await peer.send({ type: MsgType.Done, filesSent: 0, filesSkipped: 0, filesFailed: 0, bytes: 0n });
  await peer.expect(MsgType.Done);
}

test.before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'fcp-hostile-client-'));
  root = path.join(base, 'root');
  outside = path.join(base, 'outside');
  src = path.join(base, 'src');
  for (const d of [root, outside, src, path.join(root, 'legit')]) await mkdir(d);
  await writeFile(path.join(outside, 'canary.txt'), 'canary: must never change\n');
  await writeFile(path.join(outside, 'victim.txt'), 'victim: must never be truncated or overwritten\n');
  await symlink(outside, path.join(root, 'link-out'));
  outsideBaseline = await snapshot(outside);
  stateDir = await mkdtemp(path.join(tmpdir(), 'fcp-hostile-client-state-'));
  server = new FcpServer({
    stateDir,
    port: 0,
    bind: LOOPBACK,
    root,
    maxSessions: 16,
    maxConnections: 4,
    log: (line) => logs.push(line),
    verbose: true,
  });
  port = await server.listen();
});

test.after.each(() => {
  for (const peer of peers) peer.destroy();
  peers.clear();
});

test.after(async () => {
  for (const peer of peers) peer.destroy();
  await server?.close();
  if (base !== '') await rm(base, { recursive: true, force: true });
  if (stateDir !== '') await rm(stateDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------
// Before and during the handshake

test('garbage instead of HELLO: ABORT (unknown frame type), connection closed', async () => {
  for (const garbage of [
    Buffer.from('GET / HTTP/1.1\r\nHost: fcp\r\n\r\n'),
    Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'),
    Buffer.alloc(64, 0xff),
  ]) {
    const peer = await connect();
    await peer.write(garbage);
    assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_UNKNOWN_FLAG')));
  }
  await afterCase();
});

test('HELLO with the wrong magic: ABORT FCP_ERR_PROTO_NOT_FCP', async () => {
  const payload = messagePayload(helloMsg());
  payload.write('XYZ', 0, 'latin1');
  const peer = await connect();
  await peer.write(rawFrame(peer.hasher, MsgType.Hello, payload));
  assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_NOT_FCP')));
  await afterCase();
});

test('HELLO with no version in common: ABORT FCP_ERR_PROTO_VERSION, no HELLO back', async () => {
  for (const [versionMin, versionMax] of [
    [1, 1],
    [3, 9],
    [0, 0],
    [0xffff, 0xffff],
  ] as const) {
    const peer = await connect();
    await peer.send(helloMsg({ versionMin, versionMax }));
    assert.is(
      hex(await peer.expectAbortAndClose()),
      hex(wire('FCP_ERR_PROTO_VERSION')),
      `${versionMin}-${versionMax}`,
    );
    assert.not.ok(
      peer.received.some((m) => m.type === MsgType.Hello),
      'answered HELLO to an incompatible peer',
    );
  }
  // An empty range (min > max) is malformed rather than incompatible.
  const peer = await connect();
  await peer.send(helloMsg({ versionMin: 3, versionMax: 1 }));
  assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_MALFORMED')));
  await afterCase();
});

test('a truncated frame then close: the connection is dropped, nothing else happens', async () => {
  const hello = messageFrame(await loadHasher(), helloMsg());
  for (const cut of [1, 6, 7, hello.length - 1]) {
    const peer = await connect();
    await peer.write(hello.subarray(0, cut));
    peer.end();
    await peer.waitClose();
  }
  // Inside a session: half a FILE_INFO, then FIN.
  const { peer } = await pushSession('trunc/');
  const frame = messageFrame(peer.hasher, fileInfo(1, 'a', 1));
  await peer.write(frame.subarray(0, frame.length - 3));
  peer.end();
  await peer.waitClose();
  await afterCase();
});

test('a truncated frame then a stall does not hold up other clients', async () => {
  const peer = await connect();
  const hello = messageFrame(peer.hasher, helloMsg());
  await peer.write(hello.subarray(0, hello.length - 2));
  // The handshake timeout closes it later (the half-open test waits for that); others are served meanwhile.
  await afterCase();
  peer.destroy();
});

test('a frame with a bad checksum: ABORT FCP_ERR_PROTO_BAD_CHECKSUM, before and inside a session', async () => {
  const peer = await connect();
  const payload = messagePayload(helloMsg());
  await peer.write(rawFrame(peer.hasher, MsgType.Hello, payload, { checksum: peer.hasher.h32(payload) ^ 1 }));
  assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_BAD_CHECKSUM')));

  const { peer: s } = await pushSession('badsum/');
  const info = messagePayload(fileInfo(1, 'a', 1));
  await s.write(rawFrame(s.hasher, MsgType.FileInfo, info, { checksum: 0 }));
  assert.is(hex(await s.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_BAD_CHECKSUM')));
  assert.equal(await readdir(path.join(root, 'badsum')), []);
  await afterCase();
});

test('a length over the type limit is refused from the header alone: ABORT FCP_ERR_PROTO_OVERSIZED', async () => {
  for (const [type, length] of [
    [MsgType.Attach, 49],
    [MsgType.Hello, 0xffff],
    [MsgType.Ping, 1],
    [MsgType.FileEnd, 15],
  ] as const) {
    const peer = await connect();
    // Only the 7-byte header: the daemon must not wait for (or buffer) the announced payload.
    await peer.write(rawFrame(peer.hasher, type, Buffer.alloc(0), { length, checksum: 0 }));
    assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_OVERSIZED')), `type ${type}`);
  }
  await afterCase();
});

test('an unknown or reserved frame type: ABORT FCP_ERR_PROTO_UNKNOWN_FLAG', async () => {
  for (const type of [0x00, 0x05, 0x7f, 0xff]) {
    const peer = await connect();
    await exchangeHello(peer);
    await peer.write(rawFrame(peer.hasher, type, Buffer.from([1, 2, 3])));
    assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_UNKNOWN_FLAG')), `type ${type}`);
  }
  await afterCase();
});

test('messages out of state are refused with ABORT FCP_ERR_PROTO_UNEXPECTED (or NOT_FCP before HELLO)', async () => {
  // DATA as the very first frame.
  let peer = await connect();
  await peer.write(dataFrame(peer.hasher, 1, 0, 0, Buffer.from('x')));
  assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_NOT_FCP')));
  // DATA, FILE_INFO, DONE, a second HELLO and SESSION in place of PUSH/PULL/ATTACH.
  for (const frame of [
    (h: RawPeer) => dataFrame(h.hasher, 1, 0, 0, Buffer.from('x')),
    (h: RawPeer) => messageFrame(h.hasher, fileInfo(1, 'a', 1)),
    (h: RawPeer) =>
      messageFrame(h.hasher, {
        type: MsgType.Done,
        filesSent: 0,
        filesSkipped: 0,
        filesFailed: 0,
        bytes: 0n,
      }),
    (h: RawPeer) => messageFrame(h.hasher, helloMsg()),
    (h: RawPeer) =>
      messageFrame(h.hasher, {
        type: MsgType.Session,
        sessionId: Buffer.alloc(16),
        flags: 0,
        maxConnections: 1,
        pieceSize: PIECE_SIZE,
      }),
  ]) {
    peer = await connect();
    await exchangeHello(peer);
    await peer.write(frame(peer));
    assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_UNEXPECTED')));
  }
  // A second PUSH inside a session.
  let s = (await pushSession('state/')).peer;
  await s.send({ type: MsgType.Push, flags: 0, connections: 1, dest: 'other/' });
  assert.is(hex(await s.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_UNEXPECTED')));
  // DONE while a file is still in progress.
  s = (await pushSession('state/')).peer;
  await s.send(fileInfo(1, 'pending.txt', 10));
  assert.is((await s.waitAnswer(1)).ready?.action, ReadyAction.Need);
  await s.send({ type: MsgType.Done, filesSent: 0, filesSkipped: 0, filesFailed: 0, bytes: 0n });
  assert.is(hex(await s.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_UNEXPECTED')));
  // FILE_INFO on a connection that joined with ATTACH: that connection is dropped (with or without ABORT).
  const opened = await pushSession('state/', { connections: 2 });
  const extra = track(await sendAttach(port, opened.session.sessionId));
  await extra.expect(MsgType.Attach);
  await extra.send(fileInfo(1, 'via-attach.txt', 4));
  await extra.waitClose();
  assert.is(
    hex(extra.aborts[0]?.code ?? wire('FCP_ERR_PROTO_UNEXPECTED')),
    hex(wire('FCP_ERR_PROTO_UNEXPECTED')),
  );
  assert.not.ok(
    extra.received.some((m) => m.type === MsgType.FileReady),
    'the entry was answered',
  );
  opened.peer.destroy();
  await eventually(
    async () => (await tempsUnder(path.join(root, 'state'))).length === 0,
    'temporaries removed',
  );
  assert.not.ok(existsSync(path.join(root, 'state', 'via-attach.txt')));
  assert.not.ok(existsSync(path.join(root, 'state', 'pending.txt')));
  await afterCase();
});

test('ATTACH with an unknown SessionID: ABORT FCP_ERR_SESSION_UNKNOWN, closed', async () => {
  for (const id of [Buffer.alloc(16, 0), randomBytes(16)]) {
    const peer = track(await sendAttach(port, id));
    assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_SESSION_UNKNOWN')));
    assert.not.ok(peer.received.some((m) => m.type === MsgType.Attach));
  }
  await afterCase();
});

test('ATTACH beyond the session connection limit: ABORT FCP_ERR_SESSION_SOCKETS, the others unaffected', async () => {
  const { peer, session } = await pushSession('attach/', { connections: 2 });
  assert.is(session.maxConnections, 2);
  const first = track(await sendAttach(port, session.sessionId));
  await first.expect(MsgType.Attach);
  const second = track(await sendAttach(port, session.sessionId));
  assert.is(hex(await second.expectAbortAndClose()), hex(wire('FCP_ERR_SESSION_SOCKETS')));
  // The session still works: a file through it arrives.
  const outcome = await offer(peer, fileInfo(1, 'ok.txt', 5), Buffer.from('hello'));
  assert.equal(outcome, { action: 'need', code: 0, done: 0 });
  await finishSession(peer, 1);
  assert.is(await readFile(path.join(root, 'attach', 'ok.txt'), 'utf8'), 'hello');
  await afterCase();
});

// ---------------------------------------------------------------------------------------------------------
// The session's destination

test('PUSH to a destination outside the root is refused before SESSION', async () => {
  const refusals = new Set(
    (['FCP_ERR_PATH_UNSAFE', 'FCP_ERR_PATH_OUTSIDE_ROOT', 'FCP_ERR_PATH_SYMLINK'] as const).map(wire),
  );
  refusals.add(0x0809); // ENOTDIR: 'link-out' is a symlink, not a directory
  for (const dest of [
    '../outside',
    '../outside/',
    '..',
    'legit/../../outside',
    '/etc',
    '/etc/',
    '/',
    outside,
    `${outside}/`,
    `${root}/../outside`,
    'a\0b',
    `${root}/x\0/`,
    'link-out',
    'link-out/',
    'link-out/sub/',
  ]) {
    const peer = track(await sendPushRequest(port, dest));
    const code = await peer.expectAbortAndClose();
    assert.ok(refusals.has(code), `${JSON.stringify(dest)}: ABORT ${hex(code)}`);
    assert.not.ok(
      peer.received.some((m) => m.type === MsgType.Session),
      `${JSON.stringify(dest)} got a SESSION`,
    );
  }
  await afterCase();
});

test('a single-file PUSH onto a symlink planted in the root replaces the link, never writes through it', async () => {
  await symlink(path.join(outside, 'victim.txt'), path.join(root, 'link-single'));
  const { peer } = await pushSession('link-single', { flags: TransferFlag.SingleFile });
  const outcome = await offer(peer, fileInfo(1, 'whatever.txt', 6), Buffer.from('pushed'));
  assert.is(outcome.action === 'fail' || outcome.done !== undefined, true);
  await finishSession(peer, 1);
  await afterCase();
});

test('PULL of paths outside the root (or through a link out of it) sends no file data', async () => {
  for (const source of [
    '../outside/canary.txt',
    `${outside}/canary.txt`,
    '/etc/passwd',
    'link-out/canary.txt',
    'link-out/',
    'link-out/*',
    'link-out',
  ]) {
    const peer = track(await sendPullRequest(port, source));
    // Be the most cooperative receiver possible: ask for every file the daemon announces (links and
    // directories carry no data: skipping them lets the session end), until the daemon ends the session
    // (ABORT, DONE or a close): only then is it certain that no data will follow.
    const asked = new Set<number>();
    const ended = () =>
      peer.closed || peer.received.some((m) => m.type === MsgType.Abort || m.type === MsgType.Done);
    const deadline = Date.now() + LIMIT_MS;
    while (!ended()) {
      if (Date.now() > deadline) throw new Error(`${source}: the daemon did not end the session`);
      for (const m of peer.received) {
        if ((m.type === MsgType.FileInfo || m.type === MsgType.DirInfo) && !asked.has(m.id)) {
          asked.add(m.id);
          const isFile = m.type === MsgType.FileInfo && m.kind === FileKind.File;
          const answer: FileReadyMsg = {
            type: MsgType.FileReady,
            entries: [{ id: m.id, action: isFile ? ReadyAction.Need : ReadyAction.Skip, code: 0 }],
          };
          await peer.send(answer);
        }
      }
      await delay(20);
    }
    const kinds = peer.received.map((m) => (m.type === MsgType.FileInfo ? `FILE_INFO(${m.kind})` : m.type));
    assert.not.ok(
      peer.received.some(
        (m) => m.type === MsgType.Data || (m.type === MsgType.FileInfo && m.kind === FileKind.File),
      ),
      `${source}: the daemon offered file data: ${JSON.stringify(kinds)}`,
    );
    peer.destroy();
  }
  await afterCase();
});

// ---------------------------------------------------------------------------------------------------------
// Entries inside a valid session

const UNSAFE_PATHS = [
  '..',
  '../escape',
  '../../escape',
  '../outside/pwned',
  'a/../../escape',
  'a/..',
  '/abs',
  '/etc/fcp-hostile-pwned',
  'a\0b',
  '\0',
  '',
  '/',
  'a//b',
  '//a',
  './a',
  'a/./b',
  'a/.',
  'a/',
];

test('FILE_INFO and DIR_INFO with unsafe paths: each answered FILE_READY fail, nothing written', async () => {
  const paths = [...UNSAFE_PATHS, `${outside}/pwned-abs`, `${root}/inside-but-absolute`];
  const { peer } = await pushSession('paths/');
  let id = 0;
  for (const p of paths) {
    const outcome = await offer(peer, fileInfo(++id, p, 4), Buffer.from('PWND'));
    assert.is(outcome.action, 'fail', `FILE_INFO ${JSON.stringify(p)}: ${JSON.stringify(outcome)}`);
    assert.is(hex(outcome.code), hex(wire('FCP_ERR_PATH_UNSAFE')), `FILE_INFO ${JSON.stringify(p)}`);
    const link = await offer(peer, linkInfo(++id, p, outside));
    assert.is(link.action, 'fail', `symlink ${JSON.stringify(p)}: ${JSON.stringify(link)}`);
    await peer.send({ type: MsgType.DirInfo, id: ++id, mode: 0o777, mtimeNs: OLD_MTIME_NS, path: p });
    const dir = await peer.waitAnswer(id);
    assert.is(dir.ready?.action, ReadyAction.Fail, `DIR_INFO ${JSON.stringify(p)}: ${JSON.stringify(dir)}`);
  }
  // '.' names the destination itself: a directory entry for it is fine, a file or link is not.
  assert.is((await offer(peer, fileInfo(++id, '.', 4), Buffer.from('PWND'))).action, 'fail');
  assert.is((await offer(peer, linkInfo(++id, '.', outside))).action, 'fail');
  await finishSession(peer, id);
  assert.equal(await readdir(path.join(root, 'paths')), []);
  await afterCase();
});

test('a symlink to the outside, then a file through it: refused (FCP_ERR_PATH_SYMLINK)', async () => {
  const { peer } = await pushSession('links/');
  const link = await offer(peer, linkInfo(1, 'evil', outside));
  assert.equal(link, { action: 'done', code: 0, done: 0 }, 'the link itself may be recreated as it is');
  assert.is(await readlink(path.join(root, 'links', 'evil')), outside);
  const through = await offer(peer, fileInfo(2, 'evil/pwned', 5), Buffer.from('pwned'));
  assert.equal(through, { action: 'fail', code: wire('FCP_ERR_PATH_SYMLINK'), done: undefined });
  const deeper = await offer(peer, fileInfo(3, 'evil/sub/pwned', 5), Buffer.from('pwned'));
  assert.is(deeper.action, 'fail');
  await peer.send({ type: MsgType.DirInfo, id: 4, mode: 0o777, mtimeNs: OLD_MTIME_NS, path: 'evil/sub' });
  assert.is((await peer.waitAnswer(4)).ready?.action, ReadyAction.Fail);
  await peer.send({ type: MsgType.DirInfo, id: 5, mode: 0o777, mtimeNs: OLD_MTIME_NS, path: 'evil' });
  assert.is((await peer.waitAnswer(5)).ready?.action, ReadyAction.Fail);
  await finishSession(peer, 5);
  await afterCase();
});

test('a symlink and a file through it announced back to back (no waiting): nothing lands outside', async () => {
  for (let round = 0; round < 5; round++) {
    const { peer } = await pushSession(`race${round}/`);
    await peer.send(linkInfo(1, 'evil', outside));
    await peer.send(fileInfo(2, 'evil/pwned', 5));
    await peer.send(fileInfo(3, 'evil/sub/pwned', 5));
    const outcomes: Outcome[] = [];
    for (const id of [1, 2, 3]) outcomes.push(await settle(peer, id, Buffer.from('pwned')));
    await finishSession(peer, 3);
    await assertNothingOutside();
    // The link and the directory it would shadow cannot both win.
    const ok = outcomes.filter((o) => o.done === 0).length;
    assert.ok(ok <= 2, JSON.stringify(outcomes));
  }
  await afterCase();
});

test('symlinks planted in the destination before the push are never followed', async () => {
  const dir = path.join(root, 'planted');
  await mkdir(dir);
  await symlink(outside, path.join(dir, 'dirlink'));
  await symlink(path.join(outside, 'victim.txt'), path.join(dir, 'filelink'));
  await symlink('../../outside', path.join(dir, 'rellink'));
  const { peer } = await pushSession('planted/');
  for (const [id, p] of [
    [1, 'dirlink/pwned'],
    [2, 'rellink/pwned'],
    [3, 'dirlink/a/b'],
  ] as const) {
    const outcome = await offer(peer, fileInfo(id, p, 5), Buffer.from('pwned'));
    assert.equal(outcome, { action: 'fail', code: wire('FCP_ERR_PATH_SYMLINK'), done: undefined }, p);
  }
  await peer.send({ type: MsgType.DirInfo, id: 4, mode: 0o777, mtimeNs: OLD_MTIME_NS, path: 'dirlink' });
  assert.is((await peer.waitAnswer(4)).ready?.action, ReadyAction.Fail);
  // A file named like a link to a file outside: the link may be replaced, the file it points to is not touched.
  await offer(peer, fileInfo(5, 'filelink', 9), Buffer.from('overwrite'));
  await finishSession(peer, 5);
  await afterCase();
});

test('a pre-existing temporary name that is a symlink to an outside file does not truncate that file', async () => {
  const dir = path.join(root, 'tempcase');
  await mkdir(dir);
  await symlink(path.join(outside, 'victim.txt'), path.join(dir, '.x.fcp-part'));
  await symlink(path.join(outside, 'victim.txt'), path.join(dir, '.empty.fcp-part'));
  const { peer } = await pushSession('tempcase/');
  const x = await offer(peer, fileInfo(1, 'x', 7), Buffer.from('payload'));
  const empty = await offer(peer, fileInfo(2, 'empty', 0), Buffer.alloc(0));
  await finishSession(peer, 2);
  await assertNothingOutside();
  // Either the file failed (FCP_ERR_PATH_SYMLINK) or the stale link was replaced; never written through.
  for (const [name, o] of [
    ['x', x],
    ['empty', empty],
  ] as const) {
    if (o.done === 0) assert.ok((await lstat(path.join(dir, name))).isFile(), name);
    else assert.is(hex(o.done), hex(wire('FCP_ERR_PATH_SYMLINK')), `${name}: ${JSON.stringify(o)}`);
  }
  await afterCase();
});

test('the same path twice in one session: the second is refused (FCP_ERR_PATH_DUPLICATE)', async () => {
  const { peer } = await pushSession('dup/');
  await peer.send(fileInfo(1, 'twice.txt', 5));
  await peer.send(fileInfo(2, 'twice.txt', 5));
  // A name equal to the first one's temporary file collides too.
  await peer.send(fileInfo(3, '.twice.txt.fcp-part', 5));
  const a = await settle(peer, 1, Buffer.from('first'));
  const b = await settle(peer, 2, Buffer.from('other'));
  const c = await settle(peer, 3, Buffer.from('tempo'));
  assert.equal(a, { action: 'need', code: 0, done: 0 });
  assert.equal(b, { action: 'fail', code: wire('FCP_ERR_PATH_DUPLICATE'), done: undefined });
  assert.equal(c, { action: 'fail', code: wire('FCP_ERR_PATH_DUPLICATE'), done: undefined });
  await finishSession(peer, 3);
  assert.is(await readFile(path.join(root, 'dup', 'twice.txt'), 'utf8'), 'first');
  // The same id twice is a protocol error.
  const s = (await pushSession('dup/')).peer;
  await s.send(fileInfo(7, 'one.txt', 1));
  await s.send(fileInfo(7, 'two.txt', 1));
  assert.is(hex(await s.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_UNEXPECTED')));
  await afterCase();
});

test('DATA for an id never requested: ABORT FCP_ERR_PROTO_UNEXPECTED', async () => {
  const { peer } = await pushSession('noreq/');
  await peer.sendData(42, 0, 0, Buffer.from('unsolicited'));
  assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_UNEXPECTED')));
  // An id that was announced but answered "fail" was never requested either.
  const s = (await pushSession('noreq/')).peer;
  const failed = await offer(s, fileInfo(1, '../x', 3));
  assert.is(failed.action, 'fail');
  await s.sendData(1, 0, 0, Buffer.from('abc'));
  assert.is(hex(await s.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_UNEXPECTED')));
  assert.equal(await readdir(path.join(root, 'noreq')), []);
  await afterCase();
});

test('DATA past the file size or at a wrong offset: ABORT FCP_ERR_FILE_RANGE, old file intact, no temp left', async () => {
  const dir = path.join(root, 'range');
  await mkdir(dir);
  await writeFile(path.join(dir, 'keep.txt'), 'old content');
  const cases: Array<[string, (p: RawPeer) => Promise<unknown>]> = [
    ['bytes past the end', (p) => p.sendData(1, 0, 0, Buffer.alloc(20, 0x42))],
    ['first DATA at offset 5', (p) => p.sendData(1, 0, 5, Buffer.alloc(5, 0x42))],
    ['piece 1 of a one-piece file', (p) => p.sendData(1, 1, 0, Buffer.alloc(5, 0x42))],
    ['piece 0xffffffff', (p) => p.sendData(1, 0xffffffff, 0, Buffer.alloc(5, 0x42))],
    [
      'overlapping offsets',
      async (p) => {
        await p.sendData(1, 0, 0, Buffer.alloc(5, 0x42));
        await p.sendData(1, 0, 3, Buffer.alloc(5, 0x42));
      },
    ],
  ];
  for (const [what, hostile] of cases) {
    const { peer } = await pushSession('range/');
    await peer.send(fileInfo(1, 'keep.txt', 10));
    assert.is((await peer.waitAnswer(1)).ready?.action, ReadyAction.Need, what);
    await hostile(peer);
    assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_FILE_RANGE')), what);
    await eventually(async () => (await tempsUnder(dir)).length === 0, `${what}: temporary removed`);
    assert.is(await readFile(path.join(dir, 'keep.txt'), 'utf8'), 'old content', what);
  }
  await afterCase();
});

test('FILE_END with a wrong checksum: not committed, old file intact, no temp left, session goes on', async () => {
  const dir = path.join(root, 'sum');
  await mkdir(dir);
  await writeFile(path.join(dir, 'keep.txt'), 'old content');
  const { peer } = await pushSession('sum/');
  const content = Buffer.from('NEW CONTENT!');
  await peer.send(fileInfo(1, 'keep.txt', content.length));
  assert.is((await peer.waitAnswer(1)).ready?.action, ReadyAction.Need);
  await peer.sendFile(1, content, fileChecksum(peer.hasher, content) ^ 1n);
  assert.is(hex((await peer.waitFileDone(1)).code), hex(wire('FCP_ERR_FILE_CHECKSUM')));
  // A FILE_END whose code says the sender failed: not committed either.
  await peer.send(fileInfo(2, 'keep2.txt', content.length));
  assert.is((await peer.waitAnswer(2)).ready?.action, ReadyAction.Need);
  await peer.write(dataFrame(peer.hasher, 2, 0, 0, content));
  await peer.send({
    type: MsgType.FileEnd,
    id: 2,
    code: 0x0502,
    checksum: fileChecksum(peer.hasher, content),
  });
  assert.is(hex((await peer.waitFileDone(2)).code), hex(0x0502));
  // A good file in the same session still arrives.
  assert.equal(await offer(peer, fileInfo(3, 'good.txt', 4), Buffer.from('good')), {
    action: 'need',
    code: 0,
    done: 0,
  });
  await finishSession(peer, 3);
  assert.is(await readFile(path.join(dir, 'keep.txt'), 'utf8'), 'old content');
  assert.not.ok(existsSync(path.join(dir, 'keep2.txt')));
  await eventually(async () => (await tempsUnder(dir)).length === 0, 'temporaries removed');
  await afterCase();
});

test('a piece sent twice with different bytes: whatever is committed matches FILE_END, never a mix', async () => {
  const { peer } = await pushSession('twice/');
  const first = Buffer.alloc(10, 0x41);
  await peer.send(fileInfo(1, 'twice.bin', 10));
  assert.is((await peer.waitAnswer(1)).ready?.action, ReadyAction.Need);
  await peer.sendData(1, 0, 0, first);
  await peer.sendData(1, 0, 0, Buffer.alloc(10, 0x42));
  await peer.send({ type: MsgType.FileEnd, id: 1, code: 0, checksum: fileChecksum(peer.hasher, first) });
  // Refusing the second copy (ABORT FCP_ERR_FILE_RANGE) or keeping the first (a re-send after a lost
  // connection) are both fine; committing bytes the FILE_END checksum does not describe is not.
  await peer.until(() => peer.closed || peer.answerFor(1).done !== undefined, LIMIT_MS, 'FILE_DONE or close');
  const target = path.join(root, 'twice', 'twice.bin');
  if (peer.answerFor(1).done?.code === 0) assert.ok((await readFile(target)).equals(first));
  else assert.not.ok(existsSync(target));
  peer.destroy();
  await afterCase();
});

test('a peer that disconnects mid-file: old file intact; a partial kept for resume cannot poison the next push', async () => {
  const dir = path.join(root, 'cut');
  await mkdir(dir);
  await writeFile(path.join(dir, 'keep.txt'), 'old content');
  const hostile = randomBytes(2 * PIECE_SIZE + 10);
  for (const how of ['destroy', 'end', 'abort'] as const) {
    const { peer } = await pushSession('cut/');
    await peer.send(fileInfo(1, 'keep.txt', hostile.length));
    const ready = (await peer.waitAnswer(1)).ready;
    assert.ok(ready?.action === ReadyAction.Need || ready?.action === ReadyAction.Resume, how);
    const piece0 = hostile.subarray(0, PIECE_SIZE);
    for (let off = 0; off < piece0.length; off += 60_000) {
      await peer.sendData(1, 0, off, piece0.subarray(off, Math.min(off + 60_000, piece0.length)));
    }
    // Piece 0 is on disk once acknowledged (a resumed file may have had it already: no ACK then).
    if (ready?.action === ReadyAction.Need) {
      await peer.until(
        () => peer.received.some((m) => m.type === MsgType.PieceAck && m.pieces.some((p) => p.id === 1)),
        LIMIT_MS,
        'PIECE_ACK for piece 0',
      );
    }
    await peer.sendData(1, 1, 0, hostile.subarray(PIECE_SIZE, PIECE_SIZE + 30_000));
    if (how === 'destroy') peer.destroy();
    else if (how === 'end') peer.end();
    else await peer.send({ type: MsgType.Abort, code: wire('FCP_ERR_SESSION_ABORTED'), text: 'bye' });
    await peer.waitClose();
    assert.is(await readFile(path.join(dir, 'keep.txt'), 'utf8'), 'old content', how);
    // The temporary is removed, or kept on purpose for a resume: then only with its piece index beside it.
    await eventually(async () => {
      const names = (await readdir(dir)).sort();
      return (
        names.join() === 'keep.txt' ||
        names.join() === ['.keep.txt.fcp-meta', '.keep.txt.fcp-part', 'keep.txt'].sort().join()
      );
    }, `${how}: temporary removed or kept with its index`);
  }
  // A legitimate push of a file with the very size and mtime the hostile peer announced: whatever partial
  // was kept must not end up in it.
  const legit = randomBytes(hostile.length);
  const local = path.join(src, 'keep.txt');
  await writeFile(local, legit);
  const secs = Number(OLD_MTIME_NS / 1_000_000_000n);
  await utimes(local, secs, secs);
  const warnings: string[] = [];
  await within(
    push({
      endpoint: { host: LOOPBACK, port },
      connections: 1,
      checksum: false,
      select: {},
      hasher: await loadHasher(),
      stats: createStats(performance.now()),
      onWarning: (err) => warnings.push(`${err.code}: ${err.message}`),
      sources: [local],
      dest: 'cut/',
    }),
    'the legitimate push after the hostile partial',
  );
  assert.ok((await readFile(path.join(dir, 'keep.txt'))).equals(legit), `poisoned; warnings: ${warnings}`);
  assert.equal((await readdir(dir)).sort(), ['keep.txt'], 'leftovers after a completed push');
  await rm(local);
  await afterCase();
});

test('huge announced sizes and counts: answered or refused (not an internal error), no absurd allocation', async () => {
  const rssBefore = process.memoryUsage.rss();
  const { peer } = await pushSession('huge/');
  await peer.send({ type: MsgType.FileCount, entries: 0xffffffff, bytes: 0xffffffffffffffffn });
  for (let id = 1; id <= 8; id++) await peer.send(fileInfo(id, `big${id}`, 2n ** 50n));
  for (let id = 1; id <= 8; id++) {
    await peer.until(() => peer.closed || peer.answerFor(id).ready !== undefined, LIMIT_MS, `answer ${id}`);
  }
  assert.is(peer.aborts[0]?.code !== wire('FCP_ERR_INTERNAL'), true, JSON.stringify(peer.aborts[0]));
  const rssMid = process.memoryUsage.rss();
  peer.destroy();
  const internal: string[] = [];
  for (const size of [2n ** 63n, 2n ** 64n - 1n, 2n ** 53n + 1n]) {
    const s = (await pushSession('huge/')).peer;
    await s.send(fileInfo(1, 'enormous', size));
    await s.until(() => s.closed || s.answerFor(1).ready !== undefined, LIMIT_MS, `answer for ${size}`);
    // A hostile size is the peer's fault: a refusal (a per-file fail or FCP_ERR_LIMIT_EXCEEDED), not a bug.
    const abort = s.aborts[0];
    if (abort?.code === wire('FCP_ERR_INTERNAL') || s.answerFor(1).ready?.code === wire('FCP_ERR_INTERNAL')) {
      internal.push(`size ${size}: ${abort?.text ?? 'FILE_READY fail FCP_ERR_INTERNAL'}`);
    }
    s.destroy();
  }
  const grown = Math.max(rssMid, process.memoryUsage.rss()) - rssBefore;
  assert.ok(grown < 256 * 1024 * 1024, `RSS grew by ${(grown / 1048576).toFixed(0)} MiB`);
  await eventually(async () => (await tempsUnder(path.join(root, 'huge'))).length === 0, 'no temporaries');
  await afterCase();
  assert.equal(internal, [], 'hostile sizes were answered with FCP_ERR_INTERNAL');
});

test(`${HALF_OPEN} half-open connections (silent, a partial ClientHello or HELLO) do not stop a legitimate push`, async () => {
  // The flood comes from another address than the legitimate client (127.0.0.2: any of 127/8 is loopback),
  // as an attacker's would: the per-address cap on connections in their handshake closes most at accept,
  // and the total cap keeps room for everyone else (spec/SECURITY.md §10).
  const hasher = await loadHasher();
  const partialHello = messageFrame(hasher, helloMsg()).subarray(0, 5);
  const partialClientHello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
  const started = Date.now();
  const idle: RawPeer[] = [];
  for (let i = 0; i < HALF_OPEN; i++) {
    const peer = track(await RawPeer.connectPlain(port, { localAddress: '127.0.0.2' }));
    if (i % 3 === 1) await peer.write(partialHello);
    if (i % 3 === 2) await peer.write(partialClientHello);
    idle.push(peer);
  }
  await afterCase();
  // The handshake timeout closes every one of them (bounded: timeout plus the 2 s ABORT grace, plus slack).
  const limit = HANDSHAKE_TIMEOUT_MS + 8_000 - (Date.now() - started);
  await Promise.all(idle.map((p) => p.waitClose(Math.max(limit, 1000))));
  assert.is(idle.filter((p) => p.closed).length, HALF_OPEN);
  await afterCase();
});

test('an unauthenticated client gets no session: no proof, a wrong token proof, plaintext, or a v1 HELLO', async () => {
  // TLS and HELLO, then PUSH with no AUTH_START: refused before anything is resolved.
  let peer = await connect();
  await exchangeHello(peer);
  await peer.send({ type: MsgType.Push, flags: 0, connections: 1, dest: 'unauth/' });
  assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_UNEXPECTED')));
  // AUTH_START, then PUSH and six wrong proofs: AUTH_RETRY five times, then ABORT FCP_ERR_AUTH_DENIED.
  peer = await connect();
  await exchangeHello(peer);
  await peer.send({
    type: MsgType.AuthStart,
    clientNonce: randomBytes(32),
    clientKx: generateKx().publicRaw,
    user: '',
  });
  await peer.expect(MsgType.AuthChallenge);
  await peer.send({ type: MsgType.Push, flags: 0, connections: 1, dest: 'unauth/' });
  for (let i = 0; i < 6; i++) {
    await peer.send({
      type: MsgType.AuthProof,
      method: AuthMethodCode.Token,
      keyBlob: new Uint8Array(0),
      proof: randomBytes(32),
    });
  }
  assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_AUTH_DENIED')));
  assert.equal(
    peer.received
      .filter((m) => m.type === MsgType.AuthRetry)
      .map((m) => (m.type === MsgType.AuthRetry ? m.attemptsLeft : -1)),
    [5, 4, 3, 2, 1],
  );
  assert.not.ok(peer.received.some((m) => m.type === MsgType.Session));
  // Plaintext to a daemon that requires TLS: one plaintext ABORT, nothing else.
  peer = track(await RawPeer.connectPlain(port));
  await peer.send(helloMsg());
  assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_AUTH_CHANNEL')));
  assert.not.ok(
    existsSync(path.join(root, 'unauth')),
    'the destination was created for an unauthenticated client',
  );
  await afterCase();
});

test('a push list sent between a refused and an accepted proof waits for the session; an overlong one, or one without ListBeforeSession, is refused', async () => {
  const withCap = helloMsg({ capabilities: Capability.ListBeforeSession });
  const request = { type: MsgType.Push, flags: 0, connections: 1, dest: 'early/' } as const;
  const contents = [Buffer.from('first early file\n'), Buffer.from('second\n')];
  const list = [
    fileInfo(1, 'one.txt', contents[0]!.length),
    fileInfo(2, 'two.txt', contents[1]!.length),
    { type: MsgType.FileCount, entries: 2, bytes: BigInt(contents[0]!.length + contents[1]!.length) },
  ] as const;
  // Kept across two AUTH_RETRYs (the list split between them), answered once the session starts.
  let peer = await connect();
  await authenticate(peer, request, { hello: withCap, refusedFirst: [list.slice(0, 1), list.slice(1)] });
  await peer.expect(MsgType.AuthRetry);
  await peer.expect(MsgType.AuthRetry);
  await peer.expect(MsgType.Session);
  for (const id of [1, 2]) {
    assert.is((await peer.waitAnswer(id)).ready?.action, ReadyAction.Need, `entry ${id}`);
    await peer.sendFile(id, contents[id - 1]!);
    assert.is((await peer.waitFileDone(id)).code, 0, `FILE_DONE ${id}`);
  }
  await peer.send({ type: MsgType.Done, filesSent: 2, filesSkipped: 0, filesFailed: 0, bytes: 0n });
  await peer.expect(MsgType.Done);
  assert.ok((await readFile(path.join(root, 'early', 'one.txt'))).equals(contents[0]!));
  assert.ok((await readFile(path.join(root, 'early', 'two.txt'))).equals(contents[1]!));
  peer.destroy();
  // More entries before SESSION than the protocol allows: refused before the good proof is even read.
  const overlong = Array.from({ length: MAX_LIST_BEFORE_SESSION + 1 }, (_, i) =>
    fileInfo(i + 1, `over/${i}`, 1),
  );
  peer = await connect();
  await authenticate(peer, { ...request, dest: 'overlong/' }, { hello: withCap, refusedFirst: [overlong] });
  assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_UNEXPECTED')));
  assert.not.ok(peer.received.some((m) => m.type === MsgType.Session));
  // Entries that hold more bytes than allowed (256 KiB plus one entry): 70 of ~4 KiB.
  const heavy = Array.from({ length: 70 }, (_, i) => fileInfo(i + 1, `${i}`.padEnd(4000, 'x'), 1));
  // Each of these is refused before the good proof is read, and nothing is created.
  const refusedCases: Array<[string, Parameters<typeof authenticate>[2], 'push' | 'pull']> = [
    ['heavy', { hello: withCap, refusedFirst: [heavy] }, 'push'],
    // A client whose HELLO did not offer the capability may not send a list before SESSION at all.
    ['nocap', { refusedFirst: [list] }, 'push'],
    // Nor may one that did, before its first proof, or on a PULL.
    ['beforeproof', { hello: withCap, beforeProofs: list }, 'push'],
    ['onpull', { hello: withCap, refusedFirst: [list] }, 'pull'],
    // Nothing but entries and one FILE_COUNT.
    ['twocounts', { hello: withCap, refusedFirst: [[list[2], list[2]]] }, 'push'],
    [
      'done',
      {
        hello: withCap,
        refusedFirst: [
          [list[0], { type: MsgType.Done, filesSent: 0, filesSkipped: 0, filesFailed: 0, bytes: 0n }],
        ],
      },
      'push',
    ],
  ];
  for (const [name, opts, kind] of refusedCases) {
    peer = await connect();
    const req: PushMsg | PullMsg =
      kind === 'push'
        ? { ...request, dest: `${name}/` }
        : { type: MsgType.Pull, flags: 0, connections: 1, source: `${name}/`, include: [], exclude: [] };
    await authenticate(peer, req, opts);
    assert.is(hex(await peer.expectAbortAndClose()), hex(wire('FCP_ERR_PROTO_UNEXPECTED')), name);
    assert.not.ok(
      peer.received.some((m) => m.type === MsgType.Session),
      `${name}: SESSION`,
    );
    assert.not.ok(existsSync(path.join(root, name)), `${name} was created`);
  }
  assert.not.ok(existsSync(path.join(root, 'overlong')));
  await afterCase();
});

test.run();
