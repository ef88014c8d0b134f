// A partial's names belong to one live session (src/transfer/store/partial-claims.ts, spec/PROTOCOL.md §7.1
// "Overlapping sessions"): a second file of the same destination, while the first holds them, writes a
// private temporary and leaves the first's partial alone; once the first keeps its partial the next one
// resumes it. Across processes the claim is held by a live process only: SIGKILL frees it.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { PIECE_SIZE } from '../../src/protocol/index.js';
import { loadHasher } from '../../src/transfer/checksum.js';
import { ConfinedRoot } from '../../src/transfer/store/confined-root.js';
import { claimPartial } from '../../src/transfer/store/partial-claims.js';
import { PosixSink } from '../../src/transfer/store/posix-sink.js';
import { sidecarNameFor, tempNameFor } from '../../src/transfer/store/temp-names.js';
import { checkWirePath } from '../../src/transfer/wire-path.js';
import { tempDirs } from '../helpers/expect.js';
import { claimFreed } from '../helpers/partial-claim.js';
import { waitUntil } from '../helpers/reliability.js';
import { test } from '../helpers/test.js';

const { make: tempDir, removeAll } = tempDirs();
test.after(removeAll);

const PIECES = [1, 2, 3].map((b) => Buffer.alloc(PIECE_SIZE, b));
const SPEC = {
  wirePath: 'd/f.bin',
  wireSize: 3n * BigInt(PIECE_SIZE),
  size: 3 * PIECE_SIZE,
  pieces: 3,
  mode: 0o644,
  mtimeNs: 1_000_000_000n,
};
const CLAIMS_MODULE = fileURLToPath(new URL('../../src/transfer/store/partial-claims.js', import.meta.url));

test('a second file of the same destination leaves a live partial alone; the next one resumes it', async () => {
  const hasher = await loadHasher();
  const hash = (b: Uint8Array): bigint => hasher.pieceHash(b);
  const root = path.join(tempDir(), 'root');
  mkdirSync(path.join(root, 'd'), { recursive: true });
  const sink = new PosixSink(await ConfinedRoot.open(root), { sessionOver: () => false });
  const rel = checkWirePath(SPEC.wirePath);
  const open = () => sink.openFile(rel, SPEC, sink.workNames(rel, 3));
  const temp = path.join(root, tempNameFor(rel));
  const meta = path.join(root, sidecarNameFor(rel));

  const first = open();
  assert.is((await first.loadPartial(hash)).size, 0);
  await first.writePiece(0, PIECES[0]!, hash(PIECES[0]!));
  const firstTemp = readFileSync(temp);

  const second = open();
  assert.is((await second.loadPartial(hash)).size, 0, 'resumed a partial another file is writing');
  for (const [seq, piece] of PIECES.entries()) await second.writePiece(seq, piece, hash(piece));
  await second.commit();
  assert.ok(readFileSync(path.join(root, 'd', 'f.bin')).equals(Buffer.concat(PIECES)));
  assert.ok(readFileSync(temp).equals(firstTemp), "the live partial's temporary was touched");
  assert.ok(existsSync(meta), "the live partial's index was removed");
  assert.equal(readdirSync(path.join(root, 'd')).sort(), ['.f.bin.fcp-meta', '.f.bin.fcp-part', 'f.bin']);

  assert.ok(first.keepPartial());
  await claimFreed(temp);
  const third = open();
  assert.equal([...(await third.loadPartial(hash)).keys()], [0], 'the kept partial was not resumed');
  await third.discard();
});

test('a claim held by another process blocks this one until that process is killed', async () => {
  if (process.platform !== 'linux') return; // elsewhere only a process's own sessions are kept apart
  const temp = path.join(tempDir(), '.x.fcp-part');
  const script = `const { claimPartial } = await import(${JSON.stringify(CLAIMS_MODULE)});
    const claim = await claimPartial(${JSON.stringify(temp)});
    process.stdout.write(claim === undefined ? 'busy\\n' : 'held\\n');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    await waitUntil(() => out.includes('\n'), 'the other process to claim', 10_000);
    assert.is(out, 'held\n');
    assert.is(await claimPartial(temp), undefined, 'claimed what a live process holds');
  } finally {
    child.kill('SIGKILL');
  }
  await claimFreed(temp);
});

test.run();
