/**
 * How fcp sets up yargs beyond its options: the help text's width, and the two places where yargs' defaults
 * cost fcp (a type column that repeats the descriptions, a help layout on every run). Kept apart from
 * fcp.ts, which runs the commands.
 */
import type { Argv } from 'yargs';

/** The terminal's width up to 110; 80 when stdout is not a terminal. */
export function helpColumns(): number {
  return Math.min(110, process.stdout.columns ?? 80);
}

export function wantsHelp(): boolean {
  return process.argv.some((a) => a === '--help' || a === '-h' || a === 'help');
}

/**
 * Types and defaults are in the descriptions (see commonOptions): yargs' column of them shows
 * "[default: []]" on operands and a default for --encryption. usageConfiguration is in yargs 17.7 but not
 * in its typings.
 */
export function withoutTypeColumn<T>(y: Argv<T>): Argv<T> {
  const configurable = y as Argv<T> & { usageConfiguration(c: { 'hide-types': boolean }): Argv<T> };
  return configurable.usageConfiguration({ 'hide-types': true });
}

/** What withoutHelpCache reaches of yargs 17's internals (not in its typings). */
interface YargsInternals {
  getInternalMethods?: () => { getUsageInstance(): { cacheHelpMessage(): void } };
}

/**
 * yargs lays out the whole help text each time a command's handler has started (handleValidationAndGetResult),
 * to print it should the handler fail later; fcp's `.fail()` prints one line instead and never shows it. That
 * layout was ~8 ms of the CPU of every push and pull (profiled, pinned): skipped. A yargs without this
 * internal is left as it is.
 */
export function withoutHelpCache(y: Argv): void {
  const usageInstance = (y as unknown as YargsInternals).getInternalMethods?.().getUsageInstance();
  if (usageInstance !== undefined) usageInstance.cacheHelpMessage = () => {};
}
