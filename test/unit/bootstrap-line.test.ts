import { randomBytes } from 'node:crypto';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import {
  BOOTSTRAP_PREFIX,
  type BootstrapInfo,
  formatBootstrapLine,
  parseBootstrapLine,
  validateBootstrapInfo,
} from '../../src/transport/bootstrap-line.js';

// The serve-once bootstrap line (src/transport/bootstrap-line.ts, spec/PROTOCOL.md §8.1): what the daemon
// prints is what the client reads back, and anything else that starts like it is refused by name.

const INFO: BootstrapInfo = {
  port: 41234,
  hostKey: `SHA256:${'A'.repeat(42)}Q`,
  secret: randomBytes(16),
  relay: '/run/user/1000/fcp/serve-once-1234.sock',
  version: '0.1.0',
};

function body(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    v: 1,
    port: INFO.port,
    hostKey: INFO.hostKey,
    secret: INFO.secret.toString('hex'),
    relay: INFO.relay,
    version: INFO.version,
    ...over,
  };
}

function line(over: Record<string, unknown> = {}): string {
  return BOOTSTRAP_PREFIX + JSON.stringify(body(over));
}

function refused(text: string, code: string, pattern: RegExp): void {
  try {
    parseBootstrapLine(text);
  } catch (err) {
    assert.is((err as { code?: string }).code, code, text);
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`accepted ${text}`);
}

test('a formatted line parses back to the same info, with or without its line ending', () => {
  const text = formatBootstrapLine(INFO);
  assert.ok(text.startsWith(BOOTSTRAP_PREFIX));
  assert.not.ok(text.includes('\n'));
  for (const variant of [text, `${text}\n`, `${text}\r\n`]) {
    const parsed = parseBootstrapLine(variant);
    assert.ok(parsed !== undefined);
    assert.is(parsed.port, INFO.port);
    assert.is(parsed.hostKey, INFO.hostKey);
    assert.ok(parsed.secret.equals(INFO.secret));
    assert.is(parsed.relay, INFO.relay);
    assert.is(parsed.version, INFO.version);
  }
});

test('any other line is not a bootstrap line: login banners, motd, a prefix without its space', () => {
  for (const other of ['', 'Welcome to host', 'FCPD-SERVE-ONCE', 'FCPD-SERVE-ONCE{}', ` ${line()}`]) {
    assert.is(parseBootstrapLine(other), undefined, other);
  }
});

test('an unknown version is refused by name', () => {
  refused(line({ v: 2 }), 'FCP_ERR_PROTO_VERSION', /version 2.*reads version 1/);
  refused(line({ v: '1' }), 'FCP_ERR_PROTO_VERSION', /version "1"/);
});

test('each broken field is refused as malformed, naming it', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ port: 0 }, /port/],
    [{ port: 65536 }, /port/],
    [{ port: 1.5 }, /port/],
    [{ port: '41234' }, /port/],
    [{ hostKey: 'SHA256:short' }, /hostKey/],
    [{ hostKey: `MD5:${'A'.repeat(43)}` }, /hostKey/],
    [{ secret: 'ab'.repeat(15) }, /secret/],
    [{ secret: 'AB'.repeat(16) }, /secret/],
    [{ secret: 'zz'.repeat(16) }, /secret/],
    [{ relay: 'relative/sock' }, /relay/],
    [{ relay: `/${'x'.repeat(200)}` }, /relay/],
    [{ relay: '/tmp/a\nb' }, /relay/],
    [{ relay: 7 }, /relay/],
    [{ version: '' }, /version/],
    [{ version: 'x y' }, /version/],
    [{ extra: 1 }, /unknown field "extra"/],
  ];
  for (const [over, pattern] of cases) refused(line(over), 'FCP_ERR_PROTO_MALFORMED', pattern);
  const missing = body();
  delete missing['secret'];
  refused(BOOTSTRAP_PREFIX + JSON.stringify(missing), 'FCP_ERR_PROTO_MALFORMED', /secret/);
});

test('not JSON, not an object, or absurdly long: malformed', () => {
  refused(`${BOOTSTRAP_PREFIX}{"v":1,`, 'FCP_ERR_PROTO_MALFORMED', /not JSON/);
  refused(`${BOOTSTRAP_PREFIX}[1]`, 'FCP_ERR_PROTO_MALFORMED', /not an object/);
  refused(`${BOOTSTRAP_PREFIX}null`, 'FCP_ERR_PROTO_MALFORMED', /not an object/);
  refused(line({ version: 'x'.repeat(5000) }), 'FCP_ERR_PROTO_MALFORMED', /longer than/);
});

test('the validator takes a decoded object, and the formatter refuses to print a bad line', () => {
  assert.is(validateBootstrapInfo(body()).port, INFO.port);
  assert.throws(() => formatBootstrapLine({ ...INFO, secret: Buffer.alloc(8) }), /secret/);
  assert.throws(() => formatBootstrapLine({ ...INFO, port: 0 }), /port/);
});

test.run();
