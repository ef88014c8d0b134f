/**
 * fcp --dry-run -v: one line on stdout per entry, saying what the real run would do with it. The decisions
 * are the receiver's, made exactly as in a real run (spec/PROTOCOL.md §5.6); this only words them.
 */
import type { TransferListener } from '../transfer/events.js';
import { formatBytes } from '../transfer/stats.js';
import { printable } from './printable.js';

/** A listener that writes the plan's lines through `write` (each with its newline). */
export function dryRunPlan(write: (line: string) => void): TransferListener {
  // Paths come from the peer on a pull: never let them forge lines or send terminal escapes.
  const say = (text: string) => write(`${printable(text)}\n`);
  return (event) => {
    switch (event.type) {
      case 'finished':
        if (event.kind === 'dir') say(`would make or update directory ${event.path}/`);
        else if (event.kind === 'symlink') say(`would place link ${event.path}`);
        else if (event.resumedBytes > 0)
          say(
            `would resume ${event.path} (${formatBytes(event.resumedBytes)} of ${formatBytes(event.size)} kept, ` +
              `${formatBytes(event.size - event.resumedBytes)} to send)`,
          );
        else say(`would send ${event.path} (${formatBytes(event.size)})`);
        return;
      case 'skipped':
        if (event.kind === 'dir') say(`would make or update directory ${event.path}/`);
        else say(`would skip ${event.path} (identical)`);
        return;
      case 'not-sent':
        say(`would leave out ${event.path} (--limit)`);
        return;
      default:
        return;
    }
  };
}
