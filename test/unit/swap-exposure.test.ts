import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { othersCanReplace, pathExposed } from '../../src/transfer/store/swap-exposure.js';
import { accountWithHome } from '../helpers/accounts.js';

const me = process.geteuid!();
const other = me === 4242 ? 4243 : 4242;
const DIR = 0o040000;
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'fcp-exposure-'));
test.after(() => fs.rmSync(base, { recursive: true, force: true }));

test('an entry of a directory that is ours or root and not writable by others cannot be replaced', () => {
  assert.not.ok(othersCanReplace({ uid: me, mode: DIR | 0o755 }, { uid: other, mode: DIR | 0o777 }));
  assert.not.ok(othersCanReplace({ uid: 0, mode: DIR | 0o755 }, { uid: me, mode: DIR | 0o700 }));
});

test("another user's directory, or one writable by group or others, lets its entries be replaced", () => {
  assert.ok(othersCanReplace({ uid: other, mode: DIR | 0o755 }, { uid: me, mode: DIR | 0o700 }));
  assert.ok(othersCanReplace({ uid: me, mode: DIR | 0o775 }, { uid: me, mode: DIR | 0o700 }));
  assert.ok(othersCanReplace({ uid: me, mode: DIR | 0o757 }, { uid: me, mode: DIR | 0o700 }));
});

test('in a sticky directory only the entries of other users can be replaced', () => {
  const tmp = { uid: 0, mode: DIR | 0o1777 };
  assert.not.ok(othersCanReplace(tmp, { uid: me, mode: DIR | 0o700 }));
  assert.ok(othersCanReplace(tmp, { uid: other, mode: DIR | 0o700 }));
});

test('the effective uid of the moment is trusted: fcpd --user becomes its account after this module loads', () => {
  if (me !== 0) return;
  const account = accountWithHome('fcpuser-swap');
  const theirs = { uid: account.uid, mode: DIR | 0o755 };
  assert.ok(othersCanReplace(theirs, { uid: 0, mode: DIR | 0o700 }), "as root, another account's directory");
  process.seteuid!(account.uid);
  try {
    assert.not.ok(othersCanReplace(theirs, { uid: 0, mode: DIR | 0o700 }), 'as that account, its own');
  } finally {
    process.seteuid!(0);
  }
});

test('pathExposed: a private path is not, one below a world-writable level is, through a link too', () => {
  const priv = path.join(base, 'private', 'tree');
  fs.mkdirSync(priv, { recursive: true, mode: 0o755 });
  fs.chmodSync(base, 0o755);
  // The test's own temp directory may lie below a level others can write (a shared TMPDIR): judge only
  // what this test makes.
  if (pathExposed(base)) return;
  assert.not.ok(pathExposed(priv));
  const shared = path.join(base, 'shared');
  fs.mkdirSync(path.join(shared, 'tree'), { recursive: true });
  fs.chmodSync(shared, 0o777);
  assert.ok(pathExposed(path.join(shared, 'tree')));
  fs.symlinkSync(path.join(shared, 'tree'), path.join(base, 'link'));
  assert.ok(pathExposed(path.join(base, 'link')), 'the target of a link is judged too');
  assert.ok(pathExposed(path.join(base, 'missing')), 'a level that cannot be read counts as exposed');
});

test.run();
