// bin/fcpd.js writes fcpd --serve-once's bootstrap line before the rest of fcpd is compiled (cli/fcpd-launch.ts,
// cli/embedded-body.ts): with that rest replaced by text that does not even parse, the line still comes, and
// the failure after it leaves no relay socket behind.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { embedBody, launcherOf } from '../../src/cli/embedded-body.js';
import { parseBootstrapLine } from '../../src/transport/bootstrap-line.js';
import { describeRun, FCPD_BIN, runNode } from '../helpers/cli.js';
import { HOST } from '../helpers/daemon.js';
import { tempDirs } from '../helpers/expect.js';
import { test } from '../helpers/test.js';

const dirs = tempDirs('fcp-e2e-serve-once-launcher-');
test.after(() => dirs.removeAll());

test('the bootstrap line leaves before the rest of fcpd is compiled', async () => {
  const launcher = launcherOf(readFileSync(FCPD_BIN, 'utf8'));
  assert.ok(launcher, 'bin/fcpd.js carries the rest of fcpd after its launcher');
  const dir = dirs.make();
  // .cjs: CommonJS wherever it lies, as bin/fcpd.js is beside dist/bin/package.json's "type": "commonjs".
  const broken = join(dir, 'fcpd.cjs');
  writeFileSync(broken, embedBody(launcher, 'this is not JavaScript (\n'));
  const r = await runNode(broken, ['--serve-once', '--bind', HOST, '--root', dir]);
  const info = parseBootstrapLine(r.stdout.split('\n')[0] ?? '');
  assert.ok(info, `a bootstrap line first: ${describeRun(r)}`);
  assert.match(r.stderr, /SyntaxError/);
  assert.is.not(r.code, 0);
  assert.not.ok(existsSync(info.relay), 'relay socket removed');
});

test('the same file runs fcpd whole: --version and the line of a session that ssh ends at once', async () => {
  const version = await runNode(FCPD_BIN, ['--version']);
  assert.is(version.code, 0, describeRun(version));
  const dir = dirs.make();
  // stdin is /dev/null: ssh gone before a login, the daemon ends cleanly right after its line.
  const r = await runNode(FCPD_BIN, ['--serve-once', '--bind', HOST, '--root', dir]);
  assert.is(r.code, 0, describeRun(r));
  assert.ok(parseBootstrapLine(r.stdout.split('\n')[0] ?? ''), describeRun(r));
  assert.is(r.stderr, '');
});

test.run();
