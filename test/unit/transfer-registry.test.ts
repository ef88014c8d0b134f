// The registry of running transfers (client/transfer-registry.ts) on a real temp directory: atomic entries,
// dead ones (pid gone, or pid reused by another process) cleaned and never listed, finished ones kept for a
// while, and a 0700 directory.
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { createRegistryDir } from '../../src/client/registry-dir.js';
import {
  FINISHED_KEEP_MS,
  isLive,
  listTransfers,
  processStartTime,
  registryDir,
  takeCancelRequest,
  requestCancel,
  writeStatus,
} from '../../src/client/transfer-registry.js';
import { initialStatus } from '../../src/client/transfer-status.js';
import { test } from '../helpers/test.js';

const made: string[] = [];

test.after(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function freshDir(): string {
  const base = mkdtempSync(path.join(tmpdir(), 'fcp-registry-'));
  made.push(base);
  const dir = path.join(base, 'fcp', 'transfers');
  createRegistryDir(dir).close();
  return dir;
}

const description = {
  direction: 'push' as const,
  host: '127.0.0.1',
  port: 7523,
  sources: ['/src'],
  destination: 'dst/',
  connections: 8,
  bwlimit: null,
  log: null,
};

test('registryDir: $XDG_STATE_HOME when absolute, else ~/.local/state', () => {
  assert.is(registryDir({ XDG_STATE_HOME: '/x/state' }), '/x/state/fcp/transfers');
  assert.ok(registryDir({ XDG_STATE_HOME: 'relative' }).endsWith('/.local/state/fcp/transfers'));
  assert.ok(registryDir({}).endsWith('/.local/state/fcp/transfers'));
});

test('the directory is 0700 and entries 0600; a write leaves no temp file behind', () => {
  const dir = freshDir();
  assert.is(statSync(dir).mode & 0o777, 0o700);
  writeStatus(dir, initialStatus({ ...description, id: 'aaaaaaaaaaaa' }, process.pid));
  assert.equal(readdirSync(dir), ['aaaaaaaaaaaa.json']);
  assert.is(statSync(path.join(dir, 'aaaaaaaaaaaa.json')).mode & 0o777, 0o600);
});

test('a live transfer is listed; a reused pid (other start time) and a gone pid are cleaned', () => {
  const dir = freshDir();
  const live = initialStatus({ ...description, id: 'aaaaaaaaaaaa' }, process.pid);
  writeStatus(dir, live);
  // Our own pid, but started at another time: the process that wrote it is gone and its pid reused.
  writeStatus(dir, { ...live, id: 'bbbbbbbbbbbb', pid_start: String(Number(live.pid_start) + 1) });
  // A pid no process has (above the kernel's pid_max of 2^22).
  writeStatus(dir, { ...live, id: 'cccccccccccc', pid: 2 ** 22 + 1 });
  assert.ok(processStartTime(process.pid) !== undefined);
  assert.equal(
    listTransfers(dir).map((t) => t.id),
    ['aaaaaaaaaaaa'],
  );
  assert.equal(readdirSync(dir), ['aaaaaaaaaaaa.json']);
});

test('without a start time (no /proc), a live pid is live and a gone one is not', () => {
  assert.ok(isLive({ pid: process.pid, pid_start: '' }));
  assert.not.ok(isLive({ pid: 2 ** 22 + 1, pid_start: '' }));
});

test('a finished background transfer stays listed with its code, then expires with its log', () => {
  const dir = freshDir();
  const log = path.join(dir, 'dddddddddddd.log');
  writeFileSync(log, 'fcp: ...\n');
  const done = {
    ...initialStatus({ ...description, id: 'dddddddddddd', log }, process.pid),
    state: 'exited' as const,
  };
  writeStatus(dir, { ...done, exit_code: 0 });
  assert.equal(
    listTransfers(dir).map((t) => [t.id, t.exit_code]),
    [['dddddddddddd', 0]],
  );
  const old = (Date.now() - FINISHED_KEEP_MS - 60_000) / 1000;
  utimesSync(path.join(dir, 'dddddddddddd.json'), old, old);
  assert.equal(listTransfers(dir), []);
  assert.equal(readdirSync(dir), []);
});

test("an entry without transport (an older fcp's) or with one this fcp does not know reads as not known", () => {
  const dir = freshDir();
  const live = initialStatus({ ...description, id: 'ffffffffffff' }, process.pid);
  const { transport: _, ...older } = live;
  writeFileSync(path.join(dir, 'ffffffffffff.json'), JSON.stringify(older), { mode: 0o600 });
  writeFileSync(
    path.join(dir, 'abababababab.json'),
    JSON.stringify({ ...live, id: 'abababababab', transport: 'ssh-teleport' }),
    { mode: 0o600 },
  );
  assert.equal(
    listTransfers(dir)
      .map((t) => [t.id, t.transport])
      .sort(),
    [
      ['abababababab', null],
      ['ffffffffffff', null],
    ],
  );
});

test('files that are not entries are ignored', () => {
  const dir = freshDir();
  writeFileSync(path.join(dir, 'eeeeeeeeeeee.json'), '{ torn');
  writeFileSync(path.join(dir, 'notes.json'), '{}');
  assert.equal(listTransfers(dir), []);
});

test('a cancel request is read once; none means keep', () => {
  const dir = freshDir();
  assert.is(takeCancelRequest(dir, 'ffffffffffff'), 'keep');
  requestCancel(dir, 'ffffffffffff', 'discard');
  assert.is(takeCancelRequest(dir, 'ffffffffffff'), 'discard');
  assert.is(takeCancelRequest(dir, 'ffffffffffff'), 'keep');
});

test.run();
