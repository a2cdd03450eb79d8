/**
 * The `hotpotqa-official` metrics mode against values derived from hotpot_evaluate_v1.py's semantics (the
 * expected values were worked out by hand and checked once with the Python logic; the test does not need Python).
 */
import { createHash } from 'node:crypto';
import {
  ASCII_PUNCTUATION,
  METRICS_MODES,
  assertMetricsMode,
  metricLabel,
  officialExactMatch,
  officialF1,
  officialNormalizeAnswer,
  officialSubExactMatch,
  scoreAnswer,
} from '../../../lib/agent';

/** [prediction, gold, normalised prediction, normalised gold, EM, F1, sub-EM] in the official mode. */
const OFFICIAL_CASES: Array<[string, string, string, string, number, number, number]> = [
  // Unicode punctuation is not string.punctuation: the quotes stay part of the word.
  ['“Paris”', 'Paris', '“paris”', 'paris', 0, 0, 1],
  // No folding of é, and the en dash is a token of its own: common = {bar}, P = 1/3, R = 1/2, F1 = 0.4.
  ['Café – Bar', 'cafe bar', 'café – bar', 'cafe bar', 0, 0.4, 0],
  // Articles inside words stay.
  ['theatre', 'Theatre', 'theatre', 'theatre', 1, 1, 1],
  ['The Hague', 'Hague', 'hague', 'hague', 1, 1, 1],
  // Gold answers made only of articles: both sides normalise to "" → EM 1, F1 0 (no common token), sub-EM 1.
  ['a', 'The', '', '', 1, 0, 1],
  ['the the the', 'a', '', '', 1, 0, 1],
  // A prediction that normalises to "" is a substring of every gold answer.
  ['the', 'Paris', '', 'paris', 0, 0, 1],
  // yes / no / noanswer: no partial F1 unless equal.
  ['yes', 'no', 'yes', 'no', 0, 0, 0],
  ['Yes.', 'yes', 'yes', 'yes', 1, 1, 1],
  ['no way', 'no', 'no way', 'no', 0, 0, 1],
  ['noanswer', 'noanswer', 'noanswer', 'noanswer', 1, 1, 1],
  // Python's \b: é is a word character, so "éthe" keeps its "the"; P = 1/2, R = 1.
  ['éthe end', 'end', 'éthe end', 'end', 0, 2 / 3, 1],
  // ...a combining mark is not, so the "the" after "e\u0301" goes.
  ['e\u0301the', 'e\u0301', 'e\u0301', 'e\u0301', 1, 1, 1],
  // ...nor is an en dash.
  ['the–end', 'end', '–end', 'end', 0, 0, 1],
  // "_" is ASCII punctuation, deleted before the articles are looked for.
  ['the_end', 'theend', 'theend', 'theend', 1, 1, 1],
  ["l'the", 'lthe', 'lthe', 'lthe', 1, 1, 1],
  ['A.B.C', 'abc', 'abc', 'abc', 1, 1, 1],
  ["Don't", 'dont', 'dont', 'dont', 1, 1, 1],
  ['an apple a day', 'apple day', 'apple day', 'apple day', 1, 1, 1],
  // No NFKC: full-width letters stay full-width.
  ['ＡＢＣ', 'abc', 'ａｂｃ', 'abc', 0, 0, 0],
  // Python's white space: no-break space and U+001C split, zero-width space and U+FEFF do not.
  ['New\u00a0York', 'new york', 'new york', 'new york', 1, 1, 1],
  ['x\u001cy', 'x y', 'x y', 'x y', 1, 1, 1],
  ['New\u200bYork', 'new york', 'new\u200byork', 'new york', 0, 0, 0],
  ['x\ufeffy', 'x y', 'x\ufeffy', 'x y', 0, 0, 0],
  // Full lower-case mapping, final sigma included; numbers are word characters (Ⅻ).
  ['ΟΔΟΣ', 'οδος', 'οδος', 'οδος', 1, 1, 1],
  ['Ⅻ the', 'Ⅻ', 'ⅻ', 'ⅻ', 1, 1, 1],
  ['¿Qué?', 'qué', '¿qué', 'qué', 0, 0, 1],
  // Character-level substrings.
  ['1990', '1', '1990', '1', 0, 0, 1],
];

