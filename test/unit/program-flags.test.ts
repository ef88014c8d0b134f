// The V8 flags each program sets before its code is compiled (compile-cache.ts programFlags): the smaller
// inlining budget of fcp and of the one-session fcpd (--serve-once), with or without a code cache, and none
// for a standing fcpd. V8's cachedDataVersionTag() hashes every
// flag's value, so a child that compiled through compileCached() reports the same tag as a node started with
// exactly those flags on its command line.
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { execFileSync } from '../helpers/sync.js';
import { test } from '../helpers/test.js';

const MODULE_JS = fileURLToPath(new URL('../../src/cli/compile-cache.js', import.meta.url));
const CLIENT_FLAG = '--max-inlined-bytecode-size-cumulative=100';

/** The version tag of a node started with `nodeFlags` that compiles one script as program `kind`. */
function tagAfterCompile(
  kind: 'fcp' | 'fcpd' | undefined,
  nodeFlags: string[] = [],
  variant = 'push',
): number {
  const compile =
    kind === undefined
      ? ''
      : `const { compileCached } = await import(${JSON.stringify(MODULE_JS)});
         compileCached({ file: 'x.cjs', code: '1', lineOffset: 0, bytes: Buffer.from('1'), kind: '${kind}', variant: '${variant}' });`;
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

test('a standing fcpd keeps V8 defaults: its code serves many sessions', () => {
  assert.is(tagAfterCompile('fcpd', [], 'other'), tagAfterCompile(undefined));
});

test('fcpd --serve-once, one session over ssh, compiles under the smaller budget as fcp does', () => {
  assert.is(tagAfterCompile('fcpd', [], '--serve-once'), tagAfterCompile(undefined, [CLIENT_FLAG]));
});

test.run();
