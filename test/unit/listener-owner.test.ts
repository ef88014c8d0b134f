import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { vetSameHostFirstContact } from '../../src/security/first-contact.js';
import {
  addressBytes,
  listenerOwners,
  listenerUids,
  parseProcNetTcp,
} from '../../src/security/listener-owner.js';
import { test } from '../helpers/test.js';

// Who listens on a port of this host (src/security/listener-owner.ts), read from /proc/net/tcp and tcp6: the
// client pins a same-host daemon on first contact only when the socket is ours or root's (SECURITY.md §4.2).

const HEADER =
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
/** One /proc/net/tcp line: `local` as the kernel prints it, state `st` (0A is LISTEN). */
function line(local: string, uid: number, st = '0A'): string {
  return `   0: ${local} 00000000:0000 ${st} 00000000:00000000 00:00000000 00000000 ${uid}        0 4242 1\n`;
}
const FP = `SHA256:${'Q'.repeat(43)}`;

test('IPv4 on a little-endian host: 0100007F:1F90 is 127.0.0.1:8080; only LISTEN entries count', () => {
  const text = HEADER + line('0100007F:1F90', 1001) + line('0100007F:1F91', 1002, '01');
  const entries = parseProcNetTcp(text, 4, true);
  assert.is(entries.length, 1);
  assert.is(entries[0]!.port, 8080);
  assert.is(entries[0]!.uid, 1001);
  assert.ok(entries[0]!.address.equals(addressBytes('127.0.0.1')!));
  assert.equal(listenerUids(entries, '127.0.0.1', 8080), [1001]);
  assert.equal(listenerUids(entries, '::ffff:127.0.0.1', 8080), [1001]);
  assert.equal(listenerUids(entries, '127.0.0.2', 8080), []);
  assert.equal(listenerUids(entries, '127.0.0.1', 8081), [], 'an established socket is no listener');
  // A big-endian host prints the same address the other way round.
  assert.equal(
    listenerUids(parseProcNetTcp(HEADER + line('7F000001:1F90', 7), 4, false), '127.0.0.1', 8080),
    [7],
  );
});

test('IPv6: ::1 and a v4-mapped bind, each word in host order', () => {
  const text =
    HEADER +
    line('00000000000000000000000001000000:1F90', 1001) +
    line('0000000000000000FFFF00000100007F:0050', 1002);
  const entries = parseProcNetTcp(text, 6, true);
  assert.equal(listenerUids(entries, '::1', 8080), [1001]);
  assert.equal(listenerUids(entries, '0:0::1', 8080), [1001]);
  assert.equal(listenerUids(entries, '127.0.0.1', 8080), []);
  assert.equal(listenerUids(entries, '127.0.0.1', 80), [1002]);
});

test('wildcards: 0.0.0.0 takes IPv4, :: takes both; every owner that could answer is named', () => {
  const v4 = parseProcNetTcp(HEADER + line('00000000:1F90', 0), 4, true);
  const v6 = parseProcNetTcp(HEADER + line('00000000000000000000000000000000:1F90', 1003), 6, true);
  assert.equal(listenerUids(v4, '127.0.0.1', 8080), [0]);
  assert.equal(listenerUids(v4, '::1', 8080), []);
  assert.equal(listenerUids(v6, '::1', 8080), [1003]);
  assert.equal(listenerUids([...v4, ...v6], '10.1.2.3', 8080), [0, 1003]);
  assert.is(listenerUids(v4, 'localhost', 8080), undefined, 'a name is not an address');
});

test('a real socket of ours is found as ours; a port another uid holds is refused; no /proc, refused', async () => {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const dir = mkdtempSync(path.join(tmpdir(), 'fcp-unit-proc-'));
  try {
    assert.equal(await listenerOwners('127.0.0.1', port), [process.geteuid!()]);
    const contact = { host: '127.0.0.1', port, peerAddress: '127.0.0.1', fingerprint: FP };
    await vetSameHostFirstContact(contact);
    // The same port as another account would hold it.
    const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
    writeFileSync(path.join(dir, 'tcp'), HEADER + line(`0100007F:${hexPort}`, 4242));
    const err = await vetSameHostFirstContact(contact, dir).catch(
      (e: unknown) => e as Error & { code: string },
    );
    assert.is(err?.code, 'FCP_ERR_AUTH_HOST_KEY_UNVERIFIED');
    assert.match(err!.message, `127.0.0.1:${port}`);
    assert.match(err!.message, FP);
    assert.match(err!.message, 'uid 4242');
    const none = await vetSameHostFirstContact(contact, path.join(dir, 'missing')).catch(
      (e: unknown) => e as Error,
    );
    assert.match(none?.message ?? '', /no \/proc\/net\/tcp/);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
