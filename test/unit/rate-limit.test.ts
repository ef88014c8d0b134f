// The --bwlimit bucket (transport/rate-limit.ts) on a fake clock, and the RATE parser (cli/rate-option.ts).
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { parseRate } from '../../src/cli/rate-option.js';
import { FcpError } from '../../src/protocol/index.js';
import { burstFor, RateLimit } from '../../src/transport/rate-limit.js';

function bucket(rateBps: number): { limit: RateLimit; clock: { now: number } } {
  const clock = { now: 0 };
  return { limit: new RateLimit(rateBps, () => clock.now), clock };
}

test('a full bucket lets its burst go at once, then charges time for the rest', () => {
  const { limit } = bucket(1_000_000);
  const burst = burstFor(1_000_000);
  assert.is(limit.reserve(burst), 0);
  // The next 1 MB costs one second at 1 MB/s.
  assert.is(limit.reserve(1_000_000), 1000);
});

test('waits queue behind each other: each taker pays after the one before', () => {
  const { limit } = bucket(1_000_000);
  limit.reserve(burstFor(1_000_000));
  assert.is(limit.reserve(500_000), 500);
  assert.is(limit.reserve(500_000), 1000);
  assert.is(limit.reserve(250_000), 1250);
});

test('refill is continuous with time and stops at the burst', () => {
  const { limit, clock } = bucket(1_000_000);
  limit.reserve(burstFor(1_000_000) + 100_000); // 100 ms of debt
  clock.now = 100; // paid
  assert.is(limit.reserve(0), 0);
  clock.now = 10_000; // idle for long: only a burst has built up
  assert.is(limit.reserve(burstFor(1_000_000)), 0);
  assert.is(limit.reserve(1000), 1);
});

test('over a long run, what the bucket lets through is at most burst + rate x time', () => {
  const rate = 4_000_000;
  const { limit, clock } = bucket(rate);
  let sent = 0;
  // A sender that sends 1 MiB pieces as soon as it is allowed, for 200 pieces.
  for (let i = 0; i < 200; i++) {
    clock.now += limit.reserve(1 << 20);
    sent += 1 << 20;
    assert.ok(sent <= burstFor(rate) + (rate * clock.now) / 1000 + 1, `piece ${i}`);
  }
  // ...and the cap is reached, not undershot: the wait is exactly the debt.
  assert.ok(sent >= (rate * clock.now) / 1000, 'reaches the rate');
});

test('take() resolves after the wait on a timer', async () => {
  const limit = new RateLimit(1_000_000);
  await limit.take(burstFor(1_000_000));
  const started = performance.now();
  await limit.take(20_000); // 20 ms
  assert.ok(performance.now() - started >= 15);
});

test('parseRate: SI and IEC suffixes, bytes per second', () => {
  assert.is(parseRate('10M'), 10_000_000);
  assert.is(parseRate('500k'), 500_000);
  assert.is(parseRate('500K'), 500_000);
  assert.is(parseRate('1.5G'), 1_500_000_000);
  assert.is(parseRate('64Mi'), 64 * 1024 * 1024);
  assert.is(parseRate('1Ki'), 1024);
  assert.is(parseRate('2Gi'), 2 * 1024 ** 3);
  assert.is(parseRate('1T'), 1e12);
  assert.is(parseRate('12345'), 12345);
  assert.is(parseRate('10MB'), 10_000_000);
  assert.is(parseRate('10MB/s'), 10_000_000);
  assert.is(parseRate('.5M'), 500_000);
});

test('parseRate: anything else is a usage error naming --bwlimit', () => {
  for (const bad of [
    '',
    'fast',
    '10X',
    '-1M',
    '0',
    '0.0001',
    '1e6',
    '10 M',
    'M',
    '1.2.3k',
    '10mi',
    'Infinity',
  ]) {
    try {
      parseRate(bad);
      assert.unreachable(`"${bad}" was accepted`);
    } catch (err) {
      assert.instance(err, FcpError, bad);
      assert.is((err as FcpError).code, 'FCP_ERR_USAGE', bad);
      assert.match((err as FcpError).message, /^--bwlimit /, bad);
    }
  }
});

test.run();
