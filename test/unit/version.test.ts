// The version both commands report and the serve-once bootstrap line carries is package.json's: a release
// that bumps one without the other would install a remote fcpd under the wrong cache name.
import { readFileSync } from 'node:fs';
import * as assert from 'uvu/assert';
import { FCP_VERSION } from '../../src/protocol/index.js';
import { test } from '../helpers/test.js';

test('FCP_VERSION is package.json version', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  assert.is(FCP_VERSION, pkg.version);
});

test.run();
