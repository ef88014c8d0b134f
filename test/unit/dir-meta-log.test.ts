import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/errors.js';
import { type DirMeta, DirMetaLog, MAX_DIR_META_BYTES } from '../../src/transfer/dir-meta-log.js';
import { checkWirePath } from '../../src/transfer/wire-path.js';

// DirMetaLog (src/transfer/dir-meta-log.ts): directory metadata packed into chunks, read back newest first
// (deepest first for a list that names directories before their contents), capped.

function dir(p: string, mode: number, mtimeNs: bigint): DirMeta {
  return { rel: checkWirePath(p), mode, mtimeNs };
}

test('records come back whole, newest first, across chunks', () => {
  const log = new DirMetaLog();
  const added: DirMeta[] = [dir('.', 0o755, 1n)];
  // Long names and many of them: several 1 MiB chunks, records never split between two.
  for (let i = 0; i < 5000; i++) {
    added.push(dir(`a/x${'é'.repeat(i % 120)}/${i}`, (i * 37) & 0o1777, BigInt(i) * -1_000_000_007n));
  }
  for (const d of added) log.add(d);
  assert.is(log.count, added.length);
  assert.equal([...log.newestFirst()], added.reverse());
  log.clear();
  assert.is(log.count, 0);
  assert.equal([...log.newestFirst()], []);
});

test("mtimes beyond an i64 of nanoseconds come back exact: 2400, the wire's extremes, before 1970", () => {
  const log = new DirMetaLog();
  const I64_MAX = (1n << 63n) - 1n;
  const NS = 1_000_000_000n;
  // What the wire carries: i64 seconds and u32 nanoseconds (spec/PROTOCOL.md §5.1).
  const times = [
    13_569_465_600n * NS + 123_456_789n,
    I64_MAX * NS + NS - 1n,
    -(I64_MAX + 1n) * NS,
    -2_147_397_247n * NS,
    -1n,
    0n,
  ];
  const added = times.map((t, i) => dir(`d${i}`, 0o755, t));
  for (const d of added) log.add(d);
  assert.equal([...log.newestFirst()], added.reverse());
});

test('a list of directories before their contents comes back deepest first', () => {
  const log = new DirMetaLog();
  for (const p of ['.', 'a', 'a/b', 'a/b/c', 'd', 'd/e']) log.add(dir(p, 0o700, 0n));
  assert.equal(
    [...log.newestFirst()].map((d) => d.rel),
    ['d/e', 'd', 'a/b/c', 'a/b', 'a', '.'],
  );
});

test(`the log holds at most ${MAX_DIR_META_BYTES >> 20} MiB, then refuses with FCP_ERR_LIMIT_EXCEEDED`, () => {
  const log = new DirMetaLog();
  // 3764 bytes: as long as a path may be, near enough (4095, and 255 a name).
  const long = Array.from({ length: 15 }, () => 'x'.repeat(250)).join('/');
  let added = 0;
  let refused: unknown;
  // Bounded: the cap is reached after about MAX_DIR_META_BYTES / 3780 records.
  while (added <= MAX_DIR_META_BYTES / 3700) {
    try {
      log.add(dir(`${long}/${added}`, 0o755, 0n));
    } catch (err) {
      refused = err;
      break;
    }
    added++;
  }
  assert.instance(refused, FcpError);
  assert.is((refused as FcpError).code, 'FCP_ERR_LIMIT_EXCEEDED');
  assert.ok((refused as FcpError).fatal);
  assert.ok(added * 3780 > MAX_DIR_META_BYTES * 0.95, `only ${added} records fit`);
});

test.run();
