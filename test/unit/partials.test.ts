import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
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
  age([temp, sidecar], ageMs);
  return { temp, sidecar };
}

function age(files: string[], ageMs: number): void {
  const t = (Date.now() - ageMs) / 1000;
  for (const f of files) utimesSync(f, t, t);
}

function records(state: string): Array<Record<string, string>> {
  const text = readFileSync(path.join(state, 'partials.jsonl'), 'utf8');
  return text.split('\n').flatMap((l) => (l === '' ? [] : [JSON.parse(l)]));
}

/** A served root, its state directory and a registry sweeping it; `logs` collects the daemon's lines. */
function served(name: string, maxAgeMs = 24 * HOUR) {
  const root = path.join(work, name, 'root');
  const state = path.join(work, name, 'state');
  mkdirSync(root, { recursive: true });
  const logs: string[] = [];
  const registry = new PartialRegistry(state, maxAgeMs, (line) => logs.push(line), root);
  return { root, state, logs, registry, base: path.join(work, name) };
}

test('a sweep removes partials untouched for longer than the max age and keeps the rest', async () => {
  const { root, state, logs, registry } = served('s1');
  const old = partial(path.join(root, 'a', 'b'), 'old.bin', 0);
  const fresh = partial(root, 'fresh.bin', 1 * HOUR);
  registry.record(old.temp, old.sidecar);
  registry.record(fresh.temp, fresh.sidecar);
  // Aged after the record: the sweep goes by the files' mtimes, not by when they were recorded.
  age([old.temp, old.sidecar], 30 * HOUR);
  assert.is(await registry.sweep(), 1);
  assert.not.ok(existsSync(old.temp));
  assert.not.ok(existsSync(old.sidecar));
  assert.ok(existsSync(fresh.temp) && existsSync(fresh.sidecar));
  assert.ok(logs.some((l) => l.includes('old.bin')));
  // The record keeps only what is still pending, by the served root and the path below it.
  const left = records(state);
  assert.equal(
    left.map((r) => [r.root, r.temp, r.sidecar]),
    [[root, '.fresh.bin.fcp-part', '.fresh.bin.fcp-meta']],
  );
  assert.match(left[0]!.tempId!, /^\d+:\d+$/);
});

test('entries that are gone are forgotten, and nothing but fcp temporaries is ever removed', async () => {
  const { root, state, registry } = served('s2');
  mkdirSync(state, { recursive: true });
  const precious = path.join(root, 'precious.txt');
  writeFileSync(precious, 'keep me');
  age([precious], 100 * HOUR);
  // A hand-edited (or hostile) record naming an ordinary file, plus one whose partial was resumed already.
  writeFileSync(
    path.join(state, 'partials.jsonl'),
    `${JSON.stringify({ temp: precious, sidecar: precious })}\n` +
      `${JSON.stringify({ root, temp: 'precious.txt', sidecar: 'precious.txt' })}\n` +
      `${JSON.stringify({ temp: path.join(root, '.gone.fcp-part'), sidecar: path.join(root, '.gone.fcp-meta') })}\n` +
      `${JSON.stringify({ root, temp: '../.x.fcp-part', sidecar: '../.x.fcp-meta' })}\n` +
      'not json\n',
  );
  assert.is(await registry.sweep(), 0);
  assert.is(readFileSync(precious, 'utf8'), 'keep me');
  assert.is(readFileSync(path.join(state, 'partials.jsonl'), 'utf8'), '');
});

test('a sweep with no record yet is a no-op', async () => {
  const registry = new PartialRegistry(path.join(work, 'state3'), HOUR, () => {});
  assert.is(await registry.sweep(), 0);
});

// spec/SECURITY.md §11 "The partial sweep": review s13 F3, the sweep followed a directory swapped for a link.
test('a directory of the root swapped for a link: the sweep neither ages nor removes the files it leads to', async () => {
  const { root, state, logs, registry, base } = served('swap');
  const kept = partial(path.join(root, 'a', 'd'), 'big', 0);
  registry.record(kept.temp, kept.sidecar);
  assert.is(await registry.sweep(), 0); // the record is written (young)
  const outside = partial(path.join(base, 'outside'), 'big', 48 * HOUR);
  // A local user who may write in root/a moves d away and puts a link to the daemon's other files there.
  renameSync(path.join(root, 'a', 'd'), path.join(root, 'a', 'd.moved'));
  symlinkSync(path.dirname(outside.temp), path.join(root, 'a', 'd'));
  assert.is(await registry.sweep(), 0);
  assert.ok(existsSync(outside.temp) && existsSync(outside.sidecar), 'the files behind the link are kept');
  assert.ok(existsSync(path.join(root, 'a', 'd.moved', '.big.fcp-part')));
  assert.equal(records(state), [], 'the record is dropped');
  assert.equal(
    logs.filter((l) => l.includes('partial')),
    [`partial record dropped, not swept: ${kept.temp}: a/d is a symbolic link`],
  );
});

test('an old record (absolute paths) is swept through the same walk: a link on its path is refused', async () => {
  const { root, state, logs, registry, base } = served('old');
  mkdirSync(state, { recursive: true });
  const swapped = partial(path.join(root, 'd'), 'big', 48 * HOUR);
  const plain = partial(path.join(root, 'e'), 'big', 48 * HOUR);
  const other = partial(path.join(base, 'elsewhere'), 'big', 48 * HOUR);
  const oldLine = (p: { temp: string; sidecar: string }) => `${JSON.stringify(p)}\n`;
  writeFileSync(path.join(state, 'partials.jsonl'), oldLine(swapped) + oldLine(plain) + oldLine(other));
  const outside = partial(path.join(base, 'outside'), 'big', 48 * HOUR);
  renameSync(path.join(root, 'd'), path.join(root, 'd.moved'));
  symlinkSync(path.dirname(outside.temp), path.join(root, 'd'));
  assert.is(await registry.sweep(), 1);
  assert.ok(existsSync(outside.temp) && existsSync(outside.sidecar), 'the files behind the link are kept');
  assert.not.ok(existsSync(plain.temp) || existsSync(plain.sidecar), 'the plain old record is swept');
  // Not under this daemon's root: neither swept nor forgotten (a daemon serving that root will).
  assert.ok(existsSync(other.temp));
  assert.equal(records(state), [other]);
  assert.ok(logs.some((l) => l.includes('d is a symbolic link')));
});

test('a recorded file replaced by another of the same name is not removed (device and inode differ)', async () => {
  const { root, state, registry } = served('replaced');
  const kept = partial(path.join(root, 'd'), 'big', 0);
  registry.record(kept.temp, kept.sidecar);
  assert.is(await registry.sweep(), 0); // the record is written (young)
  // Set aside, not deleted: a freed inode number may be given to the next new file at once.
  renameSync(path.join(root, 'd'), path.join(root, 'd.old'));
  const other = partial(path.join(root, 'd'), 'big', 48 * HOUR);
  assert.is(await registry.sweep(), 0);
  assert.ok(existsSync(other.temp) && existsSync(other.sidecar));
  assert.equal(records(state), []);
});

test('a partial outside the served root is not recorded, and the daemon says so', async () => {
  const { state, logs, registry, base } = served('outside-record');
  const stray = partial(path.join(base, 'elsewhere'), 'big', 0);
  registry.record(stray.temp, stray.sidecar);
  assert.is(await registry.sweep(), 0);
  assert.not.ok(existsSync(path.join(state, 'partials.jsonl')));
  assert.ok(logs.some((l) => l.startsWith(`cannot record partial ${stray.temp}: not under the served root`)));
});

test.run();
