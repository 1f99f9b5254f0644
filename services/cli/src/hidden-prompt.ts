import { InputError } from './errors.ts';

/**
 * A prompt on the terminal that does not echo what is typed (for a password): the terminal in raw
 * mode, the keys handled by `typeKeys` (pure), the terminal restored however it ends.
 */

export type KeysEnd = 'enter' | 'cancel';

// Escape sequences (arrows, function keys): ignored, not typed.
const ESCAPES = new RegExp(`${String.fromCharCode(27)}(\\[[0-9;]*[A-Za-z~]|O.|.)?`, 'g');

/** What `chunk` (keys as the terminal sends them) does to the line typed so far. */
export function typeKeys(line: string, chunk: string): { line: string; end?: KeysEnd } {
  let chars = Array.from(line);
  for (const ch of chunk.replace(ESCAPES, '')) {
    if (ch === '\r' || ch === '\n') return { line: chars.join(''), end: 'enter' };
    if (ch === '\u0003') return { line: '', end: 'cancel' }; // Ctrl-C
    if (ch === '\u0004') return chars.length === 0 ? { line: '', end: 'cancel' } : { line: chars.join(''), end: 'enter' }; // Ctrl-D
    if (ch === '\u007f' || ch === '\b') chars = chars.slice(0, -1);
    else if (ch === '\u0015')
      chars = []; // Ctrl-U
    else if (ch >= ' ') chars.push(ch);
  }
  return { line: chars.join('') };
}

export interface Terminal {
  setRawMode(raw: boolean): unknown;
  setEncoding(encoding: 'utf8'): unknown;
  resume(): unknown;
  pause(): unknown;
  on(event: 'data', fn: (chunk: string) => void): unknown;
  off(event: 'data', fn: (chunk: string) => void): unknown;
}

export function promptHidden(prompt: string, input: Terminal, output: { write(s: string): unknown }): Promise<string> {
  return new Promise((resolve, reject) => {
    let line = '';
    const onData = (chunk: string) => {
      const r = typeKeys(line, chunk);
      line = r.line;
      if (r.end === undefined) return;
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
      if (r.end === 'cancel') reject(new InputError('cancelled'));
      else resolve(line);
    };
    output.write(prompt);
    input.setEncoding('utf8');
    input.setRawMode(true);
    input.on('data', onData);
    input.resume();
  });
}
