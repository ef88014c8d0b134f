import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { printable, printableStack } from '../../src/cli/printable.js';

test('printable escapes C0, DEL and C1 controls', () => {
  assert.is(printable('a\nb\tc\rd'), 'a\\nb\\tc\\rd');
  assert.is(printable('x\x1b]0;T\x07y'), 'x\\x1b]0;T\\x07y');
  assert.is(printable('\x7f\x85\x9b'), '\\x7f\\x85\\x9b');
});

test('printable escapes bidi controls, so a name cannot display reversed', () => {
  assert.is(printable('bidi-\u202egpj.exe'), 'bidi-\\u{202e}gpj.exe');
  const bidi = '\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069';
  const escaped = printable(bidi);
  assert.is(escaped, [...bidi].map((c) => `\\u{${c.charCodeAt(0).toString(16).padStart(4, '0')}}`).join(''));
  assert.not.match(escaped, /[^\x20-\x7e]/);
});

test('printable escapes the Unicode line and paragraph separators', () => {
  assert.is(printable('a\u2028b\u2029c'), 'a\\u{2028}b\\u{2029}c');
});

test('printable leaves ordinary text alone, non-ASCII letters included', () => {
  for (const text of ['plain.txt', 'café/日本語 ñ', 'emoji-😀', 'zwj\u200d', 'nbsp\u00a0x'])
    assert.is(printable(text), text);
});

test.run();

test("printableStack: a message's own line breaks stay in its one line; the frames keep theirs", () => {
  class PeerError extends Error {}
  const err = new PeerError('peer said\nfcp: all 1 files verified\n    at fake (x.js:1:1)');
  err.name = 'FcpError'; // set after the error was made, as subclasses do
  const lines = printableStack(err).split('\n');
  assert.match(lines[0]!, /^(Fcp)?Error: peer said\\nfcp: all 1 files verified\\n {4}at fake \(x\.js:1:1\)$/);
  assert.ok(lines.length > 1);
  for (const frame of lines.slice(1)) assert.match(frame, /^ {4}at /);
  const bare = new Error('');
  assert.is(printableStack(bare).split('\n')[0], 'Error');
  assert.match(printableStack(bare).split('\n')[1] ?? '', /^ {4}at /);
  const changed = new Error('first');
  assert.ok(changed.stack!.length > 0); // V8 formats a stack when first read: here, with 'first'
  changed.message = 'second\nline';
  assert.is(printableStack(changed), 'Error: second\\nline');
});
