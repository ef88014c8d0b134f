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

/**
 * An error's stack for -v: its first line (name and message, which may be a peer's ABORT text holding line
 * breaks of its own) as one printable line, then the frames, each printable, one per line. Splitting the
 * whole stack at every line break would let a peer's message start lines of its own (a fake summary, or
 * fake frames); the message is known, so where it ends is too.
 */
export function printableStack(err: Error): string {
  const stack = err.stack ?? '';
  // The first line is `NAME: MESSAGE` with the name the error had when it was made (a subclass may set its
  // own later), so the message is what marks the end of it.
  const at = err.message === '' ? 0 : stack.indexOf(err.message);
  if (at < 0) return printable(`${err.name}: ${err.message}`);
  const end = err.message === '' ? stack.indexOf('\n') : at + err.message.length;
  const head = end < 0 ? stack : stack.slice(0, end);
  const frames = stack.slice(head.length).split('\n').slice(1);
  return [printable(head), ...frames.map(printable)].join('\n');
}
