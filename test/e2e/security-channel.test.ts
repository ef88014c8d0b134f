// The channel end to end (spec/SECURITY.md §3, §6): what a byte-recording proxy sees with and without
// encryption, a recorded handshake replayed, a TLS man in the middle with its own certificate, and ATTACH
// with a known SessionID but no valid proof. The daemon runs as us (same-host token logins, root's token
// when the suite runs as root) and accepts --no-encryption clients, which prove the test could see the
// plaintext if it were there.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { ERROR_CODES, MsgType } from '../../src/protocol/index.js';
import { loadOrCreateHostKey } from '../../src/security/host-key.js';
import { attachProof } from '../../src/security/session-secret.js';
import { acceptTls, connectTls, createServerContext } from '../../src/security/tls-channel.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { describeRun, type RunResult, runFcp } from '../helpers/cli.js';
import { type ChildDaemon, HOST, spawnDaemon } from '../helpers/daemon.js';
import { startRecordingProxy } from '../helpers/recording-proxy.js';
import { authenticate, exchangeHello, openPush, RawPeer, sendAttach } from '../helpers/raw-peer.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'fcp-e2e-channel-'));
const served = path.join(tmp, 'served');
const configDir = path.join(tmp, 'config');
let daemon: ChildDaemon;
const MARKER = `FCP-PLAINTEXT-MARKER-${randomBytes(8).toString('hex')}`;

function fcp(args: string[]): Promise<RunResult> {
  return runFcp(args, { env: { FCP_CONFIG_DIR: configDir, SSH_AUTH_SOCK: '' } });
}

function hex(code: number | undefined): string {
  return code === undefined ? 'none' : `0x${code.toString(16).padStart(4, '0')}`;
}

test.before(async () => {
  mkdirSync(served);
  daemon = await spawnDaemon({ root: served, args: ['--no-encryption'] });
});

test.after(async () => {
  await daemon?.stop();
  await rm(tmp, { recursive: true, force: true });
});

test('a recording proxy sees no plaintext by default, and does with --no-encryption', async () => {
  const dir = path.join(tmp, `${MARKER}-dir`);
  mkdirSync(dir);
  await writeFile(path.join(dir, `${MARKER}.txt`), `${MARKER}\n`.repeat(1000));
  for (const [mode, extra] of [
    ['tls', []],
    ['plain', ['--no-encryption']],
  ] as const) {
    const proxy = await startRecordingProxy({ target: { host: HOST, port: daemon.port } });
    try {
      const r = await fcp(['push', ...extra, '-n', '3', dir, `${HOST}:${proxy.port}:${mode}/`]);
      assert.is(r.code, 0, `${mode}: ${describeRun(r)}`);
      assert.is(
        await readFile(path.join(served, mode, `${MARKER}-dir`, `${MARKER}.txt`), 'utf8'),
        `${MARKER}\n`.repeat(1000),
      );
      const rec = proxy.recorded();
      assert.not.ok(rec.truncated);
      assert.ok(rec.up.length > 20_000, `${mode}: ${rec.up.length} bytes recorded`);
      const seen = rec.up.includes(MARKER) || rec.down.includes(MARKER);
      if (mode === 'tls') {
        assert.not.ok(seen, 'the marker (file name or content) crossed the wire in clear with TLS');
        // Every connection of the session is TLS: each starts with a handshake record.
        for (const [i, c] of proxy.recordedByConnection().entries())
          assert.is(c.up[0], 0x16, `connection ${i}`);
      } else {
        assert.ok(seen, 'with --no-encryption the test must be able to see the marker');
      }
    } finally {
      await proxy.close();
    }
  }
});

test('a recorded --no-encryption handshake replayed byte for byte gets no session', async () => {
  const proxy = await startRecordingProxy({ target: { host: HOST, port: daemon.port } });
  const src = path.join(tmp, 'replay.txt');
  await writeFile(src, 'replayed?\n');
  try {
    const r = await fcp(['push', '--no-encryption', '-n', '1', src, `${HOST}:${proxy.port}:replay/`]);
    assert.is(r.code, 0, describeRun(r));
  } finally {
    await proxy.close();
  }
  const recorded = proxy.recordedByConnection()[0]!.up;
  await rm(path.join(served, 'replay'), { recursive: true });
  const peer = await RawPeer.connectPlain(daemon.port);
  try {
    await peer.write(recorded);
    await peer.waitClose(15_000);
    const types = peer.received.map((m) => m.type);
    assert.ok(types.includes(MsgType.AuthChallenge), JSON.stringify(types));
    assert.ok(
      types.includes(MsgType.AuthRetry),
      `the replayed proof was not refused: ${JSON.stringify(types)}`,
    );
    assert.not.ok(types.includes(MsgType.Session), 'a replayed handshake got a SESSION');
  } finally {
    peer.destroy();
  }
  assert.not.ok(statSync(path.join(served, 'replay'), { throwIfNoEntry: false }), 'the replay wrote');
  assert.match(daemon.stderr(), /authentication refused: wrong token proof/);
});

