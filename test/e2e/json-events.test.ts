// Issue 18, fcp --json (spec/EVENTS.md): real push and pull runs against a real fcpd, every stdout line
// parsed and checked against the schema the document's tables define, including a file that fails, a run
// that fails, and a resumed transfer whose first progress event already counts the bytes it found in place.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { describeRun } from '../helpers/cli.js';
import { freePort } from '../helpers/daemon.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import {
  eventsNamed,
  type EventSchema,
  fileEvents,
  type JsonEvent,
  parseEvents,
  readEventSchema,
  runFcpJson,
} from '../helpers/json-events.js';
import {
  type Fcpd,
  HOST,
  MiB,
  partialOf,
  piecesBytes,
  type RunningChild,
  sessionEnds,
  settledRecordedPieces,
  startFcp,
  startFcpd,
  waitUntil,
  writeRandomFile,
} from '../helpers/reliability.js';
import { test } from '../helpers/test.js';
import { removeTree } from '../helpers/tree.js';

const RUN_TIMEOUT_MS = 60_000;
const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-json-'));
chmodSync(tmp, 0o755);
const state = join(tmp, 'state');
const src = join(tmp, 'src');
const root = join(tmp, 'root');
let schema: EventSchema;
let d: Fcpd;
const children: RunningChild[] = [];

const runJson = runFcpJson;

test.before(async () => {
  schema = readEventSchema();
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'a.txt'), 'alpha\n');
  writeFileSync(join(src, 'sub', 'c.txt'), 'gamma\n');
  writeFileSync(join(src, 'conflict.txt'), 'cannot land: a directory has its name\n');
  await writeRandomFile(join(src, 'b.bin'), 3 * MiB + 7);
  mkdirSync(join(root, 'dst', 'conflict.txt', 'inside'), { recursive: true });
  d = await startFcpd({ root, stateDir: state });
});

test.after.each(async () => {
  for (const c of children.splice(0)) await c.kill().catch(() => {});
});

test.after(async () => {
  await d.stop();
  await removeTree(tmp);
});

test('the schema document defines every event the writer knows', () => {
  for (const name of ['start', 'progress', 'file', 'warning', 'connection_lost', 'error', 'summary']) {
    assert.ok(schema.has(name), `spec/EVENTS.md has no table for ${name}`);
  }
});

test('push: start, one file line per entry (a failing one with its code), then the summary', async () => {
  const { events, code } = await runJson(['push', `${src}/`, d.remote('dst')]);
  assert.is(code, 3, 'one file failed: exit 3');
  const [start] = eventsNamed(events, 'start');
  assert.ok(start, 'a start event');
  assert.is(events[0], start, 'start comes first');
  assert.is(start['direction'], 'push');
  assert.match(String(start['session']), /^[0-9a-f]{32}$/);
  assert.equal(start['sources'], [`${src}/`]);
  assert.is(start['destination'], 'dst');
  const files = fileEvents(events);
  assert.equal(files.get('a.txt'), { ...files.get('a.txt'), status: 'sent', kind: 'file', size: 6 });
  assert.equal(files.get('b.bin')?.['size'], 3 * MiB + 7);
  assert.is(files.get('sub/c.txt')?.['status'], 'sent');
  assert.is(files.get('sub')?.['kind'], 'dir');
  assert.is(files.get('sub')?.['status'], 'ready', 'a directory is ready, on a push as on a pull');
  const failed = files.get('conflict.txt');
  assert.is(failed?.['status'], 'failed');
  assert.is(failed?.['code'], 'FCP_ERR_PATH_TYPE');
  const summary = events.at(-1)!;
  assert.is(summary['files_sent'], 3);
  assert.is(summary['files_failed'], 1);
  assert.is(summary['bytes_sent'], 3 * MiB + 7 + 12);
  assert.is(summary['dry_run'], false);

  const again = await runJson(['push', `${src}/`, d.remote('dst')]);
  const second = fileEvents(again.events);
  assert.is(second.get('a.txt')?.['status'], 'skipped');
  assert.is(second.get('b.bin')?.['size'], 3 * MiB + 7, 'a skipped file still has its size');
  assert.is(again.events.at(-1)!['files_skipped'], 3);
});

