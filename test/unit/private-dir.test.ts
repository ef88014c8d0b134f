// The checks that keep other local users off the serve-once relay socket (src/security/private-dir.ts,
// src/daemon/serve-once-run-dir.ts, src/transport/stdio-relay.ts; spec/SECURITY.md §14.4, review F4).
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { privateRunDir } from '../../src/daemon/serve-once-run-dir.js';
import { FcpError } from '../../src/protocol/errors.js';
import { checkPrivateChain } from '../../src/security/private-dir.js';
import { checkRelaySocket } from '../../src/transport/stdio-relay.js';
import { accountWithHome } from '../helpers/accounts.js';
import { test } from '../helpers/test.js';

const made: string[] = [];
test.after.each(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory (0700, ours) with `levels` below it, each made with its mode. */
function tree(...levels: Array<[string, number]>): string[] {
  const top = mkdtempSync(path.join(tmpdir(), 'fcp-private-dir-'));
  made.push(top);
  const dirs = [top];
  for (const [name, mode] of levels) {
    const dir = path.join(dirs.at(-1)!, name);
    mkdirSync(dir);
    chmodSync(dir, mode);
    dirs.push(dir);
  }
  return dirs;
}

/** The message of the FCP_ERR_AUTH_INSECURE_FILE `fn` throws. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, FcpError);
    assert.is((err as FcpError).code, 'FCP_ERR_AUTH_INSECURE_FILE');
    return (err as FcpError).message;
  }
  throw new Error('not refused');
}

async function refusalOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return refusal(() => {
      throw err;
    });
  }
  throw new Error('not refused');
}

test('a private leaf under private or sticky parents passes, up to the anchor', () => {
  const [home, cache, fcp, run] = tree(['.cache', 0o755], ['fcp', 0o700], ['run', 0o700]);
  checkPrivateChain(run!, home, 'x');
  const [top, sticky, leaf] = tree(['shared', 0o1777], ['mine', 0o700]);
  checkPrivateChain(leaf!, top, 'x');
  assert.ok(cache !== undefined && fcp !== undefined && sticky !== undefined);
});

test('each level that lets another user rename the leaf aside is named, with why', () => {
  const [home, cache, , run] = tree(['.cache', 0o777], ['fcp', 0o700], ['run', 0o700]);
  assert.match(
    refusal(() => checkPrivateChain(run!, home, 'x')),
    `${cache} is writable by others (mode 0777)`,
  );
  const [home2, , fcp2, run2] = tree(['.cache', 0o700], ['fcp', 0o770], ['run', 0o700]);
  assert.match(
    refusal(() => checkPrivateChain(run2!, home2, 'x')),
    `${fcp2} is writable by others (mode 0770)`,
  );
  const [home3, leaf3] = tree(['run', 0o750]);
  assert.match(
    refusal(() => checkPrivateChain(leaf3!, home3, 'x')),
    `${leaf3} has mode 0750, not 0700`,
  );
  // The anchor itself is checked too.
  const [anchor, leaf4] = tree(['run', 0o700]);
  chmodSync(anchor!, 0o777);
  assert.match(
    refusal(() => checkPrivateChain(leaf4!, anchor, 'x')),
    `${anchor} is writable by others`,
  );
});

test('a level owned by another user, or a symlinked leaf, is refused', () => {
  const other = accountWithHome('fcpuser-relay');
  const [home, theirs, leaf] = tree(['theirs', 0o755], ['run', 0o700]);
  chownSync(theirs!, other.uid, other.gid);
  assert.match(
    refusal(() => checkPrivateChain(leaf!, home, 'x')),
    `owned by uid ${other.uid}, neither`,
  );
  const [top, real] = tree(['real', 0o700]);
  const link = path.join(top!, 'link');
  symlinkSync(real!, link);
  assert.match(
    refusal(() => checkPrivateChain(link, top, 'x')),
    `${link} is not a directory`,
  );
});

test('privateRunDir: XDG_RUNTIME_DIR only when ours and 0700, else ~/.cache/fcp/run; a bad ~/.cache refuses', async () => {
  const [home] = tree();
  const [, xdg] = tree(['xdg', 0o700]);
  assert.is(await privateRunDir({ HOME: home!, XDG_RUNTIME_DIR: xdg! }), path.join(xdg!, 'fcp'));
  chmodSync(xdg!, 0o777);
  const fallback = path.join(home!, '.cache', 'fcp', 'run');
  assert.is(await privateRunDir({ HOME: home!, XDG_RUNTIME_DIR: xdg! }), fallback);
  chmodSync(path.join(home!, '.cache'), 0o777);
  const said = await refusalOf(privateRunDir({ HOME: home! }));
  assert.match(
    said,
    `${path.join(home!, '.cache')} is writable by others (mode 0777) without the sticky bit`,
  );
});

test('fcpd --stdio: refuses a socket in a directory others may swap, or a socket of another user', async () => {
  const [home, run] = tree(['run', 0o700]);
  const socket = path.join(run!, 's.sock');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  try {
    checkRelaySocket(socket, { HOME: home! });
    chmodSync(home!, 0o777);
    assert.match(
      refusal(() => checkRelaySocket(socket, { HOME: home! })),
      `${home} is writable by others`,
    );
    chmodSync(home!, 0o700);
    const other = accountWithHome('fcpuser-relay');
    chownSync(socket, other.uid, other.gid);
    assert.match(
      refusal(() => checkRelaySocket(socket, { HOME: home! })),
      `${socket} is not a socket of uid`,
    );
  } finally {
    server.close();
  }
});

test.run();
