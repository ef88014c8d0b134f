// The small-file paths of both engines (one-piece files read, written and committed with synchronous calls,
// links placed at once) when the disk changes under them: a source file changed after it was listed, a
// destination directory removed while files are still arriving in it, and links left where the receiver's
// temporaries go. Each case is set off by an engine event, so the moment is the same on every run.
import { mkdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { appendFileSync, existsSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import type { TransferEvent } from '../../src/transfer/events.js';
import { leftovers, pathsOf, scratchDirs, startRun } from '../helpers/engine-run.js';
import { bounded, MiB, sha256File, writeRandomFile } from '../helpers/reliability.js';

const RUN_MS = 30_000;
const { tmp, freshDir } = await scratchDirs('fcp-engine-small-');

/** Writes `count` one-piece files `dir/f<i>.bin` of a few KiB under `src`; returns their wire paths. */
async function smallFiles(src: string, dir: string, count: number): Promise<string[]> {
  await mkdir(path.join(src, dir), { recursive: true });
  const rels: string[] = [];
  for (let i = 0; i < count; i++) {
    const rel = `${dir}/f${i}.bin`;
    await writeRandomFile(path.join(src, rel), 1000 + 997 * i);
    rels.push(rel);
  }
  return rels;
}

/** The failure codes an engine reported, by path. */
function failures(events: readonly TransferEvent[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of events) if (e.type === 'failed') out.set(e.path, e.error.code);
  return out;
}

test.after(() => rm(tmp, { recursive: true, force: true }));

test('a one-piece file changed after it was listed fails alone; nothing lands under its name', async () => {
  const src = await freshDir('src');
  const dest = await freshDir('dest');
  const rels = await smallFiles(src, 'd', 6);
  const changed = rels[2]!;
  const run = await startRun({
    src,
    dest,
    // The receiver asked for it: the sender is about to read it (synchronously, on the small-file path).
    onSenderEvent: (e) => {
      if (e.type === 'needed' && e.path === changed) appendFileSync(path.join(src, changed), 'grown');
    },
  });
  await bounded(run.done, RUN_MS, 'the transfer');
  assert.equal(failures(run.senderEvents).get(changed), 'FCP_ERR_FILE_CHANGED');
  assert.equal(failures(run.receiverEvents).get(changed), 'FCP_ERR_FILE_CHANGED');
  assert.not.ok(existsSync(path.join(dest, changed)), 'no file under the changed one’s name');
  const others = rels.filter((r) => r !== changed);
  assert.equal(pathsOf(run.receiverEvents, 'finished'), others.sort());
  for (const rel of others) {
    assert.is(await sha256File(path.join(dest, rel)), await sha256File(path.join(src, rel)), rel);
  }
  assert.equal(await leftovers(dest), []);
});

test('a one-piece file rewritten at the same size with an mtime a few microseconds on fails: the check is not seconds', async () => {
  const src = await freshDir('src');
  const dest = await freshDir('dest');
  const rels = await smallFiles(src, 'd', 4);
  const changed = rels[1]!;
  const abs = path.join(src, changed);
  const run = await startRun({
    src,
    dest,
    onSenderEvent: (e) => {
      if (e.type !== 'needed' || e.path !== changed) return;
      // Same size, other bytes, and an mtime 5 us after the listed one (utimes takes float seconds).
      const st = statSync(abs, { bigint: true });
      writeFileSync(abs, Buffer.alloc(Number(st.size), 0x5a));
      const sec = Number(st.mtimeNs / 1_000_000_000n);
      const micros = Number((st.mtimeNs % 1_000_000_000n) / 1000n) + 5;
      utimesSync(abs, sec, sec + (micros + 0.5) / 1e6);
    },
  });
  await bounded(run.done, RUN_MS, 'the transfer');
  assert.equal(failures(run.senderEvents).get(changed), 'FCP_ERR_FILE_CHANGED');
  assert.not.ok(existsSync(path.join(dest, changed)), 'no file under the changed one’s name');
  assert.equal(await leftovers(dest), []);
});

test('a destination directory removed mid-transfer: its remaining files fail one by one, the rest arrive', async () => {
  const src = await freshDir('src');
  const dest = await freshDir('dest');
  const gone = await smallFiles(src, 'gone', 8);
  const kept = await smallFiles(src, 'kept', 4);
  let removed = false;
  const run = await startRun({
    src,
    dest,
    // The first file committed in gone/: the directory goes, while its other files are on their way.
    onReceiverEvent: (e) => {
      if (e.type === 'finished' && e.path.startsWith('gone/') && !removed) {
        removed = true;
        rmSync(path.join(dest, 'gone'), { recursive: true });
      }
    },
  });
  await bounded(
    run.done.catch(() => {}),
    RUN_MS,
    'the transfer',
  );
  assert.ok(removed, 'a file of gone/ arrived first');
  const failed = failures(run.receiverEvents);
  const finishedGone = pathsOf(run.receiverEvents, 'finished').filter((p) => p.startsWith('gone/'));
  // Every file of gone/ either arrived before the removal or failed with the directory gone; none hung.
  for (const rel of gone) {
    if (finishedGone.includes(rel)) continue;
    assert.is(failed.get(rel), 'ENOENT', `${rel}: ${failed.get(rel)}`);
  }
  assert.ok(finishedGone.length < gone.length, 'at least one file of gone/ was still to come');
  for (const rel of kept) {
    assert.is(await sha256File(path.join(dest, rel)), await sha256File(path.join(src, rel)), rel);
  }
  assert.equal(await leftovers(dest), []);
});

test('links where the temporaries go are removed, never followed: the files and the link arrive', async () => {
  const src = await freshDir('src');
  const dest = await freshDir('dest');
  const outside = path.join(await freshDir('outside'), 'victim.txt');
  await writeFile(outside, 'untouched');
  await writeRandomFile(path.join(src, 'small.bin'), 5000);
  await writeRandomFile(path.join(src, 'big.bin'), 2 * MiB + 17);
  await symlink('small.bin', path.join(src, 'link'));
  // What a run killed while placing a link leaves (or a local user plants): a link at each temporary name.
  for (const name of ['small.bin', 'big.bin', 'link']) {
    await symlink(outside, path.join(dest, `.${name}.fcp-part`));
  }
  const run = await startRun({ src, dest });
  await bounded(run.done, RUN_MS, 'the transfer');
  assert.equal([...failures(run.receiverEvents)], []);
  for (const name of ['small.bin', 'big.bin']) {
    assert.is(await sha256File(path.join(dest, name)), await sha256File(path.join(src, name)), name);
  }
  assert.is(await readlink(path.join(dest, 'link')), 'small.bin');
  assert.is(await readFile(outside, 'utf8'), 'untouched');
  assert.equal(await leftovers(dest), []);
});

test.run();
