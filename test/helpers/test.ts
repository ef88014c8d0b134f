/**
 * uvu's `test` and `suite` with a per-test timeout: a test (or hook) that has not settled after its time
 * fails with a message naming it and the timeout, and the run goes on, instead of hanging until test/run.js's
 * 30-minute limit. Every test file imports `test`/`suite` from here; eslint forbids importing them from
 * 'uvu' directly in test/.
 *
 * A timed-out test's own code is abandoned, not stopped: its `finally` blocks never run. What must be cleaned
 * up whatever happens (daemons, child processes, servers, temp dirs) belongs in `test.after` (or
 * `test.after.each`): uvu runs those hooks after a failed or timed-out test as after a passing one. A handle
 * left open anyway cannot hang the run: test/run.js kills uvu 15 s after its summary.
 *
 * Only time spent waiting can be cut short: a test that blocks the thread (spawnSync, a busy loop) is judged
 * when it returns, so such a call needs its own limit (spawnSync's `timeout`).
 */
import { type Callback, type Context, suite as uvuSuite, type Test } from 'uvu';

/** Long enough for every e2e test on a loaded 2-core machine; slower ones pass `{ timeoutMs }`. */
export const DEFAULT_TIMEOUT_MS = 60_000;

export interface TimeoutOptions {
  /** Milliseconds before the test (or hook) fails; DEFAULT_TIMEOUT_MS when not given. */
  timeoutMs?: number;
}

interface TimedHook<T> {
  (hook: Callback<T>, opts?: TimeoutOptions): void;
  each(hook: Callback<T>, opts?: TimeoutOptions): void;
}

/** uvu's Test, each registration taking an optional `{ timeoutMs }` last. */
export interface TimedTest<T> {
  (name: string, fn: Callback<T>, opts?: TimeoutOptions): void;
  only(name: string, fn: Callback<T>, opts?: TimeoutOptions): void;
  skip(name?: string, fn?: Callback<T>, opts?: TimeoutOptions): void;
  before: TimedHook<T>;
  after: TimedHook<T>;
  run(): void;
}

/** Thrown (as the test's failure) when a test or hook outlives its time. */
export class TestTimeoutError extends Error {
  constructor(what: string, timeoutMs: number) {
    super(`${what} did not finish within its timeout of ${timeoutMs} ms (test.after hooks still run)`);
    this.name = 'TestTimeoutError';
  }
}

/**
 * Runs `fn(context)` and rejects with TestTimeoutError after `timeoutMs`. The timer holds the event loop
 * open on purpose: a test awaiting a promise that nothing will ever settle must fail, not let node exit.
 */
export function withTimeout<T>(what: string, fn: Callback<T>, timeoutMs: number): Callback<T> {
  return (context) => {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new TestTimeoutError(what, timeoutMs)), timeoutMs);
    });
    return Promise.race([Promise.resolve().then(() => fn(context)), expired]).finally(() =>
      clearTimeout(timer),
    );
  };
}

function limit(opts: TimeoutOptions | undefined): number {
  return opts?.timeoutMs ?? DEFAULT_TIMEOUT_MS;
}

function timedHook<T>(hook: Test<T>['before'], what: string): TimedHook<T> {
  const timed = (fn: Callback<T>, opts?: TimeoutOptions) => hook(withTimeout(what, fn, limit(opts)));
  timed.each = (fn: Callback<T>, opts?: TimeoutOptions) =>
    hook.each(withTimeout(`${what}.each`, fn, limit(opts)));
  return timed;
}

/** A uvu suite whose tests and hooks time out (see the file header). */
export function suite<T = Context>(title?: string, context?: T): TimedTest<T> {
  const inner = uvuSuite<T>(title, context);
  const label = (name: string) => `test "${title === undefined || title === '' ? '' : `${title} > `}${name}"`;
  const timed = (name: string, fn: Callback<T>, opts?: TimeoutOptions) =>
    inner(name, withTimeout(label(name), fn, limit(opts)));
  timed.only = (name: string, fn: Callback<T>, opts?: TimeoutOptions) =>
    inner.only(name, withTimeout(label(name), fn, limit(opts)));
  timed.skip = (name?: string, fn?: Callback<T>) => inner.skip(name, fn);
  timed.before = timedHook(inner.before, 'test.before');
  timed.after = timedHook(inner.after, 'test.after');
  timed.run = () => inner.run();
  return timed;
}

/** The default suite, as uvu's own `test`. */
export const test: TimedTest<Context> = suite();
