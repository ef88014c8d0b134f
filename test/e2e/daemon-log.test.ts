// Issue 15 item 11: a normal session is one line in the daemon log (README). A no-change push used to log
// 1-7 FCP_ERR_SESSION_UNKNOWN lines and a no-change pull `TLS handshake failed: read ECONNRESET`: the client
// opened its extra connections for data it then skipped, and they arrived after the session had ended or
// were cut off mid-handshake when fcp exited. A real fcpd child, a tree of more than one piece of data
// copied with -n 8, then copied again with nothing to do, both ways: one line per session, nothing else.
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { describeRun, runFcp } from '../helpers/cli.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { sessionEnds, waitUntil, writeRandomFile } from '../helpers/reliability.js';
import { compareTrees, removeTree } from '../helpers/tree.js';

const WAIT_MS = 10_000;
const RUN_TIMEOUT_MS = 60_000;
/** 24 files of 100 KiB: 2.3 MiB, more than one piece, so a copy opens its extra connections. */
const FILES = 24;

/** Sockets the process holds (Linux /proc): the listener alone once every connection has closed. */
function socketCount(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // Closed between the listing and the readlink.
    }
  }
  return n;
}

test('push and pull, copying and with nothing to do, -n 8: one daemon log line per session and no other', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'fcp-e2e-log-'));
  const served = join(tmp, 'served');
  const src = join(tmp, 'src');
  const back = join(tmp, 'back');
  mkdirSync(served);
  mkdirSync(src);
  for (let i = 0; i < FILES; i++) await writeRandomFile(join(src, `f${i}.bin`), 100 * 1024);
  const d = await spawnDaemon({ root: served });
  try {
    const pid = d.child.pid!;
    const idleSockets = socketCount(pid);
    const mark = d.stderr().length;
    const runs = [
      ['push', '-n', '8', src, d.remote('t/')],
      ['push', '-n', '8', src, d.remote('t/')],
      ['pull', '-n', '8', d.remote('t/src'), `${back}/`],
      ['pull', '-n', '8', d.remote('t/src'), `${back}/`],
    ];
    for (const [i, args] of runs.entries()) {
      const r = await runFcp(args, { timeoutMs: RUN_TIMEOUT_MS });
      assert.is(r.code, 0, describeRun(r));
      // The daemon writes its line once it has read the client's last message, maybe just after fcp exits;
      // then every connection of the run, extra ones included, must have closed on the daemon's side too.
      const log = () => d.stderr().slice(mark);
      await waitUntil(() => sessionEnds(log()).length === i + 1, `the line of run ${i + 1}`, WAIT_MS);
      await waitUntil(() => socketCount(pid) === idleSockets, `run ${i + 1}'s connections to close`, WAIT_MS);
    }
    assert.equal(await compareTrees(src, join(back, 'src')), []);
    const lines = d.stderr().slice(mark).trimEnd().split('\n');
    assert.is(lines.length, runs.length, lines.join('\n'));
    const ends = sessionEnds(d.stderr().slice(mark));
    assert.equal(
      ends.map((e) => [e.kind, e.ok, e.sent, e.skipped]),
      [
        ['push', true, FILES, 0],
        ['push', true, 0, FILES],
        ['pull', true, FILES, 0],
        ['pull', true, 0, FILES],
      ],
    );
    for (const line of lines)
      assert.match(line, /authenticated by local token, (push|pull): session done \(/);
  } finally {
    await d.stop();
    await removeTree(tmp);
  }
});

test.run();
