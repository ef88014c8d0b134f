/**
 * JSON.stringify for output read one object per line. JSON allows DEL, C1 controls and U+2028/2029 raw in
 * strings, but U+009B is CSI on xterm, and readers that split lines on U+0085 or U+2028/2029 (Python's
 * str.splitlines) would cut an object in two: they are written as \uNNNN escapes, which parse the same.
 */
const LINE_UNSAFE = /[\u007f-\u009f\u2028\u2029]/g;

export function jsonLine(value: unknown): string {
  return `${lineSafe(JSON.stringify(value))}\n`;
}

/** One string as jsonLine() writes it inside a line, quotes included. */
export function jsonString(text: string): string {
  return lineSafe(JSON.stringify(text));
}

function lineSafe(json: string): string {
  return json.replace(LINE_UNSAFE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
