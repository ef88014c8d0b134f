/**
 * Which local accounts own the listening socket a connection to this host reached (spec/SECURITY.md §4.2):
 * Linux lists every socket of the network namespace in /proc/net/tcp and tcp6 with the uid that created it,
 * readable by everyone. The client asks before trusting a same-host daemon on first use, because any local
 * account can listen on a loopback port a daemon of ours used to hold.
 */
import { readFile } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';
import { endianness } from 'node:os';
import { join } from 'node:path';

/** One LISTEN socket: its local address as 16 bytes (IPv4 as `::ffff:a.b.c.d`), port and owner. */
export interface ListenEntry {
  readonly address: Buffer;
  readonly port: number;
  readonly uid: number;
}

const LISTEN_STATE = '0A';
const V4_MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
/** `0.0.0.0` of /proc/net/tcp, as ListenEntry stores it. */
const V4_ANY = Buffer.concat([V4_MAPPED_PREFIX, Buffer.alloc(4)]);
const V6_ANY = Buffer.alloc(16);
/** Bounds the file read: a /proc/net/tcp line is 150 bytes, so this is over 100,000 sockets. */
const MAX_PROC_BYTES = 16 * 1024 * 1024;

/**
 * The LISTEN entries of /proc/net/tcp (`family` 4) or tcp6 (6). The kernel prints each 32-bit word of an
 * address with %08X in the host's byte order, so on a little-endian host every word reads reversed.
 */
export function parseProcNetTcp(
  text: string,
  family: 4 | 6,
  littleEndian: boolean = endianness() === 'LE',
): ListenEntry[] {
  const out: ListenEntry[] = [];
  const hexLength = family === 4 ? 8 : 32;
  for (const line of text.split('\n').slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid ...
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[3] !== LISTEN_STATE) continue;
    const [hexAddress, hexPort] = f[1]!.split(':');
    if (hexAddress?.length !== hexLength || !/^[0-9A-Fa-f]+$/.test(hexAddress)) continue;
    const port = Number.parseInt(hexPort ?? '', 16);
    const uid = Number(f[7]);
    if (!Number.isInteger(port) || !Number.isInteger(uid)) continue;
    const raw = wordsInOrder(Buffer.from(hexAddress, 'hex'), littleEndian);
    out.push({ address: family === 4 ? Buffer.concat([V4_MAPPED_PREFIX, raw]) : raw, port, uid });
  }
  return out;
}

/**
 * The owners of every listening socket that could have taken a connection to `address`:`port`: one bound to
 * that very address, or to the wildcard (`0.0.0.0` for IPv4; `::` for both, as a dual-stack socket takes
 * IPv4 too and /proc does not say which are IPv6-only). Empty when none matches; undefined for an address
 * that is not an IP literal.
 */
export function listenerUids(
  entries: readonly ListenEntry[],
  address: string,
  port: number,
): number[] | undefined {
  const target = addressBytes(address);
  if (target === undefined) return undefined;
  const isV4 = target.subarray(0, 12).equals(V4_MAPPED_PREFIX);
  const matches = entries.filter(
    (e) =>
      e.port === port &&
      (e.address.equals(target) || e.address.equals(V6_ANY) || (isV4 && e.address.equals(V4_ANY))),
  );
  return [...new Set(matches.map((e) => e.uid))];
}

/**
 * listenerUids over this host's /proc/net/tcp and tcp6; undefined when neither can be read (not Linux, or no
 * /proc), or for an address that is not an IP literal.
 */
export async function listenerOwners(
  address: string,
  port: number,
  procNetDir = '/proc/net',
): Promise<number[] | undefined> {
  const v4 = await readProc(join(procNetDir, 'tcp'));
  const v6 = await readProc(join(procNetDir, 'tcp6'));
  if (v4 === undefined && v6 === undefined) return undefined;
  const entries = [...parseProcNetTcp(v4 ?? '', 4), ...parseProcNetTcp(v6 ?? '', 6)];
  return listenerUids(entries, address, port);
}

async function readProc(file: string): Promise<string | undefined> {
  try {
    const text = await readFile(file, 'utf8');
    return text.length > MAX_PROC_BYTES ? undefined : text;
  } catch {
    // Missing (no /proc, IPv6 disabled) or unreadable: the caller decides what not knowing means.
    return undefined;
  }
}

function wordsInOrder(raw: Buffer, littleEndian: boolean): Buffer {
  if (littleEndian) for (let i = 0; i < raw.length; i += 4) raw.subarray(i, i + 4).reverse();
  return raw;
}

/** An IP literal as 16 bytes (IPv4 and `::ffff:a.b.c.d` alike as the latter); undefined for anything else. */
export function addressBytes(address: string): Buffer | undefined {
  if (isIPv4(address)) return Buffer.concat([V4_MAPPED_PREFIX, Buffer.from(address.split('.').map(Number))]);
  const text = address.split('%')[0]!; // a zone (`fe80::1%eth0`) names the link, not the address
  if (!isIPv6(text)) return undefined;
  // A dotted IPv4 tail (`::ffff:127.0.0.1`) is the last two 16-bit groups.
  const hex = text.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
    [
      [a, b],
      [c, d],
    ]
      .map(([hi, lo]) => ((Number(hi) << 8) | Number(lo)).toString(16))
      .join(':'),
  );
  const [head = '', tail] = hex.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const before = groups(head);
  const after = tail === undefined ? [] : groups(tail);
  const all = [...before, ...Array<string>(8 - before.length - after.length).fill('0'), ...after];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(Number.parseInt(g, 16), i * 2));
  return out;
}
