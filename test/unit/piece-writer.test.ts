import { constants as fsConstants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { PIECE_SIZE } from '../../src/protocol/constants.js';
import { ConfinedRoot } from '../../src/transfer/store/confined-root.js';
import { PieceIndex } from '../../src/transfer/store/piece-index.js';
import { PieceWriter } from '../../src/transfer/store/piece-writer.js';

// PieceWriter (src/transfer/store/piece-writer.ts): one write in flight per file, queued pieces coalesced into
// runs; every piece must land at its own offset and be recorded in the piece index, whatever the order.

function pieceBytes(seq: number, len = PIECE_SIZE): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i += 4096) b.fill((seq * 7 + i / 4096) & 0xff, i, Math.min(len, i + 4096));
  return b;
}

async function setup(pieces: number) {
  const dir = mkdtempSync(path.join(tmpdir(), 'fcp-pw-'));
  const root = await ConfinedRoot.open(dir);
  const size = (pieces - 1) * PIECE_SIZE + 1234;
  const id = { size: BigInt(size), mtimeNs: 42n, pieces };
  let handle: Promise<FileHandle> | undefined;
  const index = PieceIndex.create(root, '.f.fcp-meta', id);
  const writer = new PieceWriter({
    open: () => {
      handle ??= root.openFile('f', fsConstants.O_WRONLY | fsConstants.O_CREAT, 0o600);
      return handle;
    },
    index: () => index,
  });
  const done = async () => {
    await (await handle!).close();
    await (await index).close();
  };
  return { dir, root, size, id, writer, done };
}

test('pieces queued out of order, all at once, land at their offsets and are all recorded', async () => {
  const pieces = 40;
  const t = await setup(pieces);
  try {
    const order = Array.from({ length: pieces }, (_, i) => i);
    // A fixed shuffle: some consecutive runs, some gaps, the short last piece in the middle of the queue.
    order.sort((a, b) => ((a * 17) % 11) - ((b * 17) % 11) || a - b);
    const hashes = new Map<number, bigint>();
    await Promise.all(
      order.map((seq) => {
        const len = seq === pieces - 1 ? 1234 : PIECE_SIZE;
        hashes.set(seq, BigInt(seq) * 1000n + 7n);
        return t.writer.write(seq, pieceBytes(seq, len), hashes.get(seq)!);
      }),
    );
    await t.done();
    const file = readFileSync(path.join(t.dir, 'f'));
    assert.is(file.length, t.size);
    for (let seq = 0; seq < pieces; seq++) {
      const len = seq === pieces - 1 ? 1234 : PIECE_SIZE;
      assert.ok(
        file.subarray(seq * PIECE_SIZE, seq * PIECE_SIZE + len).equals(pieceBytes(seq, len)),
        `${seq}`,
      );
    }
    const recorded = await PieceIndex.load(t.root, '.f.fcp-meta', t.id);
    assert.equal(recorded, hashes);
  } finally {
    rmSync(t.dir, { recursive: true, force: true });
  }
});

test('pieces queued while a write is in flight go out after it, in later batches', async () => {
  const t = await setup(8);
  try {
    const first = t.writer.write(0, pieceBytes(0), 1n);
    const later = [1, 2, 3, 5, 6].map((seq) => t.writer.write(seq, pieceBytes(seq), BigInt(seq + 1)));
    await first;
    await Promise.all(later);
    await t.writer.write(4, pieceBytes(4), 5n);
    await t.done();
    const recorded = await PieceIndex.load(t.root, '.f.fcp-meta', t.id);
    assert.equal(
      [...recorded!.keys()].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6],
    );
    const file = readFileSync(path.join(t.dir, 'f'));
    assert.ok(file.subarray(4 * PIECE_SIZE, 5 * PIECE_SIZE).equals(pieceBytes(4)));
  } finally {
    rmSync(t.dir, { recursive: true, force: true });
  }
});

test('a failing write rejects the pieces of its run, and the writer goes on with later ones', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fcp-pw-'));
  try {
    const root = await ConfinedRoot.open(dir);
    let fail = true;
    let handle: Promise<FileHandle> | undefined;
    const writer = new PieceWriter({
      open: () => {
        if (fail) return Promise.reject(Object.assign(new Error('no space'), { code: 'ENOSPC' }));
        handle ??= root.openFile('g', fsConstants.O_WRONLY | fsConstants.O_CREAT, 0o600);
        return handle;
      },
      index: () => undefined,
    });
    const failed = await writer.write(0, pieceBytes(0), 1n).then(
      () => undefined,
      (err: NodeJS.ErrnoException) => err.code,
    );
    assert.is(failed, 'ENOSPC');
    fail = false;
    await writer.write(1, pieceBytes(1), 2n);
    await (await handle!).close();
    const file = readFileSync(path.join(dir, 'g'));
    assert.ok(file.subarray(PIECE_SIZE).equals(pieceBytes(1)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stop(): queued pieces are rejected and never reopen the file; later writes reject at once', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fcp-pw-'));
  try {
    const root = await ConfinedRoot.open(dir);
    let opens = 0;
    let handle: Promise<FileHandle> | undefined;
    const writer = new PieceWriter({
      open: () => {
        opens++;
        handle ??= root.openFile('h', fsConstants.O_WRONLY | fsConstants.O_CREAT, 0o600);
        return handle;
      },
      index: () => undefined,
    });
    const inFlight = writer.write(0, pieceBytes(0), 1n);
    const queued = writer.write(2, pieceBytes(2), 3n).then(
      () => 'written',
      (err: Error) => err.message,
    );
    writer.stop(new Error('session ended'));
    await inFlight;
    assert.is(await queued, 'session ended');
    const late = await writer.write(1, pieceBytes(1), 2n).then(
      () => 'written',
      (err: Error) => err.message,
    );
    assert.is(late, 'session ended');
    assert.is(opens, 1, 'only the run in flight opened the file');
    await (await handle!).close();
    assert.is(readFileSync(path.join(dir, 'h')).length, PIECE_SIZE);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stop() during a batch: the later runs of the batch are rejected without opening the file', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fcp-pw-'));
  try {
    const root = await ConfinedRoot.open(dir);
    let opens = 0;
    let handle: Promise<FileHandle> | undefined;
    const writer: PieceWriter = new PieceWriter({
      open: () => {
        opens++;
        // The second run (piece 2) stops the writer while it is being written.
        if (opens === 2) writer.stop(new Error('session ended'));
        handle ??= root.openFile('k', fsConstants.O_WRONLY | fsConstants.O_CREAT, 0o600);
        return handle;
      },
      index: () => undefined,
    });
    const settle = (p: Promise<void>) =>
      p.then(
        () => 'written',
        (err: Error) => err.message,
      );
    const first = settle(writer.write(0, pieceBytes(0), 1n));
    // Queued while piece 0 is in flight: one batch of three separate runs.
    const rest = [2, 5, 7].map((seq) => settle(writer.write(seq, pieceBytes(seq), 1n)));
    assert.is(await first, 'written');
    assert.equal(await Promise.all(rest), ['written', 'session ended', 'session ended']);
    assert.is(opens, 2, 'runs after the stop never opened the file');
    await (await handle!).close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
