import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { test, TestTimeoutError, withTimeout } from '../helpers/test.js';

// The per-test timeout of test/helpers/test.ts: a hang fails in its time, names the test and the time,
// and leaves nothing behind that keeps the process alive.

const HANGING_SUITE = fileURLToPath(new URL('../fixtures/hanging-suite.js', import.meta.url));

test('withTimeout: a never-settling test fails after its time, naming it and the timeout', async () => {
  const never = withTimeout('test "forever"', () => new Promise<never>(() => {}), 20);
  const err = await Promise.resolve(never({ __suite__: '', __test__: 'forever' })).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(err, TestTimeoutError);
  assert.match(String((err as Error).message), 'test "forever" did not finish within its timeout of 20 ms');
});

test('withTimeout: a test that settles in time keeps its own result', async () => {
  const ok = withTimeout('test "quick"', async () => {}, 10_000);
  await ok({ __suite__: '', __test__: 'quick' });
  const failing = withTimeout(
    'test "fails"',
    () => {
      throw new Error('its own failure');
    },
    10_000,
  );
  const err = await Promise.resolve(failing({ __suite__: '', __test__: 'fails' })).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.is((err as Error).message, 'its own failure');
});

test('a suite with a hanging test: it fails, the next test and test.after run, the process exits', async () => {
  const child = spawn(process.execPath, [HANGING_SUITE], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  // The child exits by itself once test.after closed its server; this test's own timeout bounds the wait.
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  assert.match(out, 'test "hanging > never settles" did not finish within its timeout of 200 ms', out);
  assert.match(out, 'second test ran', out);
  assert.match(out, 'after hook ran', out);
  assert.match(out, /Passed:\s+1\b/, out);
  assert.is(code, 1, out);
});

test.run();
