import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { jsonLine } from '../../src/cli/json-line.js';

const UNSAFE = ['\u007f', '\u0085', '\u009b', '\u2028', '\u2029'];

test('jsonLine escapes DEL, C1 controls and U+2028/2029, and parses back to the same value', () => {
  const value = { path: `a${UNSAFE.join('b')}z`, list: [...UNSAFE] };
  const line = jsonLine(value);
  assert.ok(line.endsWith('\n'));
  assert.is(line.indexOf('\n'), line.length - 1, 'one line');
  assert.not.match(line, /[\u007f-\u009f\u2028\u2029]/);
  assert.ok(line.includes('\\u009b') && line.includes('\\u2028'));
  assert.equal(JSON.parse(line), value);
});

test('jsonLine leaves other text as JSON.stringify writes it', () => {
  const value = { name: 'café 日本語 😀 \u00a0', n: 1, ok: true, none: null };
  assert.is(jsonLine(value), `${JSON.stringify(value)}\n`);
});

test.run();
