// --no-encryption over ssh is never silently ignored: the data keeps TLS on direct connections (to the
// fcpd ssh started, whose key came through ssh) and ssh's own encryption on carried ones, and fcp says so in
// one line, once per run; the transfer itself goes on and arrives intact. Real fcp, a real private sshd.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { describeRun, runFcp } from '../helpers/cli.js';
import { MiB, writeRandomFile } from '../helpers/reliability.js';
import { cleanUp, sshd, tempDir } from '../helpers/ssh-fcp.js';
import { test } from '../helpers/test.js';

test.after.each(cleanUp);

const SAID =
  "fcp: --no-encryption does not apply over ssh: direct connections keep TLS to the fcpd ssh started, carried ones ride inside ssh's encryption\n";

for (const way of ['direct', 'carried'] as const) {
  test(`--no-encryption with --ssh-transport=${way}: one line says what is kept, and the file arrives`, async () => {
    const s = await sshd({ path: { fcpd: true, node: true } });
    const src = path.join(tempDir(), 'f.bin');
    await writeRandomFile(src, 3 * MiB + 7);
    const remote = tempDir('fcp-ssh-remote-');
    const args = [`--ssh=${s.sshCommand}`, `--ssh-transport=${way}`, '--no-encryption', '-n', '3'];
    const r = await runFcp([...args, 'push', src, `${s.alias}:${remote}/`]);
    assert.is(r.code, 0, describeRun(r));
    assert.is(r.stderr.split(SAID).length - 1, 1, describeRun(r));
    assert.equal(readFileSync(path.join(remote, 'f.bin')), readFileSync(src));
  });
}

test.run();
