import * as assert from 'uvu/assert';
import { JsonEvents, settledLine } from '../../src/cli/json-events.js';
import { jsonLine } from '../../src/cli/json-line.js';
import { FcpError, MsgType } from '../../src/protocol/index.js';
import { createStats } from '../../src/transfer/stats.js';
import { readEventSchema, schemaProblems } from '../helpers/json-events.js';
import { test } from '../helpers/test.js';

// The --json writer (src/cli/json-events.ts) with a fake clock: what it writes, when, and that every line
// conforms to spec/EVENTS.md (the e2e test does the same on real runs).

const RUN = {
  direction: 'push' as const,
  host: '127.0.0.1',
  port: 7523,
  sources: ['src/'],
  destination: 'dst',
  connections: 8,
  dryRun: false,
  limit: undefined,
};

function writer(clock: { now: number }) {
  const lines: Array<Record<string, unknown>> = [];
  const writes: string[] = [];
  const json = new JsonEvents(
    RUN,
    (bytes) => {
      const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
      writes.push(text);
      for (const l of text.split('\n').slice(0, -1)) lines.push(JSON.parse(l) as Record<string, unknown>);
    },
    () => clock.now,
  );
  return { json, lines, writes };
}

const session = {
  type: MsgType.Session,
  sessionId: new Uint8Array(16).fill(0xab),
  flags: 0,
  maxConnections: 4,
  pieceSize: 1 << 20,
} as const;

test('no progress before a session, then at most one a second; every line conforms to the schema', () => {
  const clock = { now: 0 };
  const { json, lines } = writer(clock);
  const stats = createStats(0);
  json.progress(stats);
  assert.is(lines.length, 0, 'nothing before start');
  json.sessionStarted(session, { transport: 'ssh-carried', port: 40001 });
  assert.is(lines[0]?.['session'], 'ab'.repeat(16));
  assert.is(lines[0]?.['transport'], 'ssh-carried', 'how the session was reached');
  assert.is(lines[0]?.['port'], 40001, "the serving fcpd's port, not the one typed");
  assert.is(lines[0]?.['connections'], 4, 'what the daemon granted');
  assert.is(lines[0]?.['attempt'], 1);
  for (clock.now = 200; clock.now <= 2000; clock.now += 200) json.progress(stats);
  assert.is(lines.filter((l) => l['event'] === 'progress').length, 2);
  json.listener({ type: 'finished', path: 'a', kind: 'file', size: 3, resumedBytes: 0 });
  json.listener({ type: 'skipped', path: 'b', kind: 'file', size: 4 });
  json.listener({ type: 'failed', path: 'c', error: new FcpError('EACCES', undefined, { path: 'c' }) });
  json.listener({ type: 'not-sent', path: 'd', size: 5 });
  json.listener({ type: 'warning', error: new FcpError('FCP_ERR_FILE_CHANGED', undefined, { path: 'e' }) });
  json.listener({ type: 'data', bytes: 10 });
  json.error(new FcpError('FCP_ERR_NET_CLOSED'));
  json.summary({ stats, elapsedSec: 2, dryRun: false, exitCode: 5, connections: 4 });
  const schema = readEventSchema();
  for (const line of lines) assert.equal(schemaProblems(schema, line), [], JSON.stringify(line));
  assert.equal(
    lines.map((l) => `${String(l['event'])}${l['status'] === undefined ? '' : ` ${String(l['status'])}`}`),
    [
      'start',
      'progress',
      'progress',
      'file sent',
      'file skipped',
      'file failed',
      'file not_sent',
      'warning',
      'error',
      'summary',
    ],
  );
});

test('a second session is attempt 2', () => {
  const { json, lines } = writer({ now: 0 });
  json.sessionStarted(session);
  json.sessionStarted(session);
  assert.equal(
    lines.map((l) => l['attempt']),
    [1, 2],
  );
});

test('file lines settled in one pass go out in one write, at the end of the pass or before the next other line', async () => {
  const { json, lines, writes } = writer({ now: 0 });
  json.sessionStarted(session);
  for (let i = 0; i < 100; i++) json.listener({ type: 'skipped', path: `f${i}`, kind: 'file', size: i });
  assert.is(writes.length, 1, 'only the start line so far');
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(writes.length, 2, 'one write for the hundred lines');
  assert.is(lines.length, 101);
  assert.is(lines[100]?.['path'], 'f99');
  json.listener({ type: 'skipped', path: 'last', kind: 'file', size: 0 });
  json.summary({ stats: createStats(0), elapsedSec: 1, dryRun: false, exitCode: 0, connections: 1 });
  assert.equal(
    lines.slice(-2).map((l) => l['event']),
    ['file', 'summary'],
    'a line held back is written before the summary, which the process exits after',
  );
  const schema = readEventSchema();
  for (const line of lines) assert.equal(schemaProblems(schema, line), [], JSON.stringify(line));
});

test('a pass of many file lines is written in pieces, not held whole', async () => {
  const { json, writes } = writer({ now: 0 });
  for (let i = 0; i < 5000; i++) json.listener({ type: 'skipped', path: `d/f${i}`, kind: 'file', size: 1 });
  assert.ok(writes.length >= 4, `${writes.length} writes`);
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(writes.join('').split('\n').length - 1, 5000);
});

test('a sent or skipped line built as text is what jsonLine writes for the object', () => {
  const time = '2026-12-07T11:00:00.123Z';
  const paths = [
    'a',
    'd/"q"\\b',
    'tab\there',
    'caf\u00e9 \u65e5\u{1F600}',
    'c1\u009b\u0085x',
    'ls\u2028ps\u2029',
    '\u007f',
  ];
  for (const path of paths) {
    for (const kind of ['file', 'symlink', 'dir'] as const) {
      const skipped = { type: 'skipped', path, kind, size: 123 } as const;
      const status = kind === 'dir' ? 'ready' : 'skipped';
      assert.is(
        settledLine(skipped, time),
        jsonLine({ v: 1, time, event: 'file', status, path, kind, size: 123 }),
      );
      const finished = { type: 'finished', path, kind, size: 2 ** 40, resumedBytes: 7 } as const;
      const sent = kind === 'dir' ? 'ready' : 'sent';
      assert.is(
        settledLine(finished, time),
        jsonLine({ v: 1, time, event: 'file', status: sent, path, kind, size: 2 ** 40, resumed_bytes: 7 }),
      );
    }
  }
});

test.run();
