/**
 * Makes text from the wire safe to print on a terminal or in a log: control characters (C0, DEL, C1) become
 * visible escapes, so a hostile file name cannot forge extra output lines or send terminal escape sequences.
 * Bidi controls and the Unicode line/paragraph separators are escaped too: a name like `bidi-<U+202E>gpj.exe`
 * would otherwise display as "bidi-exe.jpg", and U+2028/2029 break lines for some terminals and log readers.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

export function printable(text: string): string {
  return text.replace(UNSAFE, (ch) => {
    switch (ch) {
      case '\n':
        return '\\n';
      case '\t':
        return '\\t';
      case '\r':
        return '\\r';
      default:
        // C0, DEL and C1 keep their short \xNN form; the format characters above them need four digits.
        return ch.charCodeAt(0) <= 0x9f ? `\\x${hex(ch, 2)}` : `\\u{${hex(ch, 4)}}`;
    }
  });
}

function hex(ch: string, width: number): string {
  return ch.charCodeAt(0).toString(16).padStart(width, '0');
}

/** printable() of each line of a multi-line text (a stack), keeping its line breaks. */
export function printableLines(text: string): string {
  return text.split('\n').map(printable).join('\n');
}
