import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/errors.js';
import {
  compileNameGlob,
  compilePathGlob,
  hasGlobSyntax,
  MAX_ALTERNATIVES,
  MAX_EXPANDED,
  MAX_GLOB_LENGTH,
} from '../../src/transfer/glob-match.js';

/** [pattern, text, whether it matches] for a whole relative path, '.' names like any other. */
const PATH_TABLE: readonly (readonly [string, string, boolean])[] = [
  ['*', 'a', true],
  ['*', '.hidden', true],
  ['*', 'a/b', false],
  ['*.ts', 'a.ts', true],
  ['*.ts', 'a.ts.bak', false],
  ['a*', 'a', true],
  ['*a*', 'xay', true],
  ['?', 'a', true],
  ['?', 'ab', false],
  ['?', '', false],
  ['?', 'ü', true],
  ['?', '😀', true],
  ['??', '😀', false],
  ['?b', 'ab', true],
  ['a?c', 'a/c', false],
  ['[abc]x', 'bx', true],
  ['[abc]x', 'dx', false],
  ['[a-c]x', 'cx', true],
  ['[!a-c]x', 'cx', false],
  ['[!a-c]x', 'dx', true],
  ['[^a-c]x', 'dx', true],
  ['[^a-c]x', 'ax', false],
  ['[]a]', ']', true],
  ['[a-]', '-', true],
  ['[\\]]', ']', true],
  ['[[:digit:]]*', '7up', true],
  ['[[:digit:]]*', 'up7', false],
  ['[[:alpha:][:digit:]_]', '_', true],
  ['[![:space:]]', ' ', false],
  ['a[1]', 'a1', true],
  ['a[1]', 'a[1]', true],
  ['[unclosed', '[unclosed', true],
  ['\\*', '*', true],
  ['\\*', 'a', false],
  ['a\\?', 'a?', true],
  ['a\\?', 'ab', false],
  ['\\[a]', '[a]', true],
  ['{a,b}', 'a', true],
  ['{a,b}', 'b', true],
  ['{a,b}', 'c', false],
  ['*.{ts,js}', 'x.js', true],
  ['x{a,{b,c}}', 'xc', true],
  ['{,x}a', 'a', true],
  ['{,x}a', 'xa', true],
  ['{a}', '{a}', true],
  ['{a', '{a', true],
  ['\\{a,b}', '{a,b}', true],
  ['{src,lib}/*.ts', 'lib/x.ts', true],
  ['a**b', 'axyb', true],
  ['a**b', 'ax/yb', false],
  ['**', 'a/b/c', true],
  ['**', '.git/x', true],
  ['a/**', 'a', true],
  ['a/**', 'a/b/c', true],
  ['a/**', 'b/a', false],
  ['**/b', 'b', true],
  ['**/b', 'a/x/b', true],
  ['**/b', 'a/b/c', false],
  ['a/**/b', 'a/b', true],
  ['a/**/b', 'a/x/y/b', true],
  ['a/**/b', 'a/x/y/c', false],
  ['a/**/**/b', 'a/b', true],
  ['a/*/b', 'a/x/b', true],
  ['a/*/b', 'a/x/y/b', false],
  ['src/**/*.ts', 'src/a.ts', true],
  ['src/**/*.ts', 'src/x/y/a.ts', true],
  ['src/**/*.ts', 'lib/src/a.ts', false],
  ['**/build/*.o', 'x/y/build/a.o', true],
  ['**/build/*.o', 'x/y/build/sub/a.o', false],
  ['* *', 'a b', true],
  ['*\n*', 'new\nline', true],
  ['ü*', 'über', true],
];

test('path globs: the semantics table', () => {
  for (const [pattern, text, expected] of PATH_TABLE) {
    const isMatch = compilePathGlob(pattern, `pattern ${JSON.stringify(pattern)}`).test;
    assert.is(isMatch(text), expected, `${JSON.stringify(pattern)} vs ${JSON.stringify(text)}`);
  }
});

test('name globs: a leading "." is matched only by a literal "."', () => {
  const table: readonly (readonly [string, string, boolean])[] = [
    ['*', '.hidden', false],
    ['?hidden', '.hidden', false],
    ['[.]hidden', '.hidden', false],
    ['[!a]hidden', '.hidden', false],
    ['.*', '.hidden', true],
    ['\\.*', '.hidden', true],
    ['{.h,x}*', '.hidden', true],
    ['*.gz', 'a.gz', true],
    ['*.gz', '.gz', false],
    ['a.*', 'a.gz', true],
    ['**', 'a', true],
    ['a[1].gz', 'a[1].gz', true],
  ];
  for (const [pattern, name, expected] of table) {
    const isMatch = compileNameGlob(pattern, `pattern ${JSON.stringify(pattern)}`).test;
    assert.is(isMatch(name), expected, `${JSON.stringify(pattern)} vs ${JSON.stringify(name)}`);
  }
});

