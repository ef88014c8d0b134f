// fcp status of a transfer that goes over ssh says so: `transport` in the registry entry (and in fcp status
// --json), the VIA column of the table, and --json's start event; not the standing daemon's host:7523,
// which nothing listened on. Direct and carried alike, with a real private sshd; the transfer is slowed by
// --bwlimit (not sleeps) so that it is still running when it is looked at.
import path from 'node:path';
import * as assert from 'uvu/assert';
import { EXIT } from '../../src/cli/exit-codes.js';
import type { TransferStatus } from '../../src/client/transfer-registry.js';
import { describeRun, runFcp } from '../helpers/cli.js';
import { eventsNamed, parseEvents, readEventSchema } from '../helpers/json-events.js';
import { MiB, writeRandomFile } from '../helpers/reliability.js';
import { cleanUp, sshd, tempDir } from '../helpers/ssh-fcp.js';
import { test } from '../helpers/test.js';
import { movingTo, privateState, transferWhere } from '../helpers/transfers.js';

test.after.each(cleanUp);

for (const way of ['direct', 'carried'] as const) {
  test(`fcp status of a push over ssh (${way}) shows "ssh, ${way}", in the table, --json and the start event`, async () => {
    const s = await sshd({ path: { fcpd: true, node: true } });
    const src = path.join(tempDir(), 'big.bin');
    // 8 s at --bwlimit 2M: in a full run on a loaded 2-core box, 4 MiB had ended before the two `fcp status`
    // calls after the first progress (2 of 2 runs: the second saw an empty list).
    await writeRandomFile(src, 16 * MiB);
    const remote = `${tempDir('fcp-ssh-remote-')}/`;
    const state = privateState();
    const run = runFcp(
      [
        '--json',
        `--ssh=${s.sshCommand}`,
        `--ssh-transport=${way}`,
        '--bwlimit',
        '2M',
        'push',
        src,
        `${s.alias}:${remote}`,
      ],
      { env: state.env },
    );
    const t = await transferWhere(state.dir, 'the push to show progress', movingTo(remote));
    assert.is(t.transport, `ssh-${way}`);

    const json = await runFcp(['status', '--json'], { env: state.env });
    assert.is((JSON.parse(json.stdout) as TransferStatus[])[0]?.transport, `ssh-${way}`, describeRun(json));
    const table = await runFcp(['status'], { env: state.env });
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, / +VIA +ENDPOINTS +FILE$/, describeRun(table));
    // The remote as typed (no port: ssh chose it), and how the data goes.
    const endpoint = (host: string) => `${src} -> ${host}:${remote}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(lines[1]!, new RegExp(` ssh, ${way} +${endpoint(t.host)} +big\\.bin$`), describeRun(table));

    const done = await run;
    assert.is(done.code, EXIT.OK, describeRun(done));
    const start = eventsNamed(parseEvents(readEventSchema(), done.stdout), 'start')[0];
    assert.is(start?.['transport'], `ssh-${way}`, describeRun(done));
  });
}

test.run();
