// One-piece files (the receiver's synchronous path: open, write, futimes, close, rename per file) into a
// subdirectory the daemon's account may not write in: each of them fails on its own, named, and every
// other file arrives. Daemon and client run as the unprivileged test account, as one same-host account.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { describeRun, runFcp, unprivileged } from '../helpers/cli.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { sha256File, writeRandomFile } from '../helpers/reliability.js';
import { execFileSync } from '../helpers/sync.js';

const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-small-denied-'));
// The unprivileged user must be able to reach the trees it reads.
chmodSync(tmp, 0o755);

test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('a subdirectory that refuses writes fails only its small files, each named; the rest arrive', async () => {
  const user = unprivileged();
  const src = join(tmp, 'src');
  const root = join(tmp, 'root');
  const dst = join(root, 'dst');
  const names = (dir: string) => [0, 1, 2, 3].map((i) => `${dir}/f${i}.bin`);
  for (const rel of [...names('open'), ...names('locked')]) {
    mkdirSync(join(src, rel, '..'), { recursive: true });
    await writeRandomFile(join(src, rel), 3000 + rel.length * 100);
  }
  mkdirSync(join(dst, 'locked'), { recursive: true });
  if (user.uid !== undefined) execFileSync('chown', ['-R', `${user.uid}:${user.gid ?? user.uid}`, root]);
  chmodSync(join(src), 0o755);
  // The account owns it, and may not create anything in it.
  chmodSync(join(dst, 'locked'), 0o555);
  const d = await spawnDaemon({ root, ...user });
  let r: Awaited<ReturnType<typeof runFcp>>;
  try {
    r = await runFcp(['push', `${src}/`, d.remote('dst')], user);
  } finally {
    await d.stop();
  }
  assert.is(r.code, 3, `some files failed, the session did not: ${describeRun(r)}`);
  for (const rel of names('locked')) {
    assert.match(r.stderr, new RegExp(`${rel.replace('.', '\\.')}: permission denied`), describeRun(r));
  }
  assert.not.match(r.stderr, /^\s+at /m, describeRun(r));
  for (const rel of names('open')) {
    assert.is(await sha256File(join(dst, rel)), await sha256File(join(src, rel)), rel);
  }
  assert.equal(readdirSync(join(dst, 'locked')), []);
});

test.run();
