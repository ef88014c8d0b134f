// Issue 18, fcp --limit N: the first N files that need sending, in walk order, are sent; the rest are
// reported as not sent (summary line, --json file events) and the run exits 0. Real fcpd and fcp on
// loopback; an identical file early in the walk must not use up the limit.
import {
  copyFileSync,
  chmodSync,
  mkdirSync,
  mkdtempSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { describeRun } from '../helpers/cli.js';
import { eventsNamed, type JsonEvent, runFcpJson } from '../helpers/json-events.js';
import { type Fcpd, startFcp, startFcpd } from '../helpers/reliability.js';
import { test } from '../helpers/test.js';
import { listFiles, removeTree, snapshotTree } from '../helpers/tree.js';

const RUN_TIMEOUT_MS = 60_000;
const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-limit-'));
chmodSync(tmp, 0o755);
const src = join(tmp, 'src');
const root = join(tmp, 'root');
const NAMES = ['f1', 'f2', 'f3', 'f4', 'f5', 'f6'];
let d: Fcpd;

/** `name` copied into `dir` with its mtime: the receiver's quick check finds it identical. */
function placeIdentical(dir: string, name: string): void {
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(src, name), join(dir, name));
  const st = statSync(join(src, name));
  utimesSync(join(dir, name), st.atime, st.mtime);
}

const runJson = runFcpJson;

function byStatus(events: readonly JsonEvent[], status: string): string[] {
  return eventsNamed(events, 'file')
    .filter((e) => e['status'] === status && e['kind'] !== 'dir')
    .map((e) => String(e['path']))
    .sort();
}

test.before(async () => {
  mkdirSync(src);
  mkdirSync(root);
  for (const [i, name] of NAMES.entries()) {
    writeFileSync(join(src, name), `${name}\n`.repeat(100));
    // Whole seconds: a copy given the same mtime is identical to the microsecond the quick check wants.
    utimesSync(join(src, name), 1_700_000_000 + i, 1_700_000_000 + i);
  }
  d = await startFcpd({ root, stateDir: join(tmp, 'state') });
});

test.after(async () => {
  await d.stop();
  await removeTree(tmp);
});

test('push --limit 3: f2 is identical, so f1, f3, f4 are sent and f5, f6 are not; exit 0', async () => {
  placeIdentical(join(root, 'push'), 'f2');
  const { events, code } = await runJson(['push', '--limit', '3', `${src}/`, d.remote('push')]);
  assert.is(code, 0, 'files left out by --limit are not a failure');
  assert.equal(byStatus(events, 'sent'), ['f1', 'f3', 'f4']);
  assert.equal(byStatus(events, 'skipped'), ['f2']);
  assert.equal(byStatus(events, 'not_sent'), ['f5', 'f6']);
  const summary = events.at(-1)!;
  assert.is(summary['files_sent'], 3);
  assert.is(summary['files_not_sent'], 2);
  assert.is(eventsNamed(events, 'start')[0]?.['limit'], 3);
  assert.equal(await listFiles(join(root, 'push')), ['f1', 'f2', 'f3', 'f4']);

  // The same command again sends the next batch: what is in place is skipped and does not count.
  const r = await startFcp(['push', '--limit', '3', `${src}/`, d.remote('push')], RUN_TIMEOUT_MS).done;
  assert.is(r.code, 0, describeRun(r));
  assert.match(r.stdout, /^fcp: 2 files sent, 4 skipped, 0 failed, /m);
  assert.not.match(r.stdout, /not sent/);
  assert.equal(await listFiles(join(root, 'push')), NAMES);
});

test('pull --limit 2: the receiver decides in walk order and leaves out what is past the limit', async () => {
  placeIdentical(join(root, 'serve'), 'f1');
  for (const name of NAMES.slice(1)) placeIdentical(join(root, 'serve'), name);
  const local = join(tmp, 'pulled');
  placeIdentical(local, 'f2');
  const r = await startFcp(['pull', '--limit', '2', d.remote('serve/'), local], RUN_TIMEOUT_MS).done;
  assert.is(r.code, 0, describeRun(r));
  assert.match(
    r.stdout,
    /^fcp: 2 files sent, 1 skipped, 0 failed, .*, 3 files not sent \(--limit\)$/m,
    describeRun(r),
  );
  assert.equal(await listFiles(local), ['f1', 'f2', 'f3']);
  // Past the limit nothing is compared: an identical file there counts as not sent too.
  placeIdentical(local, 'f6');
  const again = await startFcp(['pull', '--limit', '1', d.remote('serve/'), local], RUN_TIMEOUT_MS).done;
  assert.match(again.stdout, /^fcp: 1 file sent, 3 skipped, 0 failed, .*, 2 files not sent \(--limit\)$/m);
});

test('--dry-run --limit 2 rehearses the first batch: it names the files the real run then sends', async () => {
  const dry = await runJson(['push', '--dry-run', '--limit', '2', `${src}/`, d.remote('batch')]);
  assert.is(dry.code, 0);
  assert.not.ok((await snapshotTree(root)).has('batch'), 'the dry run made nothing');
  const real = await runJson(['push', '--limit', '2', `${src}/`, d.remote('batch')]);
  for (const status of ['sent', 'not_sent'])
    assert.equal(byStatus(dry.events, status), byStatus(real.events, status));
  assert.equal(byStatus(real.events, 'sent'), ['f1', 'f2']);
  assert.equal(await listFiles(join(root, 'batch')), ['f1', 'f2']);
});

test('--limit 0 sends nothing and reports every file that was not sent', async () => {
  const { events, code } = await runJson(['push', '--limit', '0', `${src}/`, d.remote('zero')]);
  assert.is(code, 0);
  assert.equal(byStatus(events, 'not_sent'), NAMES);
  assert.equal(await listFiles(join(root, 'zero')), []);
});

test('--limit must be a whole number', async () => {
  const r = await startFcp(['push', '--limit', '-1', src, d.remote('x')], RUN_TIMEOUT_MS).done;
  assert.is(r.code, 1, describeRun(r));
  assert.match(r.stderr, /--limit wants a whole number/);
});

test.run();
