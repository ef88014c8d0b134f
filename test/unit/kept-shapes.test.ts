import { spawnSync } from '../helpers/sync.js';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';

// protocol/kept-shapes.ts: a daemon's per-session objects all die between two sessions, and with them the
// hidden classes V8's optimized code was compiled against; the next full GC then discards that code and the
// next session compiles it again (30-40 functions a small-file session). Each case optimizes a function
// that makes and uses such objects, lets every one of them die, collects, and asks V8 whether the code is
// still there. Run in a child: it needs V8's test intrinsics (%OptimizeFunctionOnNextCall and friends).

const OPTIMIZED = 16; // V8's OptimizationStatus::kOptimized

/** `make` and `use` run in an ES module in a child node that imported `imports` from dist/src. */
function staysOptimized(imports: string, make: string): { before: number; after: number } {
  const script = `
    ${imports}
    function use() { let n = 0; for (let i = 0; i < 4; i++) n += ${make}; return n; }
    %PrepareFunctionForOptimization(use);
    for (let i = 0; i < 10; i++) use();
    %OptimizeFunctionOnNextCall(use);
    use();
    const before = %GetOptimizationStatus(use);
    globalThis.gc(); globalThis.gc();
    console.log(JSON.stringify({ before, after: %GetOptimizationStatus(use) }));
  `;
  const run = spawnSync(
    process.execPath,
    ['--allow-natives-syntax', '--expose-gc', '--input-type=module', '-e', script],
    { encoding: 'utf8', cwd: new URL('../../src/', import.meta.url) },
  );
  assert.is(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as { before: number; after: number };
}

function assertKept(imports: string, make: string): void {
  const { before, after } = staysOptimized(imports, make);
  assert.ok((before & OPTIMIZED) !== 0, `not optimized to begin with (status ${before.toString(2)})`);
  assert.ok((after & OPTIMIZED) !== 0, `optimized code dropped once its objects died (${after.toString(2)})`);
}

test('a message reader and writer keep their optimized code', () => {
  assertKept(
    `import { PayloadReader, PayloadWriter } from './protocol/byte-io.js';
     const payload = Buffer.from([1, 2, 3, 4]);`,
    `new PayloadReader(payload).u16() + (new PayloadWriter(8).u32(7) ? 1 : 0)`,
  );
});

test("the walk's lstat keeps its optimized code", () => {
  assertKept(
    `import { lstatSync } from 'node:fs'; import './transfer/store/walk.js';`,
    `Number(lstatSync('.', { bigint: true }).size & 1n)`,
  );
});

test("the small-file read's fstat keeps its optimized code", () => {
  assertKept(
    `import { lstatSync } from 'node:fs'; import './transfer/store/posix-source.js';`,
    `lstatSync('.').mode & 1`,
  );
});

test('a received file keeps its optimized code', () => {
  assertKept(
    `import { PosixSinkFile } from './transfer/store/posix-file.js';
     const ctx = { root: undefined, umask: 0o22, sessionOver: () => false, onPartialKept: undefined, durable: undefined };
     const spec = { wirePath: 'f', wireSize: 1n, size: 1, pieces: 1, mode: 0o644, mtimeNs: 0n };`,
    `(new PosixSinkFile(ctx, 'f', spec, ['.f.fcp-part']).keepPartial() ? 1 : 0)`,
  );
});

test.run();