describe('hotpotqa-official estimators', () => {
  it.each(OFFICIAL_CASES)(
    '%j vs %j',
    (prediction, gold, normalisedPrediction, normalisedGold, em, f1, subEm) => {
      expect(officialNormalizeAnswer(prediction)).toBe(normalisedPrediction);
      expect(officialNormalizeAnswer(gold)).toBe(normalisedGold);
      expect(officialExactMatch(prediction, gold)).toBe(em);
      expect(officialF1(prediction, gold).f1).toBe(f1);
      expect(officialSubExactMatch(prediction, gold)).toBe(subEm);
    },
  );

  it('deletes exactly the 32 characters of string.punctuation', () => {
    expect(ASCII_PUNCTUATION).toHaveLength(32);
    expect(officialNormalizeAnswer(`x${ASCII_PUNCTUATION}y`)).toBe('xy');
    expect(officialNormalizeAnswer('x‘’“”–—…«»·y')).toBe('x‘’“”–—…«»·y');
  });

  it('returns precision and recall beside F1', () => {
    expect(officialF1('Café – Bar', 'cafe bar')).toEqual({ f1: 0.4, precision: 1 / 3, recall: 0.5 });
    expect(officialF1('yes', 'no')).toEqual({ f1: 0, precision: 0, recall: 0 });
  });

  it('matches the Python logic on every pair of a grid of tricky answers (digest)', () => {
    const pieces = [
      'The',
      'a',
      'an',
      'the end',
      'Theatre',
      '“Paris”',
      'paris',
      'Café',
      'cafe',
      'no',
      'Yes',
      'noanswer',
      'the–end',
      'New\u00a0York',
      'ＡＢＣ',
      'e\u0301the',
      '1990',
      '1',
      'A.B.C',
      'abc',
      "Don't",
      '¿Qué?',
      '',
      '...',
    ];
    const predictions = [...pieces, ...pieces.flatMap((a) => pieces.map((b) => `${a} ${b}`))];
    // Python's repr of a float in [0, 1]: "0.0", "1.0", "0.4", "0.6666666666666666".
    const pythonFloat = (value: number): string =>
      Number.isInteger(value) ? value.toFixed(1) : String(value);
    const lines: string[] = [];
    for (const prediction of predictions) {
      for (const gold of pieces) {
        const em = officialExactMatch(prediction, gold);
        const f1 = officialF1(prediction, gold).f1;
        lines.push(`${em} ${pythonFloat(f1)} ${officialSubExactMatch(prediction, gold)}`);
      }
    }
    expect(lines).toHaveLength(14_400);
    expect(createHash('sha256').update(lines.join('\n')).digest('hex')).toBe(
      '0a809ef48fd9a654c08ec2e8441e4121aec8e75d679dfc655597c653429127a1',
    );
  });
});

