import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/errors.js';
import {
  baseName,
  checkWirePath,
  compareUtf8,
  joinWirePath,
  parentOf,
  ROOT_ENTRY,
} from '../../src/transfer/wire-path.js';

function rejection(p: string): FcpError {
  try {
    checkWirePath(p);
  } catch (err) {
    assert.instance(err, FcpError);
    return err as FcpError;
  }
  throw new Error(`accepted ${JSON.stringify(p)}`);
}

function assertUnsafe(p: string, reason: RegExp): void {
  const err = rejection(p);
  assert.is(err.code, 'FCP_ERR_PATH_UNSAFE', JSON.stringify(p));
  assert.is(err.path, p);
  assert.is(err.fatal, false);
  assert.match(err.message, reason, JSON.stringify(p));
}

test('the root entry is valid', () => {
  assert.is(ROOT_ENTRY, '.');
  assert.is(checkWirePath('.'), '.');
});

test('names Linux allows are accepted as they are', () => {
  const names = [
    'a',
    'a/b/c',
    'with space',
    ' leading and trailing space ',
    'new\nline',
    'tab\there',
    'carriage\rreturn',
    'ünïcödé/日本語/файл',
    'emoji 😀/🚀.txt',
    `quote"s and 'apostrophes'`,
    'back\\slash',
    '\\',
    '-leading-dash',
    '--rf',
    '...',
    '..a',
    'a..',
    '.hidden',
    'a/.b/.c',
    '~',
    '$HOME',
    '*?[glob]',
    'C:',
    '\u0001control',
  ];
  for (const name of names) assert.is(checkWirePath(name), name, JSON.stringify(name));
});

test('rejects the empty path', () => {
  assertUnsafe('', /empty/);
});

test('rejects NUL anywhere', () => {
  for (const p of ['\0', 'a\0', '\0a', 'a/\0/b', 'a\0b/c']) assertUnsafe(p, /NUL/);
});

test('rejects absolute paths', () => {
  for (const p of ['/', '/etc/passwd', '//x', '/a/b']) assertUnsafe(p, /absolute/);
});

test('rejects a trailing slash', () => {
  for (const p of ['a/', 'a/b/', './', '../']) assertUnsafe(p, /trailing slash/);
});

test('rejects empty segments', () => {
  for (const p of ['a//b', 'a///b', 'a/b//c']) assertUnsafe(p, /empty segment/);
});

test('rejects "." segments other than the root entry itself', () => {
  for (const p of ['./a', 'a/.', 'a/./b', './.']) assertUnsafe(p, /"\." segment/);
});

test('rejects ".." segments anywhere', () => {
  for (const p of ['..', '../a', 'a/..', 'a/../b', 'a/b/../../..', '../../../etc/passwd']) {
    assertUnsafe(p, /"\.\." segment/);
  }
});

test('rejects lone surrogates, which cannot be written as UTF-8', () => {
  assertUnsafe('a\ud800b', /unicode/);
  assertUnsafe('x/\udfff', /unicode/);
  assert.is(checkWirePath('\ud83d\ude00'), '😀');
});

test('limits a name to 255 bytes of UTF-8, not 255 characters', () => {
  assert.ok(checkWirePath('x'.repeat(255)));
  assert.ok(checkWirePath(`a/${'x'.repeat(255)}/b`));
  assertUnsafe('x'.repeat(256), /name longer than 255 bytes/);
  assertUnsafe(`a/${'x'.repeat(256)}`, /name longer than 255 bytes/);
  // 85 three-byte characters are 255 bytes; 86 are 258 though only 86 characters long.
  assert.ok(checkWirePath('あ'.repeat(85)));
  assertUnsafe('あ'.repeat(86), /name longer than 255 bytes/);
  assert.ok(checkWirePath('é'.repeat(127)));
  assertUnsafe('é'.repeat(128), /name longer than 255 bytes/);
  assert.ok(checkWirePath('😀'.repeat(63)));
  assertUnsafe('😀'.repeat(64), /name longer than 255 bytes/);
});

test('limits a path to 4095 bytes of UTF-8', () => {
  const segment = 'x'.repeat(254);
  // 16 segments of 254 bytes plus 15 slashes = 4079 bytes; pad to exactly 4095.
  const base = Array.from({ length: 16 }, () => segment).join('/');
  const exact = `${base}/${'y'.repeat(4095 - base.length - 1)}`;
  assert.is(Buffer.byteLength(exact), 4095);
  assert.is(checkWirePath(exact), exact);
  assertUnsafe(`${exact}z`, /longer than 4095 bytes/);
  const multibyte = `${Array.from({ length: 17 }, () => 'é'.repeat(127)).join('/')}/ab`;
  assert.ok(multibyte.length < 4095);
  assert.ok(Buffer.byteLength(multibyte) > 4095);
  assertUnsafe(multibyte, /longer than 4095 bytes/);
});

test('parentOf', () => {
  assert.is(parentOf('a/b/c'), 'a/b');
  assert.is(parentOf('a/b'), 'a');
  assert.is(parentOf('a'), '.');
  assert.is(parentOf('.'), '.');
  assert.is(parentOf('.hidden/x'), '.hidden');
});

test('baseName', () => {
  assert.is(baseName('a/b'), 'b');
  assert.is(baseName('a/b/c.txt'), 'c.txt');
  assert.is(baseName('a'), 'a');
  assert.is(baseName('.'), '.');
  assert.is(baseName('dir/back\\slash'), 'back\\slash');
});

test('joinWirePath knows the root entry', () => {
  assert.is(joinWirePath('.', 'x'), 'x');
  assert.is(joinWirePath('a', 'x'), 'a/x');
  assert.is(joinWirePath('a/b', 'x y'), 'a/b/x y');
  assert.is(joinWirePath(parentOf('a'), baseName('a')), 'a');
  assert.is(joinWirePath(parentOf('a/b/c'), baseName('a/b/c')), 'a/b/c');
});

test('compareUtf8 orders by bytes, not UTF-16 units', () => {
  // U+FFFF is EF BF BF in UTF-8, before F0 9F 98 80 for U+1F600, though its UTF-16 unit is larger.
  assert.ok('\uffff' > '😀');
  assert.ok(compareUtf8('\uffff', '😀') < 0);
  assert.equal(['b', 'B', 'a', '😀', '\uffff', 'é', 'A'].sort(compareUtf8), [
    'A',
    'B',
    'a',
    'b',
    'é',
    '\uffff',
    '😀',
  ]);
  assert.is(compareUtf8('same', 'same'), 0);
});

test.run();
