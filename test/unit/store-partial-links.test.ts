// The store's work files and links (src/transfer/store/piece-index.ts, posix-file.ts), at the seam:
// a ConfinedRoot and a PosixSink on real files. What is planted at a work name, or above it, is never
// followed or emptied, nothing outside the root is removed, and a resumed partial whose temporary was
// swapped since its pieces were verified fails rather than being committed with those pieces as zeros.
import { linkSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { PIECE_SIZE } from '../../src/protocol/index.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import { ConfinedRoot } from '../../src/transfer/store/confined-root.js';
import { PieceIndex } from '../../src/transfer/store/piece-index.js';
import { PosixSink } from '../../src/transfer/store/posix-sink.js';
import { sidecarNameFor, tempNameFor } from '../../src/transfer/store/temp-names.js';
import { checkWirePath } from '../../src/transfer/wire-path.js';
import { rejection, tempDirs } from '../helpers/expect.js';
import { test } from '../helpers/test.js';

const { make: tempDir, removeAll } = tempDirs();
test.after(removeAll);

const VICTIM = 'outside victim: must stay as it is\n';
const IDENTITY = { size: 3n * BigInt(PIECE_SIZE), mtimeNs: 1n, pieces: 3 };

/** A root with directory d/ in it, and beside the root a directory holding a victim file. */
function layout(): { base: string; root: string; outside: string } {
  const base = tempDir();
  const root = path.join(base, 'root');
  const outside = path.join(base, 'outside');
  mkdirSync(path.join(root, 'd'), { recursive: true });
  mkdirSync(outside);
  return { base, root, outside };
}

test('a piece index under a parent that is a link is refused, and nothing through the link is removed', async () => {
  const { root, outside } = layout();
  symlinkSync(outside, path.join(root, 'l'));
  const victim = path.join(outside, '.f.fcp-meta');
  writeFileSync(victim, VICTIM);
  await rejection(
    PieceIndex.create(await ConfinedRoot.open(root), 'l/.f.fcp-meta', IDENTITY),
    'FCP_ERR_PATH_SYMLINK',
  );
  assert.is(readFileSync(victim, 'utf8'), VICTIM);
});

test('a piece index over a hard link to another file is made afresh: that file is not emptied', async () => {
  const { root } = layout();
  const victim = path.join(root, 'victim.txt');
  writeFileSync(victim, VICTIM);
  linkSync(victim, path.join(root, 'd', '.f.fcp-meta'));
  const index = await PieceIndex.create(await ConfinedRoot.open(root), 'd/.f.fcp-meta', IDENTITY);
  await index.close();
  assert.is(readFileSync(victim, 'utf8'), VICTIM);
  assert.ok(
    readFileSync(path.join(root, 'd', '.f.fcp-meta'))
      .subarray(0, 8)
      .equals(Buffer.from('FCPMETA1')),
  );
});

/** Three pieces of distinct bytes, and the spec a receiver would open them with. */
const PIECES = [1, 2, 3].map((b) => Buffer.alloc(PIECE_SIZE, b));
const SPEC = {
  wirePath: 'd/f.bin',
  wireSize: IDENTITY.size,
  size: Number(IDENTITY.size),
  pieces: 3,
  mode: 0o644,
  mtimeNs: 1_000_000_000n,
};

/** A first attempt that wrote piece 0 and was cut off: its temporary and index are kept for a resume. */
async function keptPartial(root: string): Promise<{ sink: PosixSink; hash: (b: Uint8Array) => bigint }> {
  const hasher = await loadHasher();
  const hash = (b: Uint8Array): bigint => hasher.pieceHash(b);
  const sink = new PosixSink(await ConfinedRoot.open(root), { sessionOver: () => false });
  const rel = checkWirePath(SPEC.wirePath);
  const first = sink.openFile(rel, SPEC, sink.workNames(rel, 3));
  await first.writePiece(0, PIECES[0]!, hash(PIECES[0]!));
  assert.ok(first.keepPartial());
  return { sink, hash };
}

for (const swap of ['replaced by a link', 'removed'] as const) {
  test(`a resumed temporary ${swap} after its pieces were verified fails the file; none is committed`, async () => {
    const { root, outside } = layout();
    const { sink, hash } = await keptPartial(root);
    const rel = checkWirePath(SPEC.wirePath);
    const again = sink.openFile(rel, SPEC, sink.workNames(rel, 3));
    const kept = await again.loadPartial(hash);
    assert.equal([...kept.keys()], [0]);
    const temp = path.join(root, tempNameFor(rel));
    rmSync(temp);
    const victim = path.join(outside, 'victim.bin');
    if (swap === 'replaced by a link') {
      writeFileSync(victim, VICTIM);
      symlinkSync(victim, temp);
    }
    const code = swap === 'removed' ? 'ENOENT' : 'FCP_ERR_PATH_SYMLINK';
    await rejection(again.writePiece(1, PIECES[1]!, hash(PIECES[1]!)), code);
    await again.discard();
    assert.not.ok(existsSync(path.join(root, 'd', 'f.bin')));
    assert.not.ok(existsSync(path.join(root, sidecarNameFor(rel))));
    if (swap === 'replaced by a link') assert.is(readFileSync(victim, 'utf8'), VICTIM);
  });
}

test.run();
