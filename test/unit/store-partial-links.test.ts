// The store's work files and links (src/transfer/store/piece-index.ts, posix-file.ts), at the seam:
// a ConfinedRoot and a PosixSink on real files. What is planted at a work name, or above it, is never
// followed or emptied, nothing outside the root is removed, and a resumed partial whose temporary was
// swapped since its pieces were verified fails rather than being committed with those pieces as zeros.
// A work file another local user planted at the predictable name (in a shared directory such as /tmp) is
// replaced, never written into nor resumed from: that user could read the data, and own the final file.
import {
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
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
import { claimFreed } from '../helpers/partial-claim.js';
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
  // As the receiver does: asked for a partial first, the file claims its shared names (partial-claims.ts).
  assert.equal((await first.loadPartial(hash)).size, 0);
  await first.writePiece(0, PIECES[0]!, hash(PIECES[0]!));
  assert.ok(first.keepPartial());
  // Its claim goes once its descriptors are closed: until then a new file would leave the partial alone.
  await claimFreed(path.join(root, tempNameFor(rel)));
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

/** A uid that is not ours: the plant of another local user (root may chown to any uid). */
const STRANGER = 65534;
const PLANT = 'planted by another user\n';

/** Plants `rel` in `root` as the stranger's, mode 0666; returns a second name of its inode, to read later. */
function plant(root: string, base: string, rel: string): string {
  const at = path.join(root, rel);
  writeFileSync(at, PLANT, { mode: 0o666 });
  chownSync(at, STRANGER, STRANGER);
  const keep = path.join(base, `kept-${path.basename(rel)}`);
  linkSync(at, keep);
  return keep;
}

for (const size of [5, 3 * PIECE_SIZE]) {
  const how = size === 5 ? 'a one-piece file (the synchronous path)' : 'a file of pieces';
  test(`${how}: a temporary another user planted is replaced, not written into`, async () => {
    const { base, root } = layout();
    const rel = checkWirePath('d/f.bin');
    const keep = plant(root, base, tempNameFor(rel));
    const plantIno = lstatSync(keep).ino;
    const hasher = await loadHasher();
    const sink = new PosixSink(await ConfinedRoot.open(root), { sessionOver: () => false });
    await sink.prepareDir(checkWirePath('d')); // as the receiver does first: the synchronous path needs it
    const spec = { ...SPEC, wireSize: BigInt(size), size, pieces: Math.ceil(size / PIECE_SIZE) };
    const file = sink.openFile(rel, spec, sink.workNames(rel, spec.pieces));
    const data = size === 5 ? [Buffer.from('hello')] : PIECES;
    if (size === 5) {
      file.writeNow!(data[0]!);
      file.commitNow!();
    } else {
      for (const [seq, piece] of data.entries()) await file.writePiece(seq, piece, hasher.pieceHash(piece));
      await file.commit();
    }
    const final = path.join(root, 'd', 'f.bin');
    assert.ok(readFileSync(final).equals(Buffer.concat(data)));
    assert.is.not(lstatSync(final).ino, plantIno, 'the planted inode became the file');
    assert.is(lstatSync(final).uid, process.geteuid!());
    assert.is(readFileSync(keep, 'utf8'), PLANT, "the data went into the other user's inode");
  });
}

test('a kept temporary and index that another user owns are not resumed from: the file starts over', async () => {
  const { base, root } = layout();
  const { sink, hash } = await keptPartial(root);
  const rel = checkWirePath(SPEC.wirePath);
  for (const name of [tempNameFor(rel), sidecarNameFor(rel)])
    chownSync(path.join(root, name), STRANGER, STRANGER);
  const keep = path.join(base, 'kept-temp');
  linkSync(path.join(root, tempNameFor(rel)), keep);
  rmSync(keep); // one link again: the owner alone must make it untrusted
  const again = sink.openFile(rel, SPEC, sink.workNames(rel, 3));
  assert.equal([...(await again.loadPartial(hash)).keys()], [], 'resumed from a file that is not ours');
  for (const [seq, piece] of PIECES.entries()) await again.writePiece(seq, piece, hash(piece));
  await again.commit();
  const final = path.join(root, 'd', 'f.bin');
  assert.ok(readFileSync(final).equals(Buffer.concat(PIECES)));
  assert.is(lstatSync(final).uid, process.geteuid!());
});

for (const size of [5, 3 * PIECE_SIZE]) {
  const how = size === 5 ? 'a one-piece file (the synchronous path)' : 'a file of pieces';
  test(`${how} whose final name became a directory fails and leaves no temporary behind`, async () => {
    const { root } = layout();
    const rel = checkWirePath('d/f.bin');
    const hasher = await loadHasher();
    const sink = new PosixSink(await ConfinedRoot.open(root), { sessionOver: () => false });
    await sink.prepareDir(checkWirePath('d'));
    const spec = { ...SPEC, wireSize: BigInt(size), size, pieces: Math.ceil(size / PIECE_SIZE) };
    const file = sink.openFile(rel, spec, sink.workNames(rel, spec.pieces));
    // Someone makes a directory, not empty, at the final name while the data is on its way.
    mkdirSync(path.join(root, 'd', 'f.bin'));
    writeFileSync(path.join(root, 'd', 'f.bin', 'keep'), 'theirs\n');
    if (size === 5) {
      file.writeNow!(Buffer.from('hello'));
      assert.throws(() => file.commitNow!());
    } else {
      for (const [seq, piece] of PIECES.entries()) await file.writePiece(seq, piece, hasher.pieceHash(piece));
      const error = await file.commit().then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(error !== undefined, 'committed over a directory');
    }
    await file.discard();
    assert.equal(readdirSync(path.join(root, 'd')).sort(), ['f.bin'], 'a work file was left behind');
    assert.is(readFileSync(path.join(root, 'd', 'f.bin', 'keep'), 'utf8'), 'theirs\n');
  });
}

test.run();
