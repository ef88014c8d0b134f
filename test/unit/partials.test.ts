import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { PartialRegistry } from '../../src/daemon/partials.js';

const work = mkdtempSync(path.join(tmpdir(), 'fcp-partials-'));
const HOUR = 3600_000;

test.after(() => rmSync(work, { recursive: true, force: true }));

function partial(dir: string, name: string, ageMs: number): { temp: string; sidecar: string } {
  mkdirSync(dir, { recursive: true });
  const temp = path.join(dir, `.${name}.fcp-part`);
  const sidecar = path.join(dir, `.${name}.fcp-meta`);
  writeFileSync(temp, 'partial data');
  writeFileSync(sidecar, 'index');
  const t = (Date.now() - ageMs) / 1000;
  utimesSync(temp, t, t);
  utimesSync(sidecar, t, t);
  return { temp, sidecar };
}

test('a sweep removes partials untouched for longer than the max age and keeps the rest', async () => {
  const state = path.join(work, 'state1');
  const logs: string[] = [];
  const registry = new PartialRegistry(state, 24 * HOUR, (line) => logs.push(line));
  const old = partial(path.join(work, 'root1'), 'old.bin', 30 * HOUR);
  const fresh = partial(path.join(work, 'root1'), 'fresh.bin', 1 * HOUR);
  registry.record(old.temp, old.sidecar);
  registry.record(fresh.temp, fresh.sidecar);
  assert.is(await registry.sweep(), 1);
  assert.not.ok(existsSync(old.temp));
  assert.not.ok(existsSync(old.sidecar));
  assert.ok(existsSync(fresh.temp) && existsSync(fresh.sidecar));
  assert.ok(logs.some((l) => l.includes('old.bin')));
  // The record keeps only what is still pending.
  const left = readFileSync(path.join(state, 'partials.jsonl'), 'utf8').trim().split('\n');
  assert.equal(
    left.map((l) => JSON.parse(l).temp),
    [fresh.temp],
  );
});

test('entries that are gone are forgotten, and nothing but fcp temporaries is ever removed', async () => {
  const state = path.join(work, 'state2');
  mkdirSync(state, { recursive: true });
  const precious = path.join(work, 'precious.txt');
  writeFileSync(precious, 'keep me');
  const t = (Date.now() - 100 * HOUR) / 1000;
  utimesSync(precious, t, t);
  // A hand-edited (or hostile) record naming an ordinary file, plus one whose partial was resumed already.
  writeFileSync(
    path.join(state, 'partials.jsonl'),
    `${JSON.stringify({ temp: precious, sidecar: precious })}\n` +
      `${JSON.stringify({ temp: path.join(work, '.gone.fcp-part'), sidecar: path.join(work, '.gone.fcp-meta') })}\n` +
      'not json\n',
  );
  const registry = new PartialRegistry(state, 24 * HOUR, () => {});
  assert.is(await registry.sweep(), 0);
  assert.is(readFileSync(precious, 'utf8'), 'keep me');
  assert.is(readFileSync(path.join(state, 'partials.jsonl'), 'utf8'), '');
});

test('a sweep with no record yet is a no-op', async () => {
  const registry = new PartialRegistry(path.join(work, 'state3'), HOUR, () => {});
  assert.is(await registry.sweep(), 0);
});

test.run();
