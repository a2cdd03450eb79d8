import fc from 'fast-check';
import { tokenizeWords } from '../../../lib/agent';

describe('tokenizeWords', () => {
  it('lower-cases and splits on white space', () => {
    expect(tokenizeWords('Alice  was\tBORN\nin Paris')).toEqual(['alice', 'was', 'born', 'in', 'paris']);
  });

  it('deletes punctuation and symbols inside words, as the SQuAD normalisation does', () => {
    // "don't" → dont, "1,000" → 1000, "well-known" → wellknown, "$5" → 5, "(x)" → x
    expect(tokenizeWords("Don't pay $5: 1,000 well-known (x)")).toEqual([
      'dont',
      'pay',
      '5',
      '1000',
      'wellknown',
      'x',
    ]);
  });

  it('keeps accented letters and folds compatibility forms (NFKC)', () => {
    // full-width "ＡＢＣ" → "abc"; the ligature "ﬁ" → "fi"; "Café" stays one word
    expect(tokenizeWords('Café ＡＢＣ ﬁne')).toEqual(['café', 'abc', 'fine']);
  });

  it('makes each Han, Hiragana and Katakana character a word', () => {
    expect(tokenizeWords('北京大学 in Tokyo カタ')).toEqual([
      '北',
      '京',
      '大',
      '学',
      'in',
      'tokyo',
      'カ',
      'タ',
    ]);
  });

  it('returns no words for punctuation only or empty text', () => {
    expect(tokenizeWords('')).toEqual([]);
    expect(tokenizeWords(' —!?. ')).toEqual([]);
  });

  it('never throws, and re-tokenising its own output changes nothing', () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => `a${String.fromCharCode(code)}b`),
    );
    fc.assert(
      fc.property(text, (value) => {
        const words = tokenizeWords(value);
        expect(tokenizeWords(words.join(' '))).toEqual(words);
      }),
    );
  });
});
