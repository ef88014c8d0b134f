// The cipher order of carried data connections: AES-GCM first, the same ciphers otherwise, and only where
// the user chose none (src/client/ssh-ciphers.ts).
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import {
  aesGcmFirst,
  carriedCiphers,
  choosesCiphers,
  ciphersFromConfig,
  cpuHasAes,
  withCiphers,
} from '../../src/client/ssh-ciphers.js';
import { test } from '../helpers/test.js';

const OPENSSH_DEFAULT = [
  'chacha20-poly1305@openssh.com',
  'aes128-ctr',
  'aes192-ctr',
  'aes256-ctr',
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
];

test('AES-GCM moves to the front, aes128 first; the rest keep their order; nothing added or dropped', () => {
  assert.equal(aesGcmFirst(OPENSSH_DEFAULT), [
    'aes128-gcm@openssh.com',
    'aes256-gcm@openssh.com',
    'chacha20-poly1305@openssh.com',
    'aes128-ctr',
    'aes192-ctr',
    'aes256-ctr',
  ]);
  // Only the AES-GCM ciphers the list has.
  assert.equal(aesGcmFirst(['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr']), [
    'aes256-gcm@openssh.com',
    'chacha20-poly1305@openssh.com',
    'aes128-ctr',
  ]);
  assert.equal(aesGcmFirst(['aes256-gcm@openssh.com', 'aes128-ctr', 'aes128-gcm@openssh.com']), [
    'aes128-gcm@openssh.com',
    'aes256-gcm@openssh.com',
    'aes128-ctr',
  ]);
});

test('no change when the list has no AES-GCM or has it first already', () => {
  assert.is(aesGcmFirst(['chacha20-poly1305@openssh.com']), undefined);
  assert.is(aesGcmFirst(['aes128-ctr', 'aes256-ctr']), undefined);
  assert.is(aesGcmFirst(['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr']), undefined);
  assert.is(aesGcmFirst(['aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com']), undefined);
  assert.is(aesGcmFirst([]), undefined);
});

test("ssh -G's ciphers line is read as a list", () => {
  const out = `user root\nhostname box\nciphers ${OPENSSH_DEFAULT.join(',')}\nport 22\n`;
  assert.equal(ciphersFromConfig(out), OPENSSH_DEFAULT);
  assert.is(ciphersFromConfig('user root\nhostname box\n'), undefined);
});

test('-c in --ssh is the user choosing, in any form; a value that holds a c is not', () => {
  for (const args of [
    ['-c', 'aes128-ctr'],
    ['-caes128-ctr'],
    ['-4c', 'x'],
    ['-p', '22', '-vc', 'x'],
    ['-ii', '-c', 'x'],
  ])
    assert.ok(choosesCiphers(args), args.join(' '));
  for (const args of [
    [],
    ['-p', '2222', '-J', 'bastion-c'],
    ['-o', 'StrictHostKeyChecking=no'],
    ['-oStrictHostKeyChecking=no'],
    ['-F', '-c'],
    ['-C', '-v'],
  ])
    assert.not.ok(choosesCiphers(args), args.join(' '));
});

test('-c goes before the user options', () => {
  const ssh = { file: 'ssh', args: ['-p', '2222'] };
  assert.equal(withCiphers(ssh, 'a,b'), { file: 'ssh', args: ['-c', 'a,b', '-p', '2222'] });
  assert.is(withCiphers(ssh, undefined), ssh);
});

/** An `ssh` that answers -G with the given ciphers: `default` for `-F /dev/null`, `configured` otherwise. */
function fakeSsh(dir: string, configured: string, stock: string): string {
  const file = path.join(dir, 'ssh');
  const script = [
    '#!/bin/sh',
    `case " $* " in *" -F /dev/null "*) echo "ciphers ${stock}" ;; *) echo "ciphers ${configured}" ;; esac`,
    '',
  ].join('\n');
  writeFileSync(file, script);
  chmodSync(file, 0o755);
  return file;
}

test("carried ciphers: AES-GCM first only when ssh's list is its default and the CPU has AES", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fcp-ciphers-'));
  try {
    const stock = OPENSSH_DEFAULT.join(',');
    const aes = await cpuHasAes();
    const expected = aes ? aesGcmFirst(OPENSSH_DEFAULT)!.join(',') : undefined;
    const same = { file: fakeSsh(dir, stock, stock), args: [] };
    const run = (ssh: { file: string; args: string[] }) =>
      carriedCiphers(ssh, 'box', Promise.resolve(`ciphers ${stock}\n`));
    assert.is(await run(same), expected);
    // The user's -c, or a config whose list differs from ssh's own: theirs, unchanged.
    assert.is(await run({ ...same, args: ['-c', 'aes128-ctr'] }), undefined);
    const other = { file: fakeSsh(dir, stock, 'chacha20-poly1305@openssh.com'), args: [] };
    assert.is(await run(other), undefined);
    assert.is(
      await carriedCiphers(same, 'box', Promise.resolve('ciphers chacha20-poly1305@openssh.com\n')),
      undefined,
    );
    // A failed query changes nothing.
    assert.is(await carriedCiphers(same, 'box', Promise.resolve(undefined)), undefined);
    assert.is(await run({ file: path.join(dir, 'missing-ssh'), args: [] }), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
