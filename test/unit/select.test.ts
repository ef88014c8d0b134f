import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/errors.js';
import { createSelector } from '../../src/transfer/select.js';

function isUsage(err: unknown): boolean {
  return err instanceof FcpError && err.code === 'FCP_ERR_USAGE';
}

test('with no options everything is wanted', () => {
  for (const sel of [createSelector(), createSelector({})]) {
    assert.ok(sel.wantsFile('a'));
    assert.ok(sel.wantsFile('.hidden/x'));
    assert.ok(sel.wantsDir('a/b'));
    assert.ok(sel.wantsDir('.'));
  }
});

test('a glob without "/" matches the name at any depth, dot names included', () => {
  const sel = createSelector({ exclude: ['*.log', '.git'] });
  assert.not.ok(sel.wantsFile('x.log'));
  assert.not.ok(sel.wantsFile('a/b/c/x.log'));
  assert.not.ok(sel.wantsFile('.hidden.log'));
  assert.ok(sel.wantsFile('x.log.gz'));
  assert.ok(sel.wantsFile('log/x.txt'));
  assert.not.ok(sel.wantsDir('.git'));
  assert.not.ok(sel.wantsDir('sub/module/.git'));
  assert.ok(sel.wantsDir('.github'));
});

test('a glob with "/" matches the whole relative path', () => {
  const sel = createSelector({ exclude: ['src/*.ts', 'docs/**'] });
  assert.not.ok(sel.wantsFile('src/a.ts'));
  // '*' does not cross '/', and the pattern is not matched against a suffix.
  assert.ok(sel.wantsFile('src/sub/a.ts'));
  assert.ok(sel.wantsFile('lib/src/a.ts'));
  assert.not.ok(sel.wantsDir('docs/api'));
  assert.not.ok(sel.wantsFile('docs/api/x.md'));
  assert.ok(sel.wantsFile('mydocs/x.md'));
});

test('"**" crosses directories', () => {
  const sel = createSelector({ exclude: ['**/build/*.o'] });
  assert.not.ok(sel.wantsFile('build/a.o'));
  assert.not.ok(sel.wantsFile('x/y/build/a.o'));
  assert.ok(sel.wantsFile('x/y/build/sub/a.o'));
});

test('a leading "/" anchors the pattern to the top', () => {
  const sel = createSelector({ exclude: ['/build'] });
  assert.not.ok(sel.wantsDir('build'));
  assert.not.ok(sel.wantsFile('build'));
  assert.ok(sel.wantsDir('src/build'));
});

test('a trailing "/" excludes directories only', () => {
  const sel = createSelector({ exclude: ['cache/'] });
  assert.not.ok(sel.wantsDir('cache'));
  assert.not.ok(sel.wantsDir('a/b/cache'));
  assert.ok(sel.wantsFile('cache'));
  assert.ok(sel.wantsFile('a/cache'));
});

test('exclude applies to files, links and directories', () => {
  const sel = createSelector({ exclude: ['tmp*'] });
  assert.not.ok(sel.wantsFile('tmpfile'));
  assert.not.ok(sel.wantsDir('tmpdir'));
  assert.not.ok(sel.wantsDir('a/tmpdir'));
});

test('include applies to files only: directories are still walked', () => {
  const sel = createSelector({ include: ['*.gz'] });
  assert.ok(sel.wantsFile('a.gz'));
  assert.ok(sel.wantsFile('x/y/a.gz'));
  assert.not.ok(sel.wantsFile('a.txt'));
  assert.not.ok(sel.wantsFile('x/a.gz.txt'));
  assert.ok(sel.wantsDir('x'));
  assert.ok(sel.wantsDir('x/y'));
});

test('several includes: a file must match one of them', () => {
  const sel = createSelector({ include: ['*.gz', 'keep/*'] });
  assert.ok(sel.wantsFile('a.gz'));
  assert.ok(sel.wantsFile('keep/a.txt'));
  assert.not.ok(sel.wantsFile('other/a.txt'));
});

test('exclude wins over include', () => {
  const sel = createSelector({ include: ['*.gz'], exclude: ['secret*'] });
  assert.ok(sel.wantsFile('a.gz'));
  assert.not.ok(sel.wantsFile('secret.gz'));
  assert.not.ok(sel.wantsDir('secrets'));
});

test('regex is tested against the whole relative path, unanchored', () => {
  const sel = createSelector({ regex: ['^logs/\\d{4}-', '\\.csv$'] });
  assert.ok(sel.wantsFile('logs/2024-01.txt'));
  assert.ok(sel.wantsFile('a/b.csv'));
  assert.not.ok(sel.wantsFile('x/logs/2024-01.txt'));
  assert.not.ok(sel.wantsFile('a.csv.bak'));
  // Directories are never filtered by a regex.
  assert.ok(sel.wantsDir('x'));
});

