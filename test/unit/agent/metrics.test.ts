import {
  MetricInputError,
  answerRecall,
  exactMatch,
  f1Score,
  normalizeAnswer,
  scoreAnswer,
  subExactMatch,
} from '../../../lib/agent';

describe('normalizeAnswer', () => {
  it('lower-cases, deletes punctuation, drops articles and folds white space', () => {
    expect(normalizeAnswer('  The  Eiffel-Tower!  ')).toBe('eiffeltower');
    expect(normalizeAnswer('A Tale of Two Cities')).toBe('tale of two cities');
    expect(normalizeAnswer('Theatre, an art')).toBe('theatre art');
  });
});

describe('exactMatch', () => {
  it('compares normalised text, max over gold answers', () => {
    expect(exactMatch('the Beatles', ['Beatles'])).toBe(1);
    expect(exactMatch('beatles.', ['The Rolling Stones', 'The Beatles'])).toBe(1);
    expect(exactMatch('Beatle', ['Beatles'])).toBe(0);
  });

  it('scores a missing prediction 0', () => {
    expect(exactMatch(null, ['x'])).toBe(0);
  });

  it('never scores an empty answer, also against a gold answer made only of articles', () => {
    for (const gold of ['a', 'the', 'The', 'an', 'A.', '—']) {
      expect(exactMatch('', [gold])).toBe(0);
      expect(exactMatch('   ', [gold])).toBe(0);
      expect(exactMatch('!?', [gold])).toBe(0);
      expect(f1Score('', [gold])).toBe(0);
      expect(subExactMatch('', [gold])).toBe(0);
    }
    expect(scoreAnswer('', ['x', 'the'])).toEqual({ exactMatch: 0, f1: 0, subExactMatch: 0 });
  });

  it('compares a gold answer made only of articles with the articles kept', () => {
    expect(exactMatch('The', ['the'])).toBe(1);
    expect(exactMatch('a', ['the'])).toBe(0);
    expect(f1Score('The.', ['the'])).toBe(1);
    expect(subExactMatch('Paris', ['the'])).toBe(0);
    expect(subExactMatch('the word is "the"', ['the'])).toBe(1);
    // a gold answer with other words still drops its articles
    expect(exactMatch('Beatles', ['The Beatles'])).toBe(1);
  });

  it('refuses an empty gold list', () => {
    expect(() => exactMatch('x', [])).toThrow(MetricInputError);
    expect(() => exactMatch('x', [])).toThrow('at least one gold answer is needed to score a prediction');
  });
});

describe('f1Score', () => {
  it('is the harmonic mean of word precision and recall', () => {
    // prediction {new, york, city}, gold {new, york}: common 2, precision 2/3, recall 2/2
    // F1 = 2 · (2/3) · 1 / (2/3 + 1) = (4/3) / (5/3) = 0.8
    expect(f1Score('New York City', ['New York'])).toBeCloseTo(0.8, 12);
  });

  it('counts repeated words at most as often as the gold has them', () => {
    // prediction "paris paris" vs gold "paris": common min(2,1) = 1, precision 1/2, recall 1
    // F1 = 2 · 0.5 · 1 / 1.5 = 2/3
    expect(f1Score('Paris Paris', ['Paris'])).toBeCloseTo(2 / 3, 12);
  });

  it('takes the maximum over gold answers (the released evaluation scored only the first)', () => {
    // vs "London": 0; vs "Paris": common 1, precision 1/2, recall 1 → 2/3
    expect(f1Score('Paris France', ['London', 'Paris'])).toBeCloseTo(2 / 3, 12);
  });

  it('gives no partial credit for yes/no/noanswer (HotpotQA rule)', () => {
    expect(f1Score('yes', ['no'])).toBe(0);
    expect(f1Score('no', ['no way'])).toBe(0); // the prediction is "no" and differs from the gold
    expect(f1Score('yes it is', ['yes'])).toBe(0); // the gold is "yes" and differs from the prediction
    expect(f1Score('Yes.', ['yes'])).toBe(1);
  });

  it('scores empty and missing predictions 0', () => {
    expect(f1Score('', ['x'])).toBe(0);
    expect(f1Score(null, ['x'])).toBe(0);
  });
});

describe('subExactMatch', () => {
  it('accepts the gold inside the prediction or the reverse, after normalisation', () => {
    expect(subExactMatch('She was born in 1990.', ['1990'])).toBe(1);
    expect(subExactMatch('Obama', ['Barack Obama'])).toBe(1);
    expect(subExactMatch('Bush', ['Barack Obama'])).toBe(0);
  });

  it('scores an empty prediction 0 (the empty string is in every gold)', () => {
    expect(subExactMatch('the', ['Paris'])).toBe(0);
    expect(subExactMatch(null, ['Paris'])).toBe(0);
  });
});

describe('scoreAnswer', () => {
  it('returns the three metrics', () => {
    // EM 0; F1: {barack, obama} vs {obama}: precision 1/2, recall 1 → 2/3; sub-EM: "obama" is in "barack obama"
    const scores = scoreAnswer('Barack Obama', ['Obama']);
    expect(scores.exactMatch).toBe(0);
    expect(scores.f1).toBeCloseTo(2 / 3, 12);
    expect(scores.subExactMatch).toBe(1);
  });
});

describe('answerRecall', () => {
  it('is the fraction of gold words found as whole words, case-insensitive', () => {
    // gold words {new, york, city}; the text has "new" and "york" → 2/3
    expect(answerRecall('He moved to NEW YORK last year.', ['New York City'])).toBeCloseTo(2 / 3, 12);
    // "yorkshire" is not the word "york" (the released code's substring test would count it)
    expect(answerRecall('Yorkshire is new.', ['York'])).toBe(0);
  });

  it('takes the maximum over gold answers (the released code averaged them)', () => {
    // vs "New York City": 2/3; vs "NYC": 0 → max 2/3 (the average would be 1/3)
    expect(answerRecall('new york', ['New York City', 'NYC'])).toBeCloseTo(2 / 3, 12);
  });

  it('ignores articles and repeated gold words', () => {
    // gold "The The" has no words once the articles are gone → 0; gold "Paris Paris" has one word
    expect(answerRecall('the', ['The The'])).toBe(0);
    expect(answerRecall('paris', ['Paris Paris'])).toBe(1);
  });

  it('scores a missing text 0', () => {
    expect(answerRecall(null, ['x'])).toBe(0);
  });
});
