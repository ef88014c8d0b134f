/** The protocol package: constants, errors, framing and messages. Imports nothing else of fcp's. */
export * from './byte-io.js';
export * from './constants.js';
export * from './errors.js';
export * from './frame.js';
export * from './frame-encode.js';
export * from './frame-batch.js';
export * from './kept-shapes.js';
export * from './messages.js';
export * from './data-frames.js';
