// A daemon that accepts TLS only answers a plaintext client with one ABORT FCP_ERR_AUTH_CHANNEL whose text
// names the daemon's real cause (spec/SECURITY.md §3.2): its default, `--encryption`, `encryption = true`
// in its config file, or being a one-session fcpd; and tells the client what to change. Real fcpd
// processes, a raw plaintext peer.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { wireCodeOf } from '../../src/protocol/errors.js';
import { type ChildDaemon, spawnDaemon } from '../helpers/daemon.js';
import { helloMsg, RawPeer } from '../helpers/raw-peer.js';
import { startServeOnce } from '../helpers/serve-once.js';
import { test } from '../helpers/test.js';
import { removeTree } from '../helpers/tree.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'fcp-e2e-tls-only-'));

/** A config file for the daemon holding `text` (an empty one: no /etc/fcpd.conf is read instead). */
function configFile(name: string, text: string): string {
  const file = path.join(tmp, name);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

const CLIENT_ADVICE = /: connect with TLS \(no --no-encryption, no encryption = false in fcp's config\)$/;

/** The ABORT text a plaintext HELLO gets from the daemon on `port`. */
async function plaintextRefusal(port: number): Promise<string> {
  const peer = await RawPeer.connectPlain(port);
  try {
    await peer.send(helloMsg());
    assert.is(await peer.expectAbortAndClose(), wireCodeOf('FCP_ERR_AUTH_CHANNEL'));
    return peer.aborts[0]!.text;
  } finally {
    peer.destroy();
  }
}

async function refusalOf(args: string[]): Promise<string> {
  let daemon: ChildDaemon | undefined;
  try {
    daemon = await spawnDaemon({ root: tmp, args });
    return await plaintextRefusal(daemon.port);
  } finally {
    await daemon?.stop();
  }
}

test.after(() => removeTree(tmp));

test('a standing fcpd started without any encryption setting: its default', async () => {
  const text = await refusalOf(['--config', configFile('empty.conf', '')]);
  assert.match(text, /^plaintext refused: this fcpd accepts TLS only, its default/);
  assert.match(text, CLIENT_ADVICE);
});

test('--encryption on the command line: named as such', async () => {
  const text = await refusalOf(['--config', configFile('empty2.conf', ''), '--encryption']);
  assert.match(text, /^plaintext refused: this fcpd accepts TLS only, as started with --encryption/);
  assert.match(text, CLIENT_ADVICE);
});

test('encryption = true in its config file: named as such, without the file path', async () => {
  const text = await refusalOf(['--config', configFile('fcpd.conf', 'encryption = true\n')]);
  assert.match(
    text,
    /^plaintext refused: this fcpd accepts TLS only, as its config file sets encryption = true/,
  );
  assert.not.match(text, /fcpd\.conf/);
  assert.match(text, CLIENT_ADVICE);
});

test('a one-session fcpd (what fcp starts over ssh): named as such', async () => {
  const d = await startServeOnce({ root: tmp });
  try {
    const text = await plaintextRefusal(d.info.port);
    assert.match(text, /^plaintext refused: a one-session fcpd \(fcpd --serve-once\) accepts TLS only/);
  } finally {
    await d.cleanup();
  }
});

test.run();
