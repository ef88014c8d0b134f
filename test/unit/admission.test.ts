import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import {
  Admission,
  dropPercent,
  MAX_STARTUPS,
  type MaxStartups,
  type Slot,
  ThrottleReport,
} from '../../src/daemon/admission.js';

// Which connections may start a handshake (src/daemon/admission.ts, spec/SECURITY.md §10): sshd's
// MaxStartups start:rate:full random early drop, a cap per address, and an allowance for sessions.

const LIMITS: MaxStartups = { start: 4, rate: 30, full: 10 };
/** Never drops at random: only the hard caps apply. */
const lucky = () => 99;

/** A random source that plays back `draws` in order, then fails the test if asked for more. */
function scripted(draws: number[]): () => number {
  let i = 0;
  return () => {
    const d = draws[i++];
    if (d === undefined) throw new Error('the policy drew more random numbers than expected');
    return d;
  };
}

function admitAll(a: Admission, address: string, n: number): Slot[] {
  const slots: Slot[] = [];
  for (let i = 0; i < n; i++) {
    const s = a.admit(address);
    assert.ok(s, `connection ${i} from ${address}`);
    slots.push(s);
  }
  return slots;
}

test('the drop chance: 0 below start, rate at start, rising linearly, 100 at full (sshd should_drop_connection)', () => {
  const chances = [0, 3, 4, 5, 7, 9, 10, 50].map((n) => dropPercent(n, LIMITS));
  // (100 - 30) * (n - 4) / 6 + 30, rounded down as sshd's integer arithmetic does.
  assert.equal(chances, [0, 0, 30, 41, 65, 88, 100, 100]);
  assert.is(dropPercent(MAX_STARTUPS.start - 1, MAX_STARTUPS), 0);
  assert.is(dropPercent(MAX_STARTUPS.start, MAX_STARTUPS), MAX_STARTUPS.rate);
  assert.is(dropPercent(MAX_STARTUPS.full, MAX_STARTUPS), 100);
});

test('below start everything is admitted without a draw; from start a draw under the chance drops', () => {
  const a = new Admission(LIMITS, 100, scripted([29, 30, 40, 41]));
  admitAll(a, '10.0.0.1', 4);
  assert.is(a.pending, 4);
  assert.not.ok(a.admit('10.0.0.2'), 'draw 29 < 30 %: dropped');
  assert.ok(a.admit('10.0.0.2'), 'draw 30: admitted');
  // Now 5 pending: 41 %.
  assert.not.ok(a.admit('10.0.0.3'), 'draw 40 < 41 %: dropped');
  assert.ok(a.admit('10.0.0.3'), 'draw 41: admitted');
  assert.is(a.pending, 6);
});

test('at full every new connection is dropped whatever the draw; a released slot is taken again', () => {
  const a = new Admission(LIMITS, 100, lucky);
  const slots = admitAll(a, '10.0.0.1', 10);
  assert.not.ok(a.admit('10.0.0.2'));
  slots[0]!.release();
  slots[0]!.release();
  assert.is(a.pending, 9, 'a second release of one slot gives nothing back');
  assert.ok(a.admit('10.0.0.2'));
  assert.not.ok(a.admit('10.0.0.3'));
});

test('a cap per address: one address cannot fill the table, others still get in', () => {
  const a = new Admission({ start: 100, rate: 30, full: 100 }, 2, lucky);
  const first = admitAll(a, '10.0.0.1', 2);
  assert.not.ok(a.admit('10.0.0.1'), 'third from one address');
  admitAll(a, '10.0.0.2', 2);
  first[1]!.release();
  assert.ok(a.admit('10.0.0.1'));
});

test("an authenticated session's address gets room for its extra connections, outside the random drop", () => {
  const a = new Admission(LIMITS, 2, scripted([]));
  // A flood from elsewhere fills the table to full: nothing else is admitted by draw.
  const flood = new Admission(LIMITS, 100, lucky);
  admitAll(flood, '10.9.9.9', 10);
  assert.not.ok(flood.admit('10.0.0.1'));
  flood.grant('10.0.0.1', 3);
  const extra = admitAll(flood, '10.0.0.1', 3);
  assert.not.ok(flood.admit('10.0.0.1'), 'past the allowance the table is full');
  assert.is(flood.pending, 10, 'allowance connections are not counted against the table');
  for (const s of extra) s.release();
  flood.revoke('10.0.0.1', 3);
  assert.not.ok(flood.admit('10.0.0.1'), 'back to the table once the session ended');
  // With a plain table: allowance plus the per-address cap.
  a.grant('10.0.0.1', 8);
  admitAll(a, '10.0.0.1', 8);
  // Below start (nothing counted yet): the next two need no draw, then the cap of 2 holds.
  admitAll(a, '10.0.0.1', 2);
  assert.not.ok(a.admit('10.0.0.1'));
});

test('a flood is logged when dropping begins and when it is over, not once per connection', () => {
  const r = new ThrottleReport(LIMITS);
  assert.is(r.admitted(9, 0), undefined, 'nothing to say before anything was dropped');
  assert.match(
    r.dropped(10, 1000) ?? '',
    /10 connections in their handshake: dropping new ones \(MaxStartups 4:30:10\)/,
  );
  assert.is(r.dropped(10, 2000), undefined);
  assert.is(r.admitted(5, 3000), undefined, 'still above start - 1');
  assert.match(r.admitted(2, 31_000) ?? '', /stopped dropping connections after 30 s, 2 dropped/);
  assert.is(r.admitted(1, 32_000), undefined);
});

test.run();
