import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/index.js';
import { ConfinedRoot } from '../../src/transfer/store/confined-root.js';
import { DryRunSink } from '../../src/transfer/store/dry-run-sink.js';
import { PosixSink } from '../../src/transfer/store/posix-sink.js';
import { checkWirePath } from '../../src/transfer/wire-path.js';
import { test } from '../helpers/test.js';

// The sink of a dry run (src/transfer/store/dry-run-sink.ts): it answers from what is there and writes
// nothing; a directory it would make reads as empty.

const p = checkWirePath;
const spec = { wirePath: 'x', wireSize: 3n, size: 3, pieces: 1, mode: 0o644, mtimeNs: 0n };

async function rejects(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof FcpError && err.code === code, `expected ${code}, got ${String(err)}`);
}

test('over a real tree: checks what is in the way, plans what is missing, writes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcp-dry-sink-'));
  try {
    writeFileSync(join(dir, 'file'), 'abc');
    mkdirSync(join(dir, 'sub'));
    symlinkSync('sub', join(dir, 'link'));
    const sink = new DryRunSink(new PosixSink(await ConfinedRoot.open(dir), { sessionOver: () => false }));
    await rejects(sink.prepareDir(p('file')), 'FCP_ERR_PATH_TYPE');
    await rejects(sink.prepareDir(p('link')), 'FCP_ERR_PATH_SYMLINK');
    await sink.prepareDir(p('sub'));
    await sink.prepareDir(p('new'));
    await sink.prepareDir(p('new/deeper'));
    assert.is((await sink.inspect(p('file')))?.size, 3n);
    assert.is(await sink.inspect(p('new/deeper/x')), undefined, 'inside a planned directory: missing');
    const f = sink.openFile(p('new/x'), spec, sink.workNames(p('new/x'), 1));
    assert.equal(await f.loadPartial(() => 0n), new Map());
    await rejects(f.writePiece(0, Buffer.from('abc'), 0n), 'FCP_ERR_INTERNAL');
    await f.discard();
    sink.placeSymlink();
    sink.setDirMeta();
    assert.equal(readdirSync(dir).sort(), ['file', 'link', 'sub'], 'nothing was made');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a destination that does not exist: everything in it is missing', async () => {
  const sink = new DryRunSink(undefined);
  await sink.prepareDir(p('.'));
  await sink.prepareDir(p('a'));
  assert.is(await sink.inspect(p('a/b')), undefined);
  assert.is(sink.freeBytes(p('a')), undefined);
  assert.equal(sink.workNames(p('a/b'), 2), []);
});

test.run();
