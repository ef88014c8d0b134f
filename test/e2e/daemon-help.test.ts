// `fcpd --help` as a new user reads it, piped or at 80 columns (issue 15, item 12): whole words, no line
// over 80 columns, and no default that is this machine's (root's home) rather than the account's.
import { homedir } from 'node:os';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import { describeRun, runFcpd } from '../helpers/cli.js';

test("fcpd --help piped reads whole words in 80 columns and names no machine's home", async () => {
  for (const args of [['--help'], ['stop', '--help']]) {
    const r = await runFcpd(args);
    assert.is(r.code, 0, describeRun(r));
    const long = r.stdout.split('\n').filter((line) => line.length > 80);
    assert.equal(long, [], 'no line over 80 columns');
    assert.not.ok(r.stdout.includes(`"${homedir()}"`), `no machine-specific default: ${r.stdout}`);
    // Wrapped descriptions read whole once the line breaks and indents are folded back to spaces.
    const text = r.stdout.replace(/\s+/g, ' ');
    const whole = args[0] === 'stop' ? ['stop the daemon started with --user NAME'] : SERVE_PHRASES;
    for (const phrase of whole) assert.ok(text.includes(phrase), `"${phrase}" whole in:\n${r.stdout}`);
  }
});

const SERVE_PHRASES = [
  'address to listen on (every client must authenticate: spec/SECURITY.md)',
  'confine every remote path to this directory (default: serve what the account may open; relative paths start at its home)',
  'hours an interrupted upload is kept for resume before it is removed',
  'started as root: become this account right after binding (its rights, paths relative to its home)',
  'print the host key fingerprint (creating the key if needed) and exit',
];

test.run();
