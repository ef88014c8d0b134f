// fcpd's parse of what fcp runs over ssh without yargs (src/cli/fcpd-quick-args.ts): the same arguments as the
// full yargs parse for every form it reads, and no answer (the full parse decides) for anything else.
import path from 'node:path';
import * as assert from 'uvu/assert';
import yargs from 'yargs';
import { quickOverSshArgs } from '../../src/cli/fcpd-quick-args.js';
import { serveOptions } from '../../src/cli/fcpd-options.js';
import type { OverSshArgs } from '../../src/cli/fcpd-serve-once.js';
import { test } from '../helpers/test.js';

const FIELDS = [
  'serve-once',
  'stdio',
  'port',
  'bind',
  'root',
  'max-connections',
  'log-file',
  'verbose',
  'encryption',
] as const;

/** What fcpd.ts hands commandOverSsh after the yargs parse (its handler resolves --root). */
function viaYargs(words: string[]): Partial<OverSshArgs> {
  const argv = serveOptions(yargs(words)).strict().parseSync() as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of FIELDS) out[key] = argv[key];
  if (typeof out['root'] === 'string') out['root'] = path.resolve(out['root']);
  return out as Partial<OverSshArgs>;
}

test('the forms fcp sends read as yargs reads them', () => {
  const forms: string[][] = [
    ['--serve-once'],
    ['--stdio', '/run/user/0/fcp/serve-once-1-ab.sock'],
    ['--bind', '127.0.0.1', '--port', '36003', '--root', 'srv/data', '--serve-once'],
    ['--serve-once', '--max-connections', '8', '--log-file', '/tmp/l', '-v'],
    ['--serve-once', '--verbose', '--port', '0'],
  ];
  for (const words of forms) {
    const quick = quickOverSshArgs(words);
    assert.ok(quick !== undefined, words.join(' '));
    const picked: Record<string, unknown> = {};
    for (const key of FIELDS) picked[key] = quick[key];
    assert.equal(picked, viaYargs(words), words.join(' '));
  }
});

test('anything else is left to the full parse', () => {
  const others: string[][] = [
    [],
    ['serve'],
    ['--serve-once', '--stdio', '/s'], // both: yargs' path refuses it by name
    ['--serve-once', '--serve-once'],
    ['--serve-once', '-d'],
    ['--serve-once', '--no-encryption'],
    ['--serve-once', '--user', 'x'],
    ['--serve-once', '--port=1'],
    ['--serve-once', '-p', '1'],
    ['--serve-once', '--port', '0x10'],
    ['--serve-once', '--port', '-1'],
    ['--serve-once', '--root'],
    ['--serve-once', '--help'],
    ['--stdio'],
    ['--version'],
    ['stop'],
  ];
  for (const words of others) assert.is(quickOverSshArgs(words), undefined, words.join(' '));
});

test.run();
