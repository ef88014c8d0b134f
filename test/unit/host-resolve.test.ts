import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { expandTokens, resolveHost } from '../../src/client/host-resolve.js';
import { FcpError } from '../../src/protocol/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'fcp-host-resolve-'));
const home = join(tmp, 'home');
mkdirSync(join(home, '.ssh'), { recursive: true });

const CONFIG = `
Host big bigbox
  HostName big.example.org
  User alice
  Port 2222
  IdentityFile ~/.ssh/id_big
  IdentityFile %d/keys/%r@%h

Host tmpl
  hostname %h.lan
  user bob

Host nokey
  IdentityFile none

Host *
  User fallback
  IdentityFile ~/.ssh/id_all
`;
const configFile = join(tmp, 'config');
writeFileSync(configFile, CONFIG);

test.after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

test('alias with HostName, User and IdentityFile; ssh Port is ignored', () => {
  const r = resolveHost({ host: 'big', path: '' }, { configFile, defaultPort: 7523, homeDir: home });
  assert.equal(r, {
    host: 'big.example.org',
    user: 'alice',
    port: 7523,
    identityFiles: [
      join(home, '.ssh/id_big'),
      `${home}/keys/alice@big.example.org`,
      join(home, '.ssh/id_all'),
    ],
    alias: 'big',
  });
});

test('user and port in the spec win over the config', () => {
  const r = resolveHost(
    { host: 'bigbox', user: 'carol', port: 9000, path: 'x' },
    { configFile, defaultPort: 7523 },
  );
  assert.is(r.host, 'big.example.org');
  assert.is(r.user, 'carol');
  assert.is(r.port, 9000);
  assert.is(r.alias, 'bigbox');
});

test('Host * applies to unknown hosts; the host stays as written', () => {
  const r = resolveHost(
    { host: 'other.example.net', path: '' },
    { configFile, defaultPort: 1, homeDir: home },
  );
  assert.is(r.host, 'other.example.net');
  assert.is(r.user, 'fallback');
  assert.equal(r.identityFiles, [join(home, '.ssh/id_all')]);
});

test('directive names are case-insensitive and HostName expands %h', () => {
  const r = resolveHost({ host: 'tmpl', path: '' }, { configFile, defaultPort: 1, homeDir: home });
  assert.is(r.host, 'tmpl.lan');
  assert.is(r.user, 'bob');
});

test('IdentityFile none is dropped', () => {
  const r = resolveHost({ host: 'nokey', path: '' }, { configFile, defaultPort: 1, homeDir: home });
  assert.equal(r.identityFiles, [join(home, '.ssh/id_all')]);
});

test('default config is ~/.ssh/config under homeDir', () => {
  writeFileSync(join(home, '.ssh', 'config'), 'Host h\n  HostName h.example\n');
  const r = resolveHost({ host: 'h', path: '' }, { defaultPort: 7523, homeDir: home });
  assert.is(r.host, 'h.example');
  assert.is(r.user, undefined);
  assert.equal(r.identityFiles, []);
  rmSync(join(home, '.ssh', 'config'));
});

test('a missing default config is fine', () => {
  const r = resolveHost({ host: 'h', path: '' }, { defaultPort: 7523, homeDir: join(tmp, 'nobody') });
  assert.equal(r, { host: 'h', user: undefined, port: 7523, identityFiles: [], alias: 'h' });
});

test('a missing -F file is a usage error', () => {
  const missing = join(tmp, 'no-such-config');
  try {
    resolveHost({ host: 'h', path: '' }, { configFile: missing, defaultPort: 7523, homeDir: home });
    assert.unreachable('should throw');
  } catch (err) {
    assert.instance(err, FcpError);
    assert.is((err as FcpError).code, 'FCP_ERR_USAGE');
    assert.ok((err as FcpError).message.startsWith(`cannot read ssh config ${missing}: `));
  }
});

test('expandTokens: local tokens, %%, unknown tokens kept', () => {
  const t = { d: '/h', u: 'me', h: 'host', r: 'you' };
  assert.is(expandTokens('%d/%u/%h/%r/%%/%p', t), '/h/me/host/you/%/%p');
  assert.is(expandTokens('%u.%h', t, ['%', 'h']), '%u.host');
});

test('%u and %l are this machine', () => {
  writeFileSync(join(tmp, 'local'), 'Host l\n  IdentityFile /k/%u-%l\n');
  const r = resolveHost(
    { host: 'l', path: '' },
    { configFile: join(tmp, 'local'), defaultPort: 1, homeDir: home },
  );
  assert.equal(r.identityFiles, [`/k/${userInfo().username}-${hostname()}`]);
});

test.run();