test('a TLS man in the middle with its own certificate is refused before any proof (exit 7)', async () => {
  const mitmKey = await loadOrCreateHostKey(path.join(tmp, 'mitm-state'));
  const context = createServerContext(mitmKey);
  const sockets = new Set<net.Socket>();
  let relayedUp = 0;
  // Decrypts with its own key, then re-encrypts to the daemon; a failed handshake drops the client.
  const relay = async (client: net.Socket) => {
    const inner = await acceptTls(client, context, 5000);
    inner.on('error', () => {});
    const raw = net.connect({ host: HOST, port: daemon.port });
    sockets.add(raw);
    raw.on('error', () => {});
    await new Promise((resolve) => raw.once('connect', resolve));
    const outer = await connectTls(raw, 5000);
    outer.on('error', () => {});
    // Decrypt, count, re-encrypt: the MITM reads and forwards everything in both directions.
    inner.on('data', (d: Buffer) => {
      relayedUp += d.length;
      outer.write(d);
    });
    outer.on('data', (d: Buffer) => inner.write(d));
    inner.on('close', () => outer.destroy());
    outer.on('close', () => inner.destroy());
  };
  const mitm = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => {});
    relay(client).catch(() => client.destroy());
  });
  await new Promise<void>((resolve) => mitm.listen(0, HOST, resolve));
  const port = (mitm.address() as net.AddressInfo).port;
  try {
    const src = path.join(tmp, 'mitm.txt');
    await writeFile(src, 'through a man in the middle\n');
    const r = await fcp(['push', '--retries', '0', src, `${HOST}:${port}:mitm/`]);
    assert.is(r.code, EXIT.AUTH, describeRun(r));
    assert.match(r.stderr, /key other than its TLS certificate/);
    assert.ok(relayedUp > 0, 'the client spoke through the MITM');
    assert.not.ok(
      statSync(path.join(served, 'mitm'), { throwIfNoEntry: false }),
      'the relayed session wrote',
    );
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => mitm.close(resolve));
  }
});

test('ATTACH with the right SessionID but no valid proof is refused (FCP_ERR_SESSION_UNKNOWN)', async () => {
  const unknown = hex(ERROR_CODES.FCP_ERR_SESSION_UNKNOWN.wire);
  const { peer, session, secret } = await openPush(daemon.port, 'attach/', { connections: 4 });
  const id = session.sessionId;
  const attachTo = async (
    proofFor: (nonce: Uint8Array, binding: Uint8Array) => Uint8Array,
    plain = false,
  ) => {
    const p = plain ? await RawPeer.connectPlain(daemon.port) : await RawPeer.connect(daemon.port);
    await exchangeHello(p);
    await p.send({ type: MsgType.Attach, sessionId: id });
    const challenge = await p.expect(MsgType.AttachChallenge);
    await p.send({ type: MsgType.AttachProof, proof: proofFor(challenge.nonce, p.binding) });
    return p;
  };
  try {
    // A sniffed SessionID alone: any proof without the secret.
    const guessed = await attachTo(() => randomBytes(32));
    assert.is(hex(await guessed.expectAbortAndClose()), unknown);
    // The right secret, but a proof made for another connection's nonce and channel (a replayed proof).
    const other = await RawPeer.connect(daemon.port);
    await exchangeHello(other);
    await other.send({ type: MsgType.Attach, sessionId: id });
    const otherChallenge = await other.expect(MsgType.AttachChallenge);
    const stolen = attachProof(secret, id, otherChallenge.nonce, other.binding);
    const replayed = await attachTo(() => stolen);
    assert.is(hex(await replayed.expectAbortAndClose()), unknown);
    // The right secret over plaintext, for a session whose control connection is TLS.
    const plain = await attachTo((nonce, binding) => attachProof(secret, id, nonce, binding), true);
    assert.is(hex(await plain.expectAbortAndClose()), unknown);
    // The proof was good for the connection it was made for: that one joins.
    await other.send({ type: MsgType.AttachProof, proof: stolen });
    await other.expect(MsgType.Attach);
    other.destroy();
    for (const p of [guessed, replayed, plain]) {
      assert.not.ok(
        p.received.some((m) => m.type === MsgType.Attach),
        'joined without a valid proof',
      );
    }
  } finally {
    peer.destroy();
  }
  assert.equal(await readdir(path.join(served, 'attach')), []);
});

test('--no-encryption keeps ATTACH proofs: a sniffed SessionID of a plaintext session cannot join', async () => {
  const control = await RawPeer.connectPlain(daemon.port);
  try {
    const auth = await authenticate(control, {
      type: MsgType.Push,
      flags: 0,
      connections: 4,
      dest: 'plain-attach/',
    });
    const session = await control.expect(MsgType.Session);
    const sniffer = await RawPeer.connectPlain(daemon.port);
    await exchangeHello(sniffer);
    await sniffer.send({ type: MsgType.Attach, sessionId: session.sessionId });
    await sniffer.expect(MsgType.AttachChallenge);
    await sniffer.send({ type: MsgType.AttachProof, proof: randomBytes(32) });
    assert.is(hex(await sniffer.expectAbortAndClose()), hex(ERROR_CODES.FCP_ERR_SESSION_UNKNOWN.wire));
    // The client that holds the secret joins the same way.
    const owner = await sendAttach(daemon.port, session.sessionId, auth.secret, { plain: true });
    await owner.expect(MsgType.Attach);
    owner.destroy();
  } finally {
    control.destroy();
  }
});

test.run();
