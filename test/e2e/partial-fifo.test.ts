// A FIFO planted at a partial's piece index (`.NAME.fcp-meta`) or at its kept temporary (`.NAME.fcp-part`)
// must not hang the receiver: the resume check opens both read-only, and an open of a FIFO without
// O_NONBLOCK waits for a writer that never comes (in a thread-pool thread, so not even SIGTERM ended fcp).
// A local user can plant one in a shared (1777) destination. The FIFO is refused as not our plain file, and
// the multi-piece file arrives intact. Push and pull alike (the receiver is the daemon, then fcp).
import { execFileSync } from '../helpers/sync.js';
import {
  closeSync,
  constants as fsConstants,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { describeRun, type RunResult, runFcp } from '../helpers/cli.js';
import { MiB, PIECE, partialOf, writeRandomFile } from '../helpers/reliability.js';
import { test } from '../helpers/test.js';
import { servedTree } from '../helpers/transfers.js';

const SIZE = 3 * MiB + 5;
/** Long enough for any healthy run of 3 MiB on loopback; only a hung run takes it. */
const HANG_MS = 15_000;

const { tmp, served, remote } = servedTree('fcp-e2e-partial-fifo-', async (t) => {
  // Four pieces, so that the receiver keeps (and looks for) a piece index.
  await writeRandomFile(path.join(t.tmp, 'big.bin'), SIZE);
});

function mkfifo(abs: string): void {
  mkdirSync(path.dirname(abs), { recursive: true });
  execFileSync('mkfifo', [abs]);
}

/**
 * A piece index that matches big.bin and records piece 0 as written, so that the receiver goes on to open
 * the kept temporary (a FIFO then) to re-hash that piece.
 */
function plantIndex(metaAbs: string): void {
  const header = Buffer.alloc(32 + 16);
  header.write('FCPMETA1', 0, 'latin1');
  header.writeBigUInt64BE(BigInt(SIZE), 8);
  header.writeBigInt64BE(statSync(path.join(tmp, 'big.bin'), { bigint: true }).mtimeNs, 16);
  header.writeUInt32BE(PIECE, 24);
  header.writeUInt32BE(Math.ceil(SIZE / PIECE), 28);
  header[32 + 8] = 1;
  writeFileSync(metaAbs, header, { mode: 0o600 });
}

/**
 * Runs fcp; should it still run after HANG_MS, a writer opens the FIFO (O_NONBLOCK, so never blocking
 * itself) to release a reader stuck in open(), and the run counts as hung.
 */
async function runReleasing(args: string[], fifo: string): Promise<RunResult & { hung: boolean }> {
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    try {
      closeSync(openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK));
    } catch {
      // ENXIO: nobody has it open for reading (or it is gone): nothing to release.
    }
  }, HANG_MS);
  try {
    return { ...(await runFcp(args, { timeoutMs: HANG_MS + 15_000 })), hung };
  } finally {
    clearTimeout(timer);
  }
}

function assertArrivedIntact(dir: string, r: RunResult & { hung: boolean }): void {
  assert.not.ok(r.hung, `the receiver hung on the FIFO: ${describeRun(r)}`);
  assert.is(r.code, 0, describeRun(r));
  assert.equal(readFileSync(path.join(dir, 'big.bin')), readFileSync(path.join(tmp, 'big.bin')));
  const { part, meta } = partialOf(path.join(dir, 'big.bin'));
  assert.not.ok(existsSync(part));
  assert.not.ok(existsSync(meta));
}

function pushCase(name: string, plant: (dest: string) => string): void {
  test(`push: ${name}`, async () => {
    const dir = path.join(served, `pushed-${name.replace(/\W+/g, '-')}`);
    const fifo = plant(path.join(dir, 'big.bin'));
    const r = await runReleasing(
      ['push', '-n', '2', path.join(tmp, 'big.bin'), remote(`${path.basename(dir)}/`)],
      fifo,
    );
    assertArrivedIntact(dir, r);
  });
}

function pullCase(name: string, plant: (dest: string) => string): void {
  test(`pull: ${name}`, async () => {
    writeFileSync(path.join(served, 'big.bin'), readFileSync(path.join(tmp, 'big.bin')));
    execFileSync('touch', ['-r', path.join(tmp, 'big.bin'), path.join(served, 'big.bin')]);
    const dir = path.join(tmp, `pulled-${name.replace(/\W+/g, '-')}`);
    const fifo = plant(path.join(dir, 'big.bin'));
    const r = await runReleasing(['pull', '-n', '2', remote('big.bin'), `${dir}/`], fifo);
    assertArrivedIntact(dir, r);
  });
}

const AT_INDEX = 'a FIFO at the .fcp-meta is refused, not waited on; the file arrives';
const AT_TEMP = 'a FIFO at the kept .fcp-part is refused, not waited on; the file arrives';

function fifoAtIndex(dest: string): string {
  const { meta } = partialOf(dest);
  mkfifo(meta);
  return meta;
}

function fifoAtTemp(dest: string): string {
  const { part, meta } = partialOf(dest);
  mkfifo(part);
  plantIndex(meta);
  return part;
}

pushCase(AT_INDEX, fifoAtIndex);
pushCase(AT_TEMP, fifoAtTemp);
pullCase(AT_INDEX, fifoAtIndex);
pullCase(AT_TEMP, fifoAtTemp);

test.run();
