import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import {
  defaultKnownHostsPath,
  knownHostName,
  parseKnownHosts,
  replaceHostKey,
  verifyHostKey,
} from '../../src/security/known-hosts.js';
import { removeDir, tempDir } from '../helpers/ssh-keys.js';

// known_hosts (src/security/known-hosts.ts): trust on first use, loud refusal on change, explicit acceptance.

const FP_A = `SHA256:${'A'.repeat(43)}`;
const FP_B = `SHA256:${'B'.repeat(42)}c`;
let dir = '';
test.before(async () => {
  dir = await tempDir('knownhosts');
});
test.after(async () => removeDir(dir));

test('known-hosts: default path and pin names', () => {
  assert.is(defaultKnownHostsPath({}, '/home/u'), '/home/u/.config/fcp/known_hosts');
  assert.is(defaultKnownHostsPath({ XDG_CONFIG_HOME: '/x' }, '/home/u'), '/x/fcp/known_hosts');
  assert.is(defaultKnownHostsPath({ XDG_CONFIG_HOME: 'rel' }, '/home/u'), '/home/u/.config/fcp/known_hosts');
  assert.is(defaultKnownHostsPath({ FCP_KNOWN_HOSTS: '/k' }, '/home/u'), '/k');
  assert.is(knownHostName('Backup.Example.ORG', 7523), 'backup.example.org:7523');
  assert.is(knownHostName('::1', 7523), '[::1]:7523');
});

test('known-hosts: first use pins (file created 0600), then the same key is known', async () => {
  const file = path.join(dir, 'cfg', 'fcp', 'known_hosts');
  assert.is(await verifyHostKey(file, 'h:1', FP_A), 'pinned');
  assert.is((await stat(file)).mode & 0o777, 0o600);
  assert.is(await verifyHostKey(file, 'h:1', FP_A), 'known');
  assert.is(await verifyHostKey(file, 'h:2', FP_B), 'pinned', 'another port is another daemon');
  assert.is(await readFile(file, 'utf8'), `h:1 ${FP_A}\nh:2 ${FP_B}\n`);
});

test('known-hosts: a changed key is refused loudly, naming both fingerprints and the line', async () => {
  const file = path.join(dir, 'changed');
  await writeFile(file, `# pins\nother:1 ${FP_B}\nh:1 ${FP_A}\n`);
  try {
    await verifyHostKey(file, 'h:1', FP_B);
    assert.unreachable('accepted a changed host key');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'FCP_ERR_AUTH_HOST_KEY_CHANGED');
    const msg = (err as Error).message;
    assert.match(msg, 'REMOTE HOST IDENTIFICATION HAS CHANGED');
    assert.match(msg, FP_A);
    assert.match(msg, FP_B);
    assert.match(msg, `${file}:3`);
    assert.match(msg, `--accept-host-key ${FP_B}`);
  }
  assert.is(await readFile(file, 'utf8'), `# pins\nother:1 ${FP_B}\nh:1 ${FP_A}\n`, 'file untouched');
});

test('known-hosts: replaceHostKey accepts the new key and keeps the other lines', async () => {
  const file = path.join(dir, 'replace');
  await writeFile(file, `# pins\nh:1 ${FP_A}\nother:1 ${FP_A}\nh:1 ${FP_A}\n`);
  await replaceHostKey(file, 'h:1', FP_B);
  assert.is(await verifyHostKey(file, 'h:1', FP_B), 'known');
  assert.equal(
    parseKnownHosts(await readFile(file, 'utf8')).map((l) => [l.name, l.fingerprint]),
    [
      ['other:1', FP_A],
      ['h:1', FP_B],
    ],
  );
  try {
    await replaceHostKey(file, 'h:1', 'md5:00');
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, 'not a fingerprint');
  }
});

test.run();
