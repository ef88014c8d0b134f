/**
 * The tables of `fcp status` and `fcpd status`: columns two spaces apart, each as wide as its widest cell.
 */
import { printable } from './printable.js';

/**
 * `rows` (the header first) as aligned lines, each cell made printable() before it is measured: an escaped
 * control character or bidi mark (`\x1b`, `\u{202e}`) is wider on the terminal than the string it came from,
 * so padding by the raw length would push every later column of its row right. Wide characters (CJK, emoji)
 * are not measured: rare in these columns, and a terminal's width for them varies. The last column is not
 * padded.
 */
export function formatColumns(rows: readonly (readonly string[])[]): string {
  const shown = rows.map((r) => r.map(printable));
  const columns = Math.max(0, ...shown.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, i) =>
    Math.max(...shown.map((r) => (r[i] ?? '').length)),
  );
  return shown
    .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '))
    .map((line) => `${line.trimEnd()}\n`)
    .join('');
}
