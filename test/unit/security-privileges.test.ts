import { fileURLToPath } from 'node:url';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { dropPrivileges, isRoot, lookupAccount, parsePasswdLine } from '../../src/security/privileges.js';
import { execFileSync } from '../helpers/sync.js';

// Dropping root (src/security/privileges.ts). The drop itself runs in a child process: it cannot be undone.

const MODULE = fileURLToPath(new URL('../../src/security/privileges.js', import.meta.url));

test('privileges: passwd lines', () => {
  assert.equal(parsePasswdLine('nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n'), {
    name: 'nobody',
    uid: 65534,
    gid: 65534,
    home: '/nonexistent',
    shell: '/usr/sbin/nologin',
  });
  assert.is(parsePasswdLine('broken:x:1:2'), undefined);
  assert.is(parsePasswdLine('u:x:-1:2:g:/h:/s'), undefined);
});

test('privileges: accounts are looked up through NSS; unknown and odd names are refused', () => {
  const root = lookupAccount('root');
  assert.is(root.uid, 0);
  assert.throws(() => lookupAccount('no-such-user-fcp'), /no such user/);
  assert.throws(() => lookupAccount('../etc'), /invalid user name/);
  assert.throws(() => lookupAccount('a:b'), /invalid user name/);
});

test('privileges: dropping to root is refused', () => {
  assert.throws(() => dropPrivileges(lookupAccount('root')), /is root/);
});

test('privileges: root becomes nobody for good (child process)', () => {
  if (!isRoot()) return; // only root can drop
  const script = `
    const { dropPrivileges, lookupAccount } = await import(${JSON.stringify(MODULE)});
    dropPrivileges(lookupAccount('nobody'));
    let regained = true;
    try { process.setuid(0); } catch { regained = false; }
    console.log(JSON.stringify({ uid: process.getuid(), euid: process.geteuid(), gid: process.getgid(),
      egid: process.getegid(), groups: process.getgroups(), home: process.env.HOME, regained }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  const ids = JSON.parse(out);
  const nobody = lookupAccount('nobody');
  assert.equal(ids, {
    uid: nobody.uid,
    euid: nobody.uid,
    gid: nobody.gid,
    egid: nobody.gid,
    groups: ids.groups,
    home: nobody.home,
    regained: false,
  });
  assert.not.ok(ids.groups.includes(0), 'no longer in group root');
});

test('privileges: a process that is not root cannot pretend to drop', () => {
  if (!isRoot()) return;
  const script = `
    const { dropPrivileges, lookupAccount } = await import(${JSON.stringify(MODULE)});
    process.setgid(65534); process.setuid(65534);
    try { dropPrivileges(lookupAccount('nobody')); console.log('dropped'); } catch (e) { console.log(e.code); }`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.is(out.trim(), 'FCP_ERR_AUTH_PRIVILEGES');
});

test('privileges: withAccountIds opens files as the account, then root is back (child process)', () => {
  if (!isRoot()) return;
  // A directory only root may enter stands for a path the account planted a symlink towards.
  const script = `
    const { mkdtempSync, chmodSync, openSync, closeSync, statSync, rmSync } = await import('node:fs');
    const { withAccountIds, lookupAccount } = await import(${JSON.stringify(MODULE)});
    const nobody = lookupAccount('nobody');
    const open = mkdtempSync('/tmp/fcp-ids-'); chmodSync(open, 0o777);
    const closed = mkdtempSync('/tmp/fcp-ids-'); chmodSync(closed, 0o700);
    const made = withAccountIds(nobody, () => {
      const fd = openSync(open + '/made', 'w'); closeSync(fd);
      let refused = '';
      try { openSync(closed + '/nope', 'w'); } catch (e) { refused = e.code; }
      return { euid: process.geteuid(), egid: process.getegid(), refused };
    });
    const owner = statSync(open + '/made').uid;
    rmSync(open, { recursive: true }); rmSync(closed, { recursive: true });
    console.log(JSON.stringify({ ...made, owner, after: [process.getuid(), process.geteuid(), process.getegid()],
      groups: process.getgroups().includes(0) }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  const nobody = lookupAccount('nobody');
  assert.equal(JSON.parse(out), {
    euid: nobody.uid,
    egid: nobody.gid,
    refused: 'EACCES',
    owner: nobody.uid,
    after: [0, 0, 0],
    groups: true,
  });
});

test.run();
