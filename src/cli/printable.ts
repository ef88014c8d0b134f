/**
 * Makes text from the wire safe to print on a terminal or in a log: control characters (C0, DEL, C1) become
 * visible escapes, so a hostile file name cannot forge extra output lines or send terminal escape sequences.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

export function printable(text: string): string {
  return text.replace(CONTROL, (ch) => {
    switch (ch) {
      case '\n':
        return '\\n';
      case '\t':
        return '\\t';
      case '\r':
        return '\\r';
      default:
        return `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    }
  });
}
