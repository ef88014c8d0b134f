import * as assert from 'uvu/assert';
import { FcpError } from '../../src/protocol/index.js';
import { SingleFileList } from '../../src/transfer/single-file-list.js';
import { test } from '../helpers/test.js';

function refusal(fn: () => void): FcpError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, FcpError);
    return err as FcpError;
  }
  throw new Error('expected a refusal');
}

test('one top-level file or link is admitted', () => {
  new SingleFileList().admit('file', 'report.pdf');
  new SingleFileList().admit('file', '.hidden');
});

test('a directory, "." or a nested path is refused, fatally, as the peer breaking the protocol', () => {
  for (const [kind, path] of [
    ['dir', 'x'],
    ['dir', '.'],
    ['file', '.'],
    ['file', '.ssh/authorized_keys'],
    ['file', 'a/b'],
  ] as const) {
    const err = refusal(() => new SingleFileList().admit(kind, path));
    assert.is(err.code, 'FCP_ERR_PROTO_UNEXPECTED');
    assert.ok(err.fatal, path);
  }
});

test('a second entry is refused, whatever it is; the same file announced again is not', () => {
  const list = new SingleFileList();
  list.admit('file', 'x');
  list.admit('file', 'x'); // a retry after FCP_ERR_FILE_CHECKSUM or FCP_ERR_FILE_CHANGED (PROTOCOL.md §7.4)
  assert.match(refusal(() => list.admit('file', 'y')).message, /second entry/);
  assert.match(refusal(() => list.admit('file', '.x')).message, /second entry/);
});

test.run();