test('pull: the same events, a local conflict failing with its code', async () => {
  const local = join(tmp, 'pulled');
  mkdirSync(join(local, 'sub', 'c.txt'), { recursive: true });
  const { events, code } = await runJson(['pull', d.remote('dst/'), local]);
  assert.is(code, 3);
  assert.is(events[0]?.event, 'start');
  assert.is(events[0]?.['direction'], 'pull');
  const files = fileEvents(events);
  assert.is(files.get('a.txt')?.['status'], 'sent');
  assert.is(files.get('sub/c.txt')?.['status'], 'failed');
  assert.is(files.get('sub/c.txt')?.['code'], 'FCP_ERR_PATH_TYPE');
  assert.is(files.get('sub')?.['status'], 'ready');
});

test('a run that fails: no start, an error line, then the summary with its exit code', async () => {
  const port = await freePort();
  const { events, code } = await runJson(['push', `${src}/`, `${HOST}:${port}:dst`]);
  assert.is(code, 4, 'cannot connect: exit 4');
  assert.equal(
    events.map((e) => e.event),
    ['error', 'summary'],
  );
  assert.ok(String(events[0]!['code']).length > 0);
});

/** Where Python's str.splitlines() cuts a line: what a reader of "one object per line" may split on. */
const SPLITLINES = /\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/;

test('names with DEL, C1 controls and U+2028/2029: every line is one object, whatever splits lines', async () => {
  const odd = join(tmp, 'odd');
  const names = ['csi-\u009b31m', 'nel-\u0085x', 'del-\u007fx', 'ls-\u2028x', 'ps-\u2029x'];
  mkdirSync(odd);
  for (const name of names) writeFileSync(join(odd, name), name);
  const r = await startFcp(['--json', 'push', `${odd}/`, d.remote('odd')], RUN_TIMEOUT_MS).done;
  assert.is(r.code, 0, describeRun(r));
  assert.not.match(r.stdout, /[\u007f-\u009f\u2028\u2029]/, 'no such code point raw in the output');
  const events = parseEvents(schema, r.stdout);
  assert.is(r.stdout.split(SPLITLINES).length, events.length + 1, 'splitlines() sees as many lines');
  const sent = fileEvents(events);
  for (const name of names) assert.is(sent.get(name)?.['status'], 'sent', JSON.stringify(name));
});

test('a reader slower than fcp gets every line, the summary last: stdout waits for the pipe before the exit', async () => {
  const many = join(tmp, 'many');
  mkdirSync(many);
  const FILES = 2500;
  for (let i = 0; i < FILES; i++) writeFileSync(join(many, `file-${String(i).padStart(5, '0')}`), '');
  assert.is((await runJson(['push', `${many}/`, d.remote('many')])).code, 0);
  // A re-run: ~250 KB of lines, several pipes full, none read until fcp has ended or waited on the pipe.
  const run = startFcp(['--json', 'push', `${many}/`, d.remote('many')], RUN_TIMEOUT_MS);
  children.push(run);
  run.child.stdout!.pause();
  await Promise.race([once(run.child, 'exit'), sleep(3000)]);
  run.child.stdout!.resume();
  const r = await run.done;
  const events = parseEvents(schema, r.stdout);
  const last = events.at(-1);
  assert.is(last?.event, 'summary', describeRun(r));
  assert.is(last?.['files_skipped'], FILES);
  assert.is(events.filter((e) => e['status'] === 'skipped').length, FILES);
});

test('the reader of stdout goes away: fcp stops as on Ctrl-C, says so in one line, no stack trace', async () => {
  // The slow-reader test's tree (2,500 files) is already there: a re-run writes ~250 KB of lines, more
  // than a pipe holds, so fcp is still writing when the read end closes (`fcp --json ... | head -1`).
  const run = startFcp(['--json', 'push', `${join(tmp, 'many')}/`, d.remote('many')], RUN_TIMEOUT_MS);
  children.push(run);
  const out = run.child.stdout!;
  out.pause();
  await once(out, 'readable');
  out.destroy();
  const r = await run.done;
  assert.is(r.code, 130, describeRun(r));
  assert.match(r.stderr, /^fcp: standard output closed \(EPIPE\); transfer stopped$/m, describeRun(r));
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
});

/**
 * A re-run of LONG_FILES entries with long names: ~1 MB of "skipped" lines, more than the pipe and fcp's
 * queue (256 KiB) hold, and the daemon's answers come in several reads, so the hold comes mid-run.
 */
const LONG_FILES = 4000;
async function longNamesTree(): Promise<string> {
  const tree = join(tmp, 'long-names');
  if (!existsSync(tree)) {
    mkdirSync(tree);
    for (let i = 0; i < LONG_FILES; i++)
      writeFileSync(join(tree, `${'n'.repeat(180)}-${String(i).padStart(5, '0')}`), '');
    assert.is((await runJson(['push', `${tree}/`, d.remote('long-names')])).code, 0);
  }
  return tree;
}

