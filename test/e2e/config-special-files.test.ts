// Session 12's review: a config path that is not a small regular file (a FIFO nobody writes, /dev/zero behind
// a link, a 4 GiB file, a directory) hung fcp and fcpd or ate memory. Each is now one line naming the file and
// exit 1 (README's code for a bad config file), for fcp's default file (read by the launcher too, with --ssh)
// and for `fcpd --config FILE`; a link to a regular file (a dotfiles repository) is still followed.
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { describeRun, type RunResult, runFcp, runFcpd } from '../helpers/cli.js';
import { test } from '../helpers/test.js';
import { execFileSync } from '../helpers/sync.js';
import { removeTree } from '../helpers/tree.js';

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-config-special-'));
chmodSync(tmp, 0o755);
const src = join(tmp, 'a.txt');
writeFileSync(src, 'a\n');
let dirs = 0;
/** A run that hangs is what these tests catch: well under the test's own timeout. */
const RUN = { timeoutMs: 15_000 };

/** Each kind of path, made by `make(path)`, and how the one line must end. */
const KINDS: Array<[string, (path: string) => void, RegExp]> = [
  [
    'a FIFO no one writes',
    (p) => execFileSync('mkfifo', ['-m', '600', p]),
    /: not a regular file \(a FIFO\)$/,
  ],
  [
    'a file over 1 MiB',
    (p) => {
      writeFileSync(p, '# a comment\n', { mode: 0o600 });
      truncateSync(p, 1024 * 1024 + 1);
    },
    /: 1048577 bytes or more, over the 1 MiB a config file may hold$/,
  ],
  ['a directory', (p) => mkdirSync(p, { mode: 0o700 }), /: not a regular file \(a directory\)$/],
  ['a link to /dev/zero', (p) => symlinkSync('/dev/zero', p), /: not a regular file \(a character device\)$/],
];

function configDirWith(make: (path: string) => void): string {
  const dir = join(tmp, `config-${++dirs}`);
  mkdirSync(dir);
  make(join(dir, 'config'));
  return dir;
}

function oneLine(r: RunResult, prefix: string, pattern: RegExp): void {
  assert.is(r.timedOut, false, describeRun(r));
  assert.is(r.code, 1, describeRun(r));
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.is(lines.length, 1, describeRun(r));
  assert.ok(lines[0]!.startsWith(prefix), describeRun(r));
  assert.match(lines[0]!, pattern, describeRun(r));
}

test.after(async () => {
  await removeTree(tmp);
});

for (const [what, make, pattern] of KINDS) {
  test(`fcp's config file is ${what}: one line naming it, exit 1, no hang`, async () => {
    const dir = configDirWith(make);
    const env = { env: { FCP_CONFIG_DIR: dir }, ...RUN };
    const file = join(dir, 'config');
    oneLine(await runFcp(['--print-config', 'box'], env), `fcp: ${file}: `, pattern);
    // --ssh with one remote operand: the launcher reads the file before fcp does (fcp-launch.ts).
    oneLine(await runFcp(['push', '--ssh=/bin/false', src, 'box:/x'], env), `fcp: ${file}: `, pattern);
  });

  test(`fcpd --config naming ${what}: one line naming it, exit 1, no hang`, async () => {
    const file = join(tmp, `fcpd-${++dirs}.conf`);
    make(file);
    oneLine(await runFcpd(['--print-config', '--config', file], RUN), `fcpd: ${file}: `, pattern);
  });
}

test('a config file that is a link to a regular file (a dotfiles repository) is read', async () => {
  const real = join(tmp, 'dotfiles-config');
  writeFileSync(real, 'connections = 5\n', { mode: 0o600 });
  const dir = configDirWith((p) => symlinkSync(real, p));
  const r = await runFcp(['--print-config', 'box'], { env: { FCP_CONFIG_DIR: dir }, ...RUN });
  assert.is(r.code, 0, describeRun(r));
  assert.match(r.stdout, /^connections = 5 +# .+\/config:1$/m, describeRun(r));
});

test.run();
