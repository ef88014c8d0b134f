// The V8 flags each program sets before its code is compiled (compile-cache.ts PROGRAM_FLAGS): fcp's smaller
// inlining budget, with or without a code cache, and none for fcpd. V8's cachedDataVersionTag() hashes every
// flag's value, so a child that compiled through compileCached() reports the same tag as a node started with
// exactly those flags on its command line.
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { execFileSync } from '../helpers/sync.js';
import { test } from '../helpers/test.js';

const MODULE_JS = fileURLToPath(new URL('../../src/cli/compile-cache.js', import.meta.url));
const CLIENT_FLAG = '--max-inlined-bytecode-size-cumulative=100';

/** The version tag of a node started with `nodeFlags` that compiles one script as program `kind`. */
function tagAfterCompile(kind: 'fcp' | 'fcpd' | undefined, nodeFlags: string[] = []): number {
  const compile =
    kind === undefined
      ? ''
      : `const { compileCached } = await import(${JSON.stringify(MODULE_JS)});
         compileCached({ file: 'x.cjs', code: '1', lineOffset: 0, bytes: Buffer.from('1'), kind: '${kind}', variant: 'push' });`;
  const script = `import { cachedDataVersionTag } from 'node:v8'; ${compile} console.log(cachedDataVersionTag());`;
  const out = execFileSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    // No cache: the flags must be set all the same (and nothing is written).
    env: { ...process.env, FCP_NO_COMPILE_CACHE: '1' },
  });
  return Number(out.trim());
}

test("fcp's code is compiled under its smaller inlining budget, with no code cache too", () => {
  const plain = tagAfterCompile(undefined);
  const fcp = tagAfterCompile('fcp');
  assert.is.not(fcp, plain, 'compiling as fcp changed no V8 flag');
  assert.is(fcp, tagAfterCompile(undefined, [CLIENT_FLAG]));
});

test('fcpd keeps V8 defaults: its code serves many sessions', () => {
  assert.is(tagAfterCompile('fcpd'), tagAfterCompile(undefined));
});

test.run();