describe('scoreAnswer in both metrics modes', () => {
  const both = (prediction: string | null, golds: string[]) => ({
    project: scoreAnswer(prediction, golds, 'project'),
    official: scoreAnswer(prediction, golds, 'hotpotqa-official'),
  });

  it('defaults to the project mode', () => {
    expect(scoreAnswer('“Paris”', ['Paris'])).toEqual(scoreAnswer('“Paris”', ['Paris'], 'project'));
  });

  it('differs on Unicode punctuation, dashes, accents and full-width letters', () => {
    expect(both('“Paris”', ['Paris'])).toEqual({
      project: { exactMatch: 1, f1: 1, subExactMatch: 1 },
      official: { exactMatch: 0, f1: 0, subExactMatch: 1 },
    });
    expect(both('Café – Bar', ['Café Bar'])).toEqual({
      project: { exactMatch: 1, f1: 1, subExactMatch: 1 },
      official: { exactMatch: 0, f1: 0.8, subExactMatch: 0 },
    });
    expect(both('ＡＢＣ', ['abc'])).toEqual({
      project: { exactMatch: 1, f1: 1, subExactMatch: 1 },
      official: { exactMatch: 0, f1: 0, subExactMatch: 0 },
    });
    // Project: "–" is deleted, "theend" is one word; official: the article goes, "–end" stays.
    expect(both('the–end', ['end'])).toEqual({
      project: { exactMatch: 0, f1: 0, subExactMatch: 1 },
      official: { exactMatch: 0, f1: 0, subExactMatch: 1 },
    });
    expect(both('the–end', ['theend']).official).toEqual({ exactMatch: 0, f1: 0, subExactMatch: 0 });
    expect(both('the–end', ['theend']).project).toEqual({ exactMatch: 1, f1: 1, subExactMatch: 1 });
  });

  it('differs on answers that normalise to nothing', () => {
    // Project: the gold "The" is compared with its article kept; official: "" = "".
    expect(both('a', ['The'])).toEqual({
      project: { exactMatch: 0, f1: 0, subExactMatch: 0 },
      official: { exactMatch: 1, f1: 0, subExactMatch: 1 },
    });
    expect(both('The', ['the'])).toEqual({
      project: { exactMatch: 1, f1: 1, subExactMatch: 1 },
      official: { exactMatch: 1, f1: 0, subExactMatch: 1 },
    });
    // A prediction of only articles or punctuation is in every gold answer, officially.
    expect(both('the', ['Paris'])).toEqual({
      project: { exactMatch: 0, f1: 0, subExactMatch: 0 },
      official: { exactMatch: 0, f1: 0, subExactMatch: 1 },
    });
    expect(both('...', ['Paris']).official.subExactMatch).toBe(1);
  });

  it('agrees on articles inside words and on the yes/no rule', () => {
    for (const [prediction, gold, expected] of [
      ['Theatre', 'theatre', { exactMatch: 1, f1: 1, subExactMatch: 1 }],
      ['The Hague', 'Hague', { exactMatch: 1, f1: 1, subExactMatch: 1 }],
      ['yes', 'no', { exactMatch: 0, f1: 0, subExactMatch: 0 }],
      ['no way', 'no', { exactMatch: 0, f1: 0, subExactMatch: 1 }],
    ] as const) {
      expect(both(prediction, [gold])).toEqual({ project: expected, official: expected });
    }
  });

  it('scores a missing prediction (null or "") 0 in the official mode, as the released evaluation does', () => {
    for (const prediction of [null, '']) {
      expect(scoreAnswer(prediction, ['The'], 'hotpotqa-official')).toEqual({
        exactMatch: 0,
        f1: 0,
        subExactMatch: 0,
      });
    }
    // White space alone is an answer to Python ("  " is truthy) and normalises to "".
    expect(scoreAnswer('  ', ['Paris'], 'hotpotqa-official')).toEqual({
      exactMatch: 0,
      f1: 0,
      subExactMatch: 1,
    });
  });

  it('takes the maximum over gold answers of each metric separately', () => {
    expect(scoreAnswer('Paris France', ['France', 'paris france'], 'hotpotqa-official')).toEqual({
      exactMatch: 1,
      f1: 1,
      subExactMatch: 1,
    });
    expect(scoreAnswer('the red car', ['red', 'car blue'], 'hotpotqa-official')).toEqual({
      exactMatch: 0,
      f1: 2 / 3,
      subExactMatch: 1,
    });
    expect(() => scoreAnswer('x', [], 'hotpotqa-official')).toThrow(/at least one gold answer/);
  });

  it('names the mode in metric labels and checks mode names', () => {
    expect(metricLabel('EM', 'hotpotqa-official')).toBe('EM (hotpotqa-official)');
    expect(metricLabel('sub-EM', undefined)).toBe('sub-EM (project)');
    expect(METRICS_MODES).toEqual(['project', 'hotpotqa-official']);
    expect(() => assertMetricsMode('squad')).toThrow(/unknown metrics mode "squad"/);
    expect(() => assertMetricsMode('hotpotqa-official')).not.toThrow();
  });
});
