// The engines alone: a Sender and a Receiver over loopback socket pairs, real temp dirs, no daemon and no
// handshake, in seconds. Covers what only the end-to-end suite covered before: a mixed tree (files, empty
// file, links, nested directories, modes and mtimes), a resume from the partial and piece index an
// interrupted run left, a data connection lost mid-file (its pieces re-sent), and a damaged piece (the
// file fails its checksum and is sent again).
import { rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { DATA_PREFIX_SIZE, FRAME_HEADER_SIZE, MAX_DATA_BYTES, MsgType } from '../../src/protocol/index.js';
import { hasher, leftovers, pathsOf, scratchDirs, type SocketPair, startRun } from '../helpers/engine-run.js';
import {
  bounded,
  MiB,
  partialOf,
  recordedPieces,
  sha256File,
  waitUntil,
  writeRandomFile,
} from '../helpers/reliability.js';
import { socketPair } from '../helpers/socket-pair.js';
import { buildTree, compareTrees, type EntrySpec } from '../helpers/tree.js';
const RUN_MS = 30_000;
const { tmp, freshDir } = await scratchDirs('fcp-engine-pair-');

/**
 * [the sender's socket, the receiver's socket] joined through a relay that hands every frame from the
 * sender to `tap`, which may change it in place, and passes it on unless `tap` returns false.
 */
async function relayedPair(tap: (frame: Buffer) => boolean): Promise<SocketPair> {
  const [senderSide, relayIn] = await socketPair();
  const [relayOut, receiverSide] = await socketPair();
  let pending = Buffer.alloc(0);
  relayIn.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= FRAME_HEADER_SIZE) {
      const end = FRAME_HEADER_SIZE + pending.readUInt16BE(5);
      if (pending.length < end) break;
      const frame = Buffer.from(pending.subarray(0, end));
      pending = pending.subarray(end);
      if (tap(frame)) relayOut.write(frame);
    }
  });
  relayOut.on('data', (chunk: Buffer) => relayIn.write(chunk));
  // A test that cuts the connection resets the relay's sockets: the engines report it on their own.
  for (const s of [relayIn, relayOut]) s.on('error', () => {});
  relayIn.on('close', () => relayOut.destroy());
  relayOut.on('close', () => relayIn.destroy());
  return [senderSide, receiverSide];
}

test('a mixed tree arrives whole: files, an empty file, links, nested directories, modes and mtimes', async () => {
  const src = await freshDir('src');
  const dest = await freshDir('dest');
  const specs: EntrySpec[] = [
    { kind: 'file', path: 'a.txt', size: 1000, mode: 0o644 },
    { kind: 'file', path: 'empty', size: 0, mode: 0o600 },
    { kind: 'file', path: 'exec.sh', size: 5000, mode: 0o755 },
    { kind: 'file', path: 'one/two/three/deep.bin', size: 70_000, mode: 0o640 },
    { kind: 'file', path: 'one/big.bin', size: 3 * MiB + 123, mode: 0o644 },
    { kind: 'file', path: 'one/exact-piece.bin', size: MiB, mode: 0o604 },
    { kind: 'dir', path: 'one/two', mode: 0o750 },
    { kind: 'dir', path: 'locked', mode: 0o500 },
    { kind: 'file', path: 'locked/inside', size: 10, mode: 0o400 },
    { kind: 'dir', path: 'empty-dir', mode: 0o700 },
    { kind: 'symlink', path: 'link-rel', target: 'one/two/three/deep.bin' },
    { kind: 'symlink', path: 'one/dangling', target: '../nowhere' },
    { kind: 'symlink', path: 'abs-link', target: '/etc/hostname' },
  ];
  const counts = await buildTree(src, specs);
  const run = await startRun({ src, dest, extra: 2 });
  await bounded(run.done, RUN_MS, 'the transfer');
  assert.equal(await compareTrees(src, dest, { ignoreRootMeta: true }), []);
  assert.is(run.receiverStats.filesSent, counts.files);
  assert.is(run.receiverStats.filesFailed, 0);
  assert.equal(run.warnings, []);
  assert.equal(await leftovers(dest), []);
  // Each side reports every file and link once as finished, by its path on the wire.
  const sent = specs.filter((e) => e.kind !== 'dir').map((e) => e.path);
  assert.equal(pathsOf(run.senderEvents, 'finished'), sent.sort());
  assert.equal(pathsOf(run.receiverEvents, 'finished'), sent.sort());
  assert.equal(pathsOf(run.receiverEvents, 'skipped'), []);

  // Run again: everything is up to date, nothing crosses.
  const again = await startRun({ src, dest });
  await bounded(again.done, RUN_MS, 'the re-run');
  assert.is(again.receiverStats.filesSkipped, counts.files);
  assert.equal(pathsOf(again.senderEvents, 'skipped'), sent.sort());
  assert.equal(pathsOf(again.receiverEvents, 'finished'), []);
  assert.is(again.receiverStats.bytesDone, 0);
  assert.equal(await compareTrees(src, dest, { ignoreRootMeta: true }), []);
});

