// A user's ssh multiplexing (ControlMaster/ControlPersist in their ssh config): the bootstrap ssh may ride
// the user's master (one login for many runs), while carried data connections never do (each needs its own
// TCP connection and ssh window, src/transport/ssh-command.ts). A persisting master outlives the run that
// started it, holding whatever descriptors it inherited: fcp must still finish and exit at once.
import { execFileSync } from '../helpers/sync.js';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { describeRun, runFcp } from '../helpers/cli.js';
import { eventsNamed, parseEvents, readEventSchema } from '../helpers/json-events.js';
import { sha256File, writeRandomFile } from '../helpers/reliability.js';
import { cleanUp, sshd, tempDir } from '../helpers/ssh-fcp.js';
import type { PrivateSshd } from '../helpers/sshd.js';
import { test } from '../helpers/test.js';

const masters: Array<() => void> = [];

test.after.each(async () => {
  for (const stop of masters.splice(0)) stop();
  await cleanUp();
});

/** The logins sshd accepted so far (its INFO log has one line per login). */
function logins(s: PrivateSshd): number {
  return s.log().match(/Accepted publickey/g)?.length ?? 0;
}

/** An ssh config for the alias with a persisting master, and a way to end that master. */
function multiplexed(s: PrivateSshd): string {
  const config = s.configWith({
    ControlMaster: 'auto',
    ControlPath: path.join(s.dir, 'cm-%C'),
    ControlPersist: '120',
  });
  masters.push(() => {
    try {
      execFileSync('ssh', ['-F', config, '-O', 'exit', s.alias], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // no master running: nothing to end
    }
  });
  return config;
}

async function push(s: PrivateSshd, ssh: string, transport: string) {
  const file = path.join(tempDir(), 'one.bin');
  await writeRandomFile(file, 3 * 1024 * 1024 + 11);
  const remote = tempDir('fcp-ssh-remote-');
  const args = [
    '-v',
    '--json',
    `--ssh=${ssh}`,
    `--ssh-transport=${transport}`,
    '-n',
    '3',
    'push',
    file,
    `${s.alias}:${remote}/`,
  ];
  const r = await runFcp(args, { env: { FCP_CONFIG_DIR: tempDir('fcp-config-') }, timeoutMs: 40_000 });
  assert.is(r.code, 0, describeRun(r));
  assert.is(await sha256File(path.join(remote, 'one.bin')), await sha256File(file));
  return r;
}

test('direct: the bootstrap rides the master of an earlier run; fcp exits though the master lives on', async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  const ssh = `ssh -F ${multiplexed(s)}`;
  const before = logins(s);
  await push(s, ssh, 'direct');
  await push(s, ssh, 'direct');
  assert.is(logins(s) - before, 1, s.log());
});

test('carried: every data connection logs in on its own, beside the master', async () => {
  const s = await sshd({ path: { fcpd: true, node: true } });
  const ssh = `ssh -F ${multiplexed(s)}`;
  const before = logins(s);
  const r = await push(s, ssh, 'carried');
  // The bootstrap (the master) and one login per carried connection. All 3 of -n 3 start logging in at
  // once (ssh-prelogin.ts), but the 4 pieces may all have crossed on the first before the other two are
  // logged in: fcp then ends those (a spare is never waited for) and they carried nothing. So at least one
  // login per connection the session had (its summary's count) and at most one per connection asked for:
  // a carried connection riding the master would leave its connection without a login of its own.
  const connections = eventsNamed(parseEvents(readEventSchema(), r.stdout), 'summary')[0]?.['connections'];
  assert.type(connections, 'number', describeRun(r));
  const carriedLogins = logins(s) - before - 1;
  assert.ok(
    carriedLogins >= (connections as number) && carriedLogins <= 3,
    `${carriedLogins} carried logins for ${String(connections)} connections\n${describeRun(r)}\n${s.log()}`,
  );
});

test.run();
