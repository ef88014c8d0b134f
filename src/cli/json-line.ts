/**
 * JSON.stringify for output read one object per line. JSON allows DEL, C1 controls and U+2028/2029 raw in
 * strings, but U+009B is CSI on xterm, and readers that split lines on U+0085 or U+2028/2029 (Python's
 * str.splitlines) would cut an object in two: they are written as \uNNNN escapes, which parse the same.
 */
const LINE_UNSAFE = /[\u007f-\u009f\u2028\u2029]/g;

export function jsonLine(value: unknown): string {
  const text = JSON.stringify(value).replace(
    LINE_UNSAFE,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return `${text}\n`;
}
