// fcpd --serve-once writes its bootstrap line before it loads what serving needs (hasher, host TLS context,
// sessions): connections that arrive in between wait for it and succeed, direct and carried, and the
// daemon's ends still hold during that time. FCPD_SERVE_ONCE_DEFER_MS holds the deferred part back so that
// the client's connections surely come first.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { push } from '../../src/client/transfer-client.js';
import type { FcpError } from '../../src/protocol/errors.js';
import { runFcpd } from '../helpers/cli.js';
import { HOST } from '../helpers/daemon.js';
import { tempDirs } from '../helpers/expect.js';
import {
  carriedOptions,
  directOptions,
  processesLeftMentioning,
  type ServeOnceChild,
  serveOnceRegistry,
} from '../helpers/serve-once.js';
import { buildTree, compareTrees, mixedTree } from '../helpers/tree.js';

const MiB = 1 << 20;
/** Long enough that the client's connections arrive before the deferred part runs. */
const DEFER = { FCPD_SERVE_ONCE_DEFER_MS: '1500' };
const dirs = tempDirs('fcp-e2e-serve-once-early-');
const daemons = serveOnceRegistry();
test.after.each(() => daemons.cleanupAll());
test.after(() => dirs.removeAll());

async function sourceTree(name: string): Promise<string> {
  const src = join(dirs.make(), name);
  await buildTree(src, mixedTree({ seed: 12, smallFiles: 20, bigFileSize: 3 * MiB + 5 }));
  return src;
}

async function endedClean(d: ServeOnceChild): Promise<void> {
  const { code, signal } = await d.exited();
  assert.is(code, 0, `exit ${code} ${signal}: ${d.stderr()}`);
  assert.is(d.stderr(), '');
  assert.not.ok(existsSync(d.info.relay), 'relay socket removed');
  assert.equal(await processesLeftMentioning(d.info.relay), []);
}

test('direct: connections that come before the deferred start wait for it, and the push succeeds', async () => {
  const root = dirs.make();
  const src = await sourceTree('direct');
  const d = await daemons.start(root, { env: DEFER });
  const warnings: FcpError[] = [];
  const notices: string[] = [];
  const opts = await directOptions(d, 4, (e) => warnings.push(e));
  await push({ ...opts, sources: [src], dest: 'got', onNotice: (text) => notices.push(text) });
  assert.equal(await compareTrees(src, join(root, 'got', 'direct')), []);
  assert.equal(warnings, []);
  // Not let in by the client's retries of a dropped connection (busy-retry.ts): the first try waited.
  assert.equal(
    notices.filter((n) => n.includes('trying again')),
    [],
  );
  await endedClean(d);
});

test('carried: relayed connections that come before the deferred start wait for it too', async () => {
  const root = dirs.make();
  const src = await sourceTree('carried');
  const d = await daemons.start(root, { env: DEFER });
  const warnings: FcpError[] = [];
  const { opts, dialer } = await carriedOptions(d, 4, (e) => warnings.push(e));
  try {
    await push({ ...opts, sources: [src], dest: 'got' });
  } finally {
    dialer.close();
  }
  assert.equal(await compareTrees(src, join(root, 'got', 'carried')), []);
  assert.equal(warnings, []);
  await endedClean(d);
});

test('stdin closes before the deferred start: exits 0 and leaves nothing behind', async () => {
  const d = await daemons.start(dirs.make(), { env: { FCPD_SERVE_ONCE_DEFER_MS: '60000' } });
  d.child.stdin!.end();
  await endedClean(d);
});

test('a --root that cannot be served is refused before any bootstrap line, in one line', async () => {
  const missing = join(dirs.make(), 'missing');
  const r = await runFcpd(['--serve-once', '--bind', HOST, '--root', missing], { env: DEFER });
  assert.is.not(r.code, 0, r.stderr);
  assert.is(r.stdout, '');
  assert.match(r.stderr, new RegExp(`^fcpd: [^\\n]*${missing}[^\\n]*\\n$`));
});

test.run();
