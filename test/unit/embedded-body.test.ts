// bin/fcpd.js's layout (src/cli/embedded-body.ts): the launcher, then the rest of fcpd in one block comment
// that the reader gives back exactly, `*/` inside it and all, and runs as CommonJS.
import * as assert from 'uvu/assert';
import { embedBody, embeddedBody, runBody } from '../../src/cli/embedded-body.js';
import { test } from '../helpers/test.js';

const LAUNCHER = '#!/usr/bin/env node\nconsole.log("launcher");\n';

test('the body comes back as it went in, comment ends and all, without its hashbang', () => {
  const body =
    '#!/usr/bin/env node\n"use strict";\n/** a */ const x = "*/"; // */\nmodule.exports = { x };\n';
  const text = embedBody(LAUNCHER, body);
  const got = embeddedBody(text);
  assert.ok(got);
  assert.is(got.code, body.replace(/^#!.*\n/, ''));
  // The first line after the launcher's two and the comment's opening line.
  assert.is(got.line, 4);
  assert.is(text.split('\n')[got.line - 1], '"use strict";');
});

test('the file is the launcher alone to a JavaScript parser: the body is inside one comment', () => {
  const text = embedBody(LAUNCHER, 'throw new Error("ran"); /* */ ) syntax error (\n');
  // The same text (hashbang removed) parses as a function body: the body's syntax error is in a comment.
  assert.not.throws(() => new Function(text.replace(/^#!.*\n/, '')));
});

test('a launcher without a body has none; one is never embedded twice', () => {
  assert.is(embeddedBody(LAUNCHER), undefined);
  assert.throws(() => embedBody(embedBody(LAUNCHER, 'module.exports = 1;\n'), 'x'), /already/);
});

test('a body holding the reserved \\x01 is refused at build time', () => {
  assert.throws(() => embedBody(LAUNCHER, 'const a = "\x01";\n'), /x01/);
});

test('runBody runs the body as a CommonJS module of that file and returns its exports', () => {
  const body = embeddedBody(
    embedBody(LAUNCHER, 'module.exports = { file: __filename, path: require("node:path").sep };\n'),
  );
  assert.ok(body);
  // The cache is test/e2e/compile-cache.test.ts's: none here, in this process.
  process.env['FCP_NO_COMPILE_CACHE'] = '1';
  const cache = { bytes: Buffer.from(''), kind: 'fcpd' as const, variant: 'other' };
  assert.equal(runBody('/tmp/x/fcpd.js', body, cache), { file: '/tmp/x/fcpd.js', path: '/' });
});

test.run();