test('hasGlobSyntax: unescaped * ? [ { and extglob openers', () => {
  for (const s of ['*.gz', 'a?', 'a[1]', '{a,b}', 'x\\\\*', '@(x)', 'a!(b)', '+(c)'])
    assert.ok(hasGlobSyntax(s), s);
  for (const s of ['plain', 'a.gz', 'a\\*', 'sp ace', 'f (1)', 'a]', '\\@(x)', 'a!b'])
    assert.not.ok(hasGlobSyntax(s), s);
});

/** The FCP_ERR_USAGE message `fn` throws. */
function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof FcpError && err.code === 'FCP_ERR_USAGE', String(err));
    return (err as Error).message;
  }
  assert.unreachable('no error');
  return '';
}

test('extglobs, bad ranges and unknown classes are refused, naming the pattern', () => {
  for (const p of ['@(a|b)', '!(a)', '+(a)', 'x*(a)', '?(a)', 'a/@(b)']) {
    assert.match(
      usage(() => compilePathGlob(p, `--exclude pattern ${JSON.stringify(p)}`)),
      'extglob',
    );
    assert.match(
      usage(() => compileNameGlob(p, `pattern ${JSON.stringify(p)}`)),
      JSON.stringify(p),
    );
  }
  assert.match(
    usage(() => compilePathGlob('[z-a]', 'pattern "[z-a]"')),
    'invalid pattern "[z-a]": empty range z-a',
  );
  assert.match(
    usage(() => compilePathGlob('[[:alfa:]]', 'p')),
    'unknown character class',
  );
  // A parenthesis elsewhere, or escaped, is an ordinary character.
  assert.ok(compilePathGlob('file (1).txt', 'p').test('file (1).txt'));
  assert.ok(compilePathGlob('x\\*(1)', 'p').test('x*(1)'));
  assert.ok(compilePathGlob('*\\(1\\)', 'p').test('x(1)'));
});

test('patterns are bounded: length and brace alternatives', () => {
  const long = 'a'.repeat(MAX_GLOB_LENGTH + 1);
  assert.match(
    usage(() => compilePathGlob(long, 'p')),
    `longer than ${MAX_GLOB_LENGTH}`,
  );
  assert.ok(compilePathGlob('a'.repeat(MAX_GLOB_LENGTH), 'p').test('a'.repeat(MAX_GLOB_LENGTH)));
  // 2^8 alternatives is the most; 2^9 is refused, and so is a brace bomb.
  assert.ok(compilePathGlob('{a,b}'.repeat(8), 'p').test('abababab'));
  assert.match(
    usage(() => compilePathGlob('{a,b}'.repeat(9), 'p')),
    `more than ${MAX_ALTERNATIVES}`,
  );
  assert.match(
    usage(() => compileNameGlob('{,}'.repeat(300), 'p')),
    `more than ${MAX_ALTERNATIVES}`,
  );
});

test('the expanded size is bounded, and reported', () => {
  assert.is(compilePathGlob('{a,b}'.repeat(8), 'p').size, 256 * 8);
  assert.is(compileNameGlob('x{a,bc}', 'p').size, 2 + 3);
  const big = `${'{a,b}'.repeat(8)}${'x'.repeat(20)}`;
  assert.match(
    usage(() => compilePathGlob(big, 'p')),
    `more than ${MAX_EXPANDED} characters`,
  );
});

test('hostile patterns cost no more than name x pattern steps', () => {
  // Each of these took a backtracking regex more than 10 s on a 60-character name (micromatch); here
  // they are a few thousand steps each. No time is asserted: a hang would time the test run out.
  const name = 'a'.repeat(255);
  const path = Array.from({ length: 40 }, () => 'a'.repeat(60)).join('/');
  for (const p of ['*a*a*a*a*a*a*a*a*a*a*a*a*b', '*?*?*?*?*?*?*?*?*?*?*?*#', `${'*a'.repeat(300)}*b`]) {
    assert.not.ok(compilePathGlob(p, 'p').test(name), p);
    assert.not.ok(compileNameGlob(p, 'p').test(name), p);
  }
  assert.not.ok(compilePathGlob(`${'**/a*a*a*/'.repeat(30)}b`, 'p').test(path));
  assert.ok(compilePathGlob(`${'*a'.repeat(200)}*`, 'p').test(name));
});

test.run();
