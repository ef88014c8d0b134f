// test/helpers/detached.ts killIfStill: the after-hooks of the daemon tests signal pids read minutes
// earlier; one whose process is gone may have been handed to another process, which must be left alone.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as assert from 'uvu/assert';
import { isAlive, killIfStill } from '../helpers/detached.js';
import { test } from '../helpers/test.js';

/** A child that waits up to 30 s, with `marker` in its command line. */
function waiter(marker: string): ReturnType<typeof spawn> {
  return spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)', marker], { stdio: 'ignore' });
}

test('a process whose command line does not name fcpd is not signalled; one that does is', async () => {
  const other = waiter('someone-else');
  const daemon = waiter('fcpd-stand-in');
  try {
    await Promise.all([once(other, 'spawn'), once(daemon, 'spawn')]);
    killIfStill(other.pid!, 'fcpd');
    killIfStill(daemon.pid!, 'fcpd');
    const [, signal] = (await once(daemon, 'exit')) as [number | null, string | null];
    assert.is(signal, 'SIGKILL');
    assert.ok(isAlive(other.pid!), 'the unrelated process was signalled');
  } finally {
    other.kill('SIGKILL');
    daemon.kill('SIGKILL');
  }
});

test.run();