/** Starts a --json -v re-run whose stdout is not read, and waits until fcp says it holds the transfer. */
async function heldRun(): Promise<RunningChild> {
  const tree = await longNamesTree();
  const run = startFcp(['--json', '-v', 'push', `${tree}/`, d.remote('long-names')], RUN_TIMEOUT_MS);
  children.push(run);
  run.child.stdout!.pause();
  const held = /^fcp: standard output is not being read: the transfer waits for its reader$/m;
  await waitUntil(() => held.test(run.stderr()), 'fcp to hold the transfer for its reader', RUN_TIMEOUT_MS);
  return run;
}

test('a reader that stops reading holds the transfer, not fcp: SIGTERM stops it at once, the lines follow', async () => {
  const run = await heldRun();
  run.child.kill('SIGTERM');
  // Before, fcp sat in write(2) and its SIGTERM handler waited for the reader.
  await waitUntil(() => /^fcp: interrupted$/m.test(run.stderr()), 'SIGTERM to stop the transfer', 20_000);
  run.child.stdout!.resume();
  const r = await run.done;
  assert.is(r.code, 130, describeRun(r));
  const events = parseEvents(schema, r.stdout);
  const last = events.at(-1);
  assert.is(last?.event, 'summary', describeRun(r));
  assert.is(last?.['exit_code'], 130);
  assert.ok(Number(last?.['files_skipped']) < LONG_FILES, 'the transfer stopped before its end');
});

test('a second signal while fcp waits for its reader to take the last lines ends it at once', async () => {
  const run = await heldRun();
  run.child.kill('SIGTERM');
  await waitUntil(() => /^fcp: interrupted$/m.test(run.stderr()), 'SIGTERM to stop the transfer', 20_000);
  run.child.kill('SIGTERM');
  const r = await run.done;
  assert.is(r.signal, 'SIGTERM', describeRun(r));
});

test('after a resume, the first progress event counts the bytes found in place as done', async () => {
  const big = join(tmp, 'big.bin');
  await writeRandomFile(big, 24 * MiB + 5);
  mkdirSync(join(root, 'in'), { recursive: true });
  const { meta } = partialOf(join(root, 'in', 'big.bin'));
  const proxy = await startFaultProxy({ target: { host: HOST, port: d.port } });
  const remote = `${HOST}:${proxy.port}:in/big.bin`;
  try {
    // Run 1: the upload is cut after 9 MiB; the daemon keeps the pieces it verified.
    proxy.cutAfter(9 * MiB, { direction: 'up' });
    const ends = sessionEnds(d.stderr()).length;
    const first = await startFcp(['push', '-n', '1', '--retries', '0', big, remote], RUN_TIMEOUT_MS).done;
    assert.is.not(first.code, 0, describeRun(first));
    await waitUntil(() => sessionEnds(d.stderr()).length > ends, 'the daemon to end session 1', 10_000);
    const held = piecesBytes(await settledRecordedPieces(meta), 24 * MiB + 5);
    assert.ok(held > 0, 'run 1 left verified pieces');

    // Run 2 stalls after its first MiB, so the run is still going when its progress events are read.
    proxy.clearFaults();
    proxy.stall({ direction: 'up', afterBytes: MiB });
    const second = startFcp(['--json', 'push', '-n', '1', big, remote], RUN_TIMEOUT_MS);
    children.push(second);
    const firstSized = (): JsonEvent | undefined =>
      eventsNamed(parseEvents(schema, second.stdout().replace(/[^\n]*$/, '')), 'progress').find(
        (e) => (e['bytes_total'] as number) > 0,
      );
    await waitUntil(() => firstSized() !== undefined, 'a progress event with a total', 30_000);
    const p = firstSized()!;
    assert.is(p['bytes_total'], 24 * MiB + 5, 'the total is the whole file, held bytes included');
    assert.ok((p['bytes_done'] as number) >= held, `held bytes count as done from the start: ${held}`);
    assert.is((p['bytes_done'] as number) - (p['bytes_sent'] as number), held, 'done = sent + held');
    proxy.clearFaults();
    proxy.resume();
    const r = await second.done;
    assert.is(r.code, 0, describeRun(r));
    const summary = parseEvents(schema, r.stdout).at(-1)!;
    assert.is(summary['bytes_resumed'], held);
    assert.is(summary['bytes_sent'], 24 * MiB + 5 - held);
  } finally {
    await proxy.close();
  }
});

test.run();
