import { fileURLToPath } from 'node:url';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { processUmask } from '../../src/transfer/store/umask.js';
import { execFileSync } from '../helpers/sync.js';

const UMASK_JS = fileURLToPath(new URL('../../src/transfer/store/umask.js', import.meta.url));

/** processUmask() as a child started under `mask` by a shell sees it. */
function umaskOfChildUnder(mask: string): string {
  const script = `import(${JSON.stringify(UMASK_JS)}).then((m) => console.log(m.processUmask()?.toString(8)))`;
  return execFileSync('/bin/sh', ['-c', `umask ${mask} && exec "$0" -e "$1"`, process.execPath, script], {
    encoding: 'utf8',
  }).trim();
}

test('processUmask reads the mask as it is now, without changing it', () => {
  const before = process.umask(0o022);
  try {
    assert.is(processUmask(), 0o022);
    process.umask(0o077);
    assert.is(processUmask(), 0o077);
    assert.is(process.umask(0o022), 0o077, 'reading it left the mask as it was');
  } finally {
    process.umask(before);
  }
});

test('processUmask reports the mask the process was started with', () => {
  assert.is(umaskOfChildUnder('027'), '27');
  assert.is(umaskOfChildUnder('077'), '77');
  assert.is(umaskOfChildUnder('000'), '0');
});

test.run();
