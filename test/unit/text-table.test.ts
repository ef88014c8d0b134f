// The status tables (`fcp status`, `fcpd status`): a cell holding a control character or a bidi mark is
// printed escaped, and its column is as wide as the escape, so the columns after it stay aligned (session 12's
// review: they were padded by the raw string's length and shifted right by the escape's extra width).
import * as assert from 'uvu/assert';
import { formatColumns } from '../../src/cli/text-table.js';
import { test } from '../helpers/test.js';

test('a cell with a control character or a bidi mark keeps the later columns aligned', () => {
  const out = formatColumns([
    ['NAME', 'SIZE', 'FILE'],
    ['plain', '10', 'a'],
    ['bell\x07', '20', 'b'],
    ['bidi-\u202egpj.exe', '30', 'c'],
  ]);
  // 'bidi-\u{202e}gpj.exe' is 20 characters on the terminal: every row's SIZE column starts after it.
  const pad = (cell: string) => cell.padEnd(20 + 2);
  assert.is(
    out,
    [
      `${pad('NAME')}SIZE  FILE`,
      `${pad('plain')}10    a`,
      `${pad('bell\\x07')}20    b`,
      `${pad('bidi-\\u{202e}gpj.exe')}30    c`,
      '',
    ].join('\n'),
  );
  assert.not.match(out, /[\x00-\x09\x0b-\x1f\u202e]/);
});

test('the last column is not padded and no line ends in spaces', () => {
  const out = formatColumns([
    ['A', 'B'],
    ['x', 'long last cell'],
    ['yy', ''],
  ]);
  assert.is(out, 'A   B\nx   long last cell\nyy\n');
});

test.run();
