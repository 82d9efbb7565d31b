// storableText / storableJsonText: what no store refuses (NUL, unpaired surrogates), changed and
// nothing else.
import { describe, expect, it } from 'vitest';
import { storableJsonText, storableText } from '../src/index.js';

describe('storableText / storableJsonText', () => {
  it('replaces NUL and unpaired surrogates, raw and (in JSON text only) as JSON escapes, and keeps pairs', () => {
    expect(storableText('a\u0000b\ud800c\udc00d😀')).toBe('a\ufffdb\ufffdc\ufffdd😀');
    expect(storableJsonText(JSON.stringify('x\u0000\ud800😀'))).toBe('"x\\ufffd\\ufffd😀"');
    expect(storableJsonText('"\\ud83d\\ude00"')).toBe('"\\ud83d\\ude00"');
    // Plain text is not JSON: a backslash and `u0000` are characters of a legal file name.
    expect(storableText(String.raw`scan\u0000\ud800.fits`)).toBe(String.raw`scan\u0000\ud800.fits`);
    // In JSON text an escaped backslash followed by `u0000` is that text, not an escape.
    expect(storableJsonText(JSON.stringify(String.raw`a\u0000`))).toBe(JSON.stringify(String.raw`a\u0000`));
    const same = 'nothing to do';
    expect(storableText(same)).toBe(same);
  });
});