test('include and regex must both match when both are given', () => {
  const sel = createSelector({ include: ['*.gz'], regex: ['2024'] });
  assert.ok(sel.wantsFile('a/2024.gz'));
  assert.not.ok(sel.wantsFile('a/2023.gz'));
  assert.not.ok(sel.wantsFile('a/2024.txt'));
});

test('names with spaces, newlines and unicode match like any other', () => {
  const sel = createSelector({ exclude: ['* *', 'ü*'], include: ['*.txt', '*\n*'] });
  assert.not.ok(sel.wantsFile('a b.txt'));
  assert.not.ok(sel.wantsFile('dir/über.txt'));
  assert.ok(sel.wantsFile('dir/new\nline'));
  assert.ok(sel.wantsFile('日本.txt'));
});

test('the transfer root is always wanted', () => {
  const sel = createSelector({ exclude: ['*', '.*'] });
  assert.ok(sel.wantsDir('.'));
  assert.not.ok(sel.wantsDir('a'));
});

test('an invalid regex is a usage error naming it', () => {
  assert.throws(() => createSelector({ regex: ['(unclosed'] }), isUsage);
  try {
    createSelector({ regex: ['ok', '[z-a]'] });
    assert.unreachable();
  } catch (err) {
    assert.ok(isUsage(err));
    assert.match((err as Error).message, /invalid --regex "\[z-a\]"/);
  }
});

test('an empty or impossible pattern is a usage error', () => {
  assert.throws(() => createSelector({ exclude: [''] }), isUsage);
  assert.throws(() => createSelector({ include: [''] }), isUsage);
  assert.throws(() => createSelector({ exclude: ['/'] }), isUsage);
  assert.throws(() => createSelector({ exclude: ['a\0b'] }), isUsage);
  // Directories are always walked, so an include that matches only directories would select nothing.
  assert.throws(() => createSelector({ include: ['dir/'] }), /--include/);
});

test('a pattern the matcher cannot take is a usage error naming the option and the pattern', () => {
  const cases: readonly (readonly [string, RegExp])[] = [
    ['!*.txt', /invalid --exclude pattern "!\*\.txt": a leading "!" \(negation\) is not supported/],
    ['@(a|b)', /invalid --exclude pattern "@\(a\|b\)": extglobs/],
    ['/x/[z-a]/', /invalid --exclude pattern "\/x\/\[z-a\]\/": empty range/],
    ['{a,b}'.repeat(9), /more than 256 patterns/],
    ['a'.repeat(1025), /longer than 1024 characters/],
  ];
  for (const [pattern, message] of cases) {
    assert.throws(
      () => createSelector({ exclude: [pattern] }),
      (err: unknown) => isUsage(err) && message.test((err as Error).message),
    );
  }
  assert.throws(() => createSelector({ include: ['+(x)'] }), /invalid --include pattern "\+\(x\)"/);
  // An escaped '!' is a name starting with '!'.
  assert.not.ok(createSelector({ exclude: ['\\!keep'] }).wantsFile('d/!keep'));
});

test('all patterns together are bounded, so a PULL cannot stack up cost', () => {
  const wide = `${'{a,b}'.repeat(8)}${'x'.repeat(7)}`; // 256 alternatives of 15 characters
  createSelector({ include: [wide, wide, wide, wide] });
  assert.throws(
    () => createSelector({ include: [wide, wide, wide], exclude: [wide, wide] }),
    (err: unknown) => isUsage(err) && /too many --include\/--exclude patterns/.test((err as Error).message),
  );
});

test('braces, classes and escapes select the same names on both sides', () => {
  const sel = createSelector({
    include: ['*.{ts,js}', 'data[0-9].bin', 'lit\\*'],
    exclude: ['{build,dist}/'],
  });
  assert.ok(sel.wantsFile('a/x.ts'));
  assert.ok(sel.wantsFile('x.js'));
  assert.ok(sel.wantsFile('d/data7.bin'));
  assert.not.ok(sel.wantsFile('dataX.bin'));
  assert.ok(sel.wantsFile('lit*'));
  assert.not.ok(sel.wantsFile('literal'));
  assert.not.ok(sel.wantsDir('src/dist'));
  assert.ok(createSelector({ exclude: ['{build,dist}/'] }).wantsFile('src/dist'));
});

test.run();
