import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { MsgType } from '../../src/protocol/constants.js';
import { checkPublicKeyProof, makePublicKeyProof } from '../../src/security/proofs.js';
import { SshAgentClient } from '../../src/security/ssh-agent.js';
import { parsePublicKeyLine, type SshPublicKey } from '../../src/security/ssh-keys.js';
import type { Handshake, RequestBinding } from '../../src/security/transcript.js';
import {
  generateKey,
  removeDir,
  startAgent,
  type TestAgent,
  type TestKey,
  tempDir,
} from '../helpers/ssh-keys.js';

// ssh-agent (src/security/ssh-agent.ts): a real `ssh-agent -D` signs the client's proof, our verifier checks it.

let dir = '';
let agent: TestAgent;
let client: SshAgentClient;
const loaded: TestKey[] = [];

test.before(async () => {
  dir = await tempDir('agent');
  agent = await startAgent(dir);
  for (const type of ['ed25519', 'ecdsa-256', 'ecdsa-384', 'rsa'] as const) {
    const k = await generateKey(dir, type, `id_${type}`);
    agent.add(k.path);
    loaded.push(k);
  }
  client = await SshAgentClient.connect(agent.socket);
});
test.after(async () => {
  client.close();
  await agent.stop();
  await removeDir(dir);
});

function handshake(): Handshake {
  return {
    clientNonce: randomBytes(32),
    serverNonce: randomBytes(32),
    channelBinding: randomBytes(32),
    hostKeyFingerprint: randomBytes(32),
    clientKx: randomBytes(32),
    serverKx: randomBytes(32),
    user: 'alice',
  };
}
const request: RequestBinding = { type: MsgType.Push, payload: Buffer.from('push payload') };

async function agentSigner(k: TestKey) {
  const ids = await client.listIdentities();
  const want = parsePublicKeyLine(k.publicLine).key;
  const id = ids.find((i) => i.blob.equals(want.blob));
  assert.ok(id?.publicKey, `agent holds ${k.type}`);
  return { signer: client.signer({ ...id!, publicKey: id!.publicKey! }), pub: want };
}

test('ssh-agent: lists the loaded keys with their comments', async () => {
  const ids = await client.listIdentities();
  assert.is(ids.length, loaded.length);
  for (const k of loaded) {
    const blob = parsePublicKeyLine(k.publicLine).key.blob;
    const id = ids.find((i) => i.blob.equals(blob));
    assert.ok(id, k.type);
    assert.is(id!.comment, `id_${k.type}@test`);
  }
});

test('ssh-agent: ed25519 and ecdsa proofs verify; a tampered transcript does not', async () => {
  for (const k of loaded.filter((l) => l.type !== 'rsa')) {
    const { signer, pub } = await agentSigner(k);
    const h = handshake();
    const proof = await makePublicKeyProof(signer, h, request);
    assert.ok(checkPublicKeyProof(pub, h, request, proof), `${k.type} valid`);
    assert.not.ok(checkPublicKeyProof(pub, { ...h, user: 'root' }, request, proof), `${k.type} other user`);
    assert.not.ok(
      checkPublicKeyProof(pub, h, { type: MsgType.Pull, payload: request.payload }, proof),
      `${k.type} other request`,
    );
    assert.not.ok(
      checkPublicKeyProof(pub, { ...h, serverNonce: randomBytes(32) }, request, proof),
      'replayed',
    );
  }
});

test('ssh-agent: rsa signs with rsa-sha2-256 and rsa-sha2-512 on request', async () => {
  const { signer, pub } = await agentSigner(loaded.find((l) => l.type === 'rsa')!);
  for (const alg of ['rsa-sha2-256', 'rsa-sha2-512'] as const) {
    const h = handshake();
    const proof = await makePublicKeyProof(signer, h, request, alg);
    assert.is(proof.subarray(4, 4 + proof.readUInt32BE(0)).toString(), alg);
    assert.ok(checkPublicKeyProof(pub, h, request, proof), alg);
    assert.not.ok(
      checkPublicKeyProof(pub, { ...h, channelBinding: randomBytes(32) }, request, proof),
      'relayed',
    );
  }
});

test("ssh-agent: a proof does not verify under another account's key", async () => {
  const { signer } = await agentSigner(loaded[0]!);
  const other: SshPublicKey = parsePublicKeyLine(
    (await generateKey(dir, 'ed25519', 'id_bob')).publicLine,
  ).key;
  const h = handshake();
  assert.not.ok(checkPublicKeyProof(other, h, request, await makePublicKeyProof(signer, h, request)));
});

test('ssh-agent: asking for a key it does not hold is a clear refusal', async () => {
  const foreign = parsePublicKeyLine((await generateKey(dir, 'ed25519', 'id_foreign')).publicLine).key;
  try {
    await client.sign(foreign.blob, Buffer.from('x'), 0);
    assert.unreachable('signed with a key it does not hold');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'FCP_ERR_AUTH_AGENT');
    assert.match((err as Error).message, 'refused to sign');
  }
  // The connection is still usable after a FAILURE answer.
  assert.is((await client.listIdentities()).length, loaded.length);
});

test('ssh-agent: an oversized reply from a hostile socket is refused before buffering it', async () => {
  const sock = path.join(dir, 'evil.sock');
  const server = createServer((s) => {
    s.on('data', () => s.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 12])));
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  const evil = await SshAgentClient.connect(sock);
  try {
    await evil.listIdentities();
    assert.unreachable('accepted a 2 GiB message');
  } catch (err) {
    assert.match((err as Error).message, /message of \d+ bytes/);
  } finally {
    evil.close();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A fake agent on `name` that answers every request with `answer`, written one byte per event-loop turn. */
async function drippingAgent(name: string, answer: Buffer) {
  const sock = path.join(dir, name);
  const server = createServer((s) => {
    s.on('error', () => {});
    s.on('data', () => {
      let at = 0;
      const next = (): void => {
        if (s.destroyed || at === answer.length) return;
        s.write(answer.subarray(at, ++at));
        setImmediate(next);
      };
      next();
    });
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  return { sock, close: () => new Promise((resolve) => server.close(resolve)) };
}

test('ssh-agent: an answer that arrives a byte at a time is read whole; a stray byte after it is refused', async () => {
  const noKeys = Buffer.from([0, 0, 0, 5, 12, 0, 0, 0, 0]); // IDENTITIES_ANSWER, 0 keys
  const fake = await drippingAgent('drip.sock', noKeys);
  const slow = await SshAgentClient.connect(fake.sock);
  try {
    assert.equal(await slow.listIdentities(), []);
    assert.equal(await slow.listIdentities(), []); // the next answer starts clean
  } finally {
    slow.close();
    await fake.close();
  }
  const extra = await drippingAgent('drip-extra.sock', Buffer.concat([noKeys, Buffer.of(0)]));
  const overrun = await SshAgentClient.connect(extra.sock);
  try {
    // The whole answer resolves the request; the byte after it starts a message that cannot be one.
    await overrun.listIdentities();
    await overrun.listIdentities();
    assert.unreachable('accepted a stray byte');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'FCP_ERR_AUTH_AGENT');
    assert.match((err as Error).message, /^ssh-agent sent /);
  } finally {
    overrun.close();
    await extra.close();
  }
});

test('ssh-agent: a missing socket is FCP_ERR_AUTH_AGENT', async () => {
  try {
    await SshAgentClient.connect(path.join(dir, 'nope.sock'));
    assert.unreachable();
  } catch (err) {
    assert.is((err as { code?: string }).code, 'FCP_ERR_AUTH_AGENT');
  }
});

test.run();
