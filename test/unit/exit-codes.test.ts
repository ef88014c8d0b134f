import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/errors.js';
import {
  EXIT,
  EXIT_DESCRIPTIONS,
  exitCodeFor,
  exitCodesHelp,
  exitCodesMarkdown,
} from '../../src/cli/exit-codes.js';

// Exit codes (src/cli/exit-codes.ts): shared by fcp and fcpd.

function errno(code: string): Error {
  return Object.assign(new Error(code), { code });
}

test('exit codes: usage and path', () => {
  assert.is(exitCodeFor(new FcpError('FCP_ERR_USAGE')), EXIT.USAGE);
  assert.is(exitCodeFor(errno('EADDRINUSE')), EXIT.USAGE);
  for (const code of [
    'ENOENT',
    'EACCES',
    'EPERM',
    'ENOSPC',
    'EDQUOT',
    'EROFS',
    'EIO', // a failing disk is a storage error, not a bug (70)
    'ENOTDIR',
    'EISDIR',
  ] as const) {
    assert.is(exitCodeFor(new FcpError(code)), EXIT.PATH, code);
    assert.is(exitCodeFor(errno(code)), EXIT.PATH, `raw ${code}`);
  }
  for (const code of ['FCP_ERR_PATH_UNSAFE', 'FCP_ERR_PATH_OUTSIDE_ROOT', 'FCP_ERR_PATH_NO_MATCH'] as const) {
    assert.is(exitCodeFor(new FcpError(code)), EXIT.PATH, code);
  }
});

test('exit codes: connect', () => {
  assert.is(exitCodeFor(new FcpError('FCP_ERR_NET_CONNECT')), EXIT.CONNECT);
  for (const code of ['ECONNREFUSED', 'EHOSTUNREACH', 'ENOTFOUND', 'ETIMEDOUT']) {
    assert.is(exitCodeFor(errno(code)), EXIT.CONNECT, code);
  }
  assert.is(exitCodeFor(new AggregateError([errno('ECONNREFUSED'), errno('ECONNREFUSED')])), EXIT.CONNECT);
  // toFcpError wraps errno names it does not know as FCP_ERR_INTERNAL; the cause still decides.
  const wrapped = new FcpError('FCP_ERR_INTERNAL', 'connect failed', { cause: errno('ECONNREFUSED') });
  assert.is(exitCodeFor(wrapped), EXIT.CONNECT);
});

test('exit codes: protocol and refused', () => {
  for (const code of [
    'FCP_ERR_PROTO_MALFORMED',
    'FCP_ERR_PROTO_NOT_FCP',
    'FCP_ERR_NET_CLOSED',
    'FCP_ERR_NET_TIMEOUT',
    'FCP_ERR_FILE_RANGE',
  ] as const) {
    assert.is(exitCodeFor(new FcpError(code)), EXIT.PROTOCOL, code);
  }
  assert.is(exitCodeFor(errno('ECONNRESET')), EXIT.PROTOCOL);
  for (const code of [
    'FCP_ERR_SESSION_LIMIT',
    'FCP_ERR_SESSION_SHUTDOWN',
    'FCP_ERR_LIMIT_EXCEEDED',
  ] as const) {
    assert.is(exitCodeFor(new FcpError(code)), EXIT.REFUSED, code);
  }
});

test('exit codes: per-file failures, interrupts and internal errors', () => {
  assert.is(exitCodeFor(new FcpError('FCP_ERR_FILE_CHECKSUM')), EXIT.PARTIAL);
  const controller = new AbortController();
  controller.abort();
  assert.is(exitCodeFor(controller.signal.reason), EXIT.INTERRUPTED);
  assert.is(exitCodeFor(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' })), EXIT.INTERRUPTED);
  const abortedByError = Object.assign(new Error('aborted'), {
    code: 'ABORT_ERR',
    cause: new FcpError('FCP_ERR_NET_CLOSED'),
  });
  assert.is(exitCodeFor(abortedByError), EXIT.PROTOCOL);
  assert.is(exitCodeFor(new FcpError('FCP_ERR_INTERNAL')), 70);
  assert.is(exitCodeFor(new TypeError('x is undefined')), 70);
  assert.is(exitCodeFor('a string'), 70);
  assert.is(exitCodeFor(undefined), 70);
  assert.is(exitCodeFor(errno('EMFILE')), 70);
});

test('exit codes: every code is described, in both renderings', () => {
  const markdown = exitCodesMarkdown();
  const help = exitCodesHelp();
  for (const [name, code] of Object.entries(EXIT)) {
    const text = EXIT_DESCRIPTIONS[name as keyof typeof EXIT];
    assert.ok(text.length > 0, name);
    assert.not.ok(text.includes('|'), name);
    assert.ok(markdown.includes(`| ${code} | ${name} | ${text} |`), name);
    // Wrapped at 80 columns between words, continuation lines indented under the description.
    assert.ok(help.replace(/\n {7}/g, ' ').includes(`${String(code).padStart(3)}  ${text}`), name);
  }
  for (const line of help.split('\n')) assert.ok(line.length <= 80, line);
});

test.run();