test('a partial and its piece index left by an interrupted run are resumed: only missing pieces cross', async () => {
  const src = await freshDir('src');
  const dest = await freshDir('dest');
  const size = 24 * MiB + 777;
  await writeRandomFile(path.join(src, 'big.bin'), size);
  const { meta } = partialOf(path.join(dest, 'big.bin'));
  // The first third of the file's DATA reaches the receiver, the rest is held back: the file cannot be
  // finished when the connection is cut.
  let dataFrames = 0;
  const framesPerThird = Math.floor(size / 3 / MAX_DATA_BYTES);
  const control = await relayedPair((frame) => frame[0] !== MsgType.Data || dataFrames++ < framesPerThird);
  const first = await startRun({ src, dest, control });
  await waitUntil(async () => (await recordedPieces(meta)).length >= 4, 'pieces recorded', RUN_MS);
  control[1].destroy();
  await bounded(
    first.done.then(
      () => assert.unreachable('the interrupted run succeeded'),
      () => {},
    ),
    RUN_MS,
    'the interrupted run failing',
  );
  assert.is(first.partialsKept.length, 1, 'the partial was kept for resume');
  const kept = await recordedPieces(meta);

  const second = await startRun({ src, dest, extra: 1 });
  await bounded(second.done, RUN_MS, 'the resumed run');
  assert.is(await sha256File(path.join(dest, 'big.bin')), await sha256File(path.join(src, 'big.bin')));
  assert.ok(kept.length >= 4);
  assert.is(second.receiverStats.bytesResumed, kept.length * MiB, 'every recorded piece was kept');
  assert.is(second.receiverStats.bytesDone, size - kept.length * MiB, 'only the missing pieces crossed');
  assert.equal(await leftovers(dest), []);
});

test('a data connection lost mid-file: its pieces are sent again over the others', async () => {
  const src = await freshDir('src');
  const dest = await freshDir('dest');
  const size = 32 * MiB + 4321;
  await writeRandomFile(path.join(src, 'big.bin'), size);
  let cut = false;
  let first: Socket | undefined;
  const run = await startRun({
    src,
    dest,
    extra: 2,
    onExtra: (s, index) => {
      if (index === 0) first = s;
    },
    // The receiver reads into its pieces, so its socket emits no 'data': its byte count says where it is.
    onReceiverEvent: () => {
      // Mid-piece: a piece is 1 MiB plus frame headers.
      if (first === undefined || first.bytesRead < 2.5 * MiB || cut) return;
      cut = true;
      first.destroy();
    },
  });
  await bounded(run.done, RUN_MS, 'the transfer');
  assert.ok(cut, 'a data connection was cut');
  assert.ok(run.lost.length >= 1, 'the loss was reported');
  assert.is(await sha256File(path.join(dest, 'big.bin')), await sha256File(path.join(src, 'big.bin')));
  assert.is(run.receiverStats.filesSent, 1);
  assert.equal(await leftovers(dest), []);
});

test('a damaged piece: the file fails its checksum, is sent again and ends intact', async () => {
  const src = await freshDir('src');
  const dest = await freshDir('dest');
  const size = 3 * MiB + 99;
  await writeRandomFile(path.join(src, 'data.bin'), size);
  await writeFile(path.join(src, 'small.txt'), 'a small file beside it\n');
  let dataFrames = 0;
  let damaged = false;
  // Frame checksums are recomputed, so only the file's own checksum can catch it.
  const control = await relayedPair((frame) => {
    if (frame[0] !== MsgType.Data || dataFrames++ !== 20) return true;
    frame[FRAME_HEADER_SIZE + DATA_PREFIX_SIZE + 100]! ^= 0xff;
    frame.writeUInt32BE(hasher.h32(frame.subarray(FRAME_HEADER_SIZE)) >>> 0, 1);
    damaged = true;
    return true;
  });
  const run = await startRun({ src, dest, control });
  await bounded(run.done, RUN_MS, 'the transfer');
  assert.ok(damaged, 'a DATA frame was damaged');
  assert.ok(
    run.warnings.some((w) => w.code === 'FCP_ERR_FILE_CHECKSUM'),
    `warnings: ${run.warnings.map((w) => w.code).join(', ')}`,
  );
  assert.is(await sha256File(path.join(dest, 'data.bin')), await sha256File(path.join(src, 'data.bin')));
  assert.equal(await compareTrees(src, dest, { ignoreRootMeta: true }), []);
  assert.equal(await leftovers(dest), []);
});

test.after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test.run();
