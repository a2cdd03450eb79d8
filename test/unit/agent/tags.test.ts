import fc from 'fast-check';
import {
  PromptInputError,
  responseWithoutRecalls,
  parseFinalTurn,
  parseMemoryTurn,
  renderFinalTurn,
  renderMemoryTurn,
} from '../../../lib/agent';

describe('parseMemoryTurn (rememr1)', () => {
  it('reads a well-formed multi-line turn (the released single-line patterns scored this 0)', () => {
    const text =
      '<thinking>\nThe section names\nher birthplace.\n</thinking>\n<update>\nAlice: born in Paris.\nBob: unknown.\n</update>\n<recall>Bob birthplace</recall>';
    expect(parseMemoryTurn(text, 'rememr1', 'old memory')).toEqual({
      memory: 'Alice: born in Paris.\nBob: unknown.',
      memoryUpdated: true,
      recallQuery: 'Bob birthplace',
      thinking: 'The section names\nher birthplace.',
      formatValid: true,
      issues: [],
    });
  });

  it('accepts a turn without thinking and without recall', () => {
    const parsed = parseMemoryTurn('<update>m</update>', 'rememr1');
    expect(parsed).toMatchObject({ memory: 'm', recallQuery: null, thinking: null, formatValid: true });
  });

  it('reads tags case-insensitively, with white space before ">"', () => {
    expect(parseMemoryTurn('<UPDATE >m</Update>', 'rememr1').memory).toBe('m');
  });

  it('keeps the previous memory when the update is missing', () => {
    const parsed = parseMemoryTurn('I think the answer is Paris.', 'rememr1', 'previous');
    expect(parsed).toMatchObject({ memory: 'previous', memoryUpdated: false, formatValid: false });
    expect(parsed.issues).toEqual(['no <update> block: the memory is unchanged']);
  });

  it('returns null memory for an invalid first turn (nothing was known yet)', () => {
    expect(parseMemoryTurn('', 'rememr1').memory).toBeNull();
  });

  it('rejects repeated, unclosed and empty updates, keeping the previous memory', () => {
    const repeated = parseMemoryTurn('<update>a</update><update>b</update>', 'rememr1', 'p');
    expect(repeated).toMatchObject({ memory: 'p', formatValid: false });
    expect(repeated.issues).toEqual(['2 <update> blocks, exactly one expected: the memory is unchanged']);
    const unclosed = parseMemoryTurn('<update>cut off by the token lim', 'rememr1', 'p');
    expect(unclosed).toMatchObject({ memory: 'p', formatValid: false });
    expect(unclosed.issues).toEqual(['<update> is never closed (output cut off?): the memory is unchanged']);
    const empty = parseMemoryTurn('<update>  \n </update>', 'rememr1', 'p');
    expect(empty).toMatchObject({ memory: 'p', formatValid: false });
  });

  it('keeps an echoed, balanced tag pair from the document inside the memory', () => {
    const text = '<update>The page shows <update>x</update> literally.</update>';
    expect(parseMemoryTurn(text, 'rememr1')).toMatchObject({
      memory: 'The page shows <update>x</update> literally.',
      formatValid: true,
    });
  });

  it('treats an unmatched </update> as a broken turn', () => {
    const parsed = parseMemoryTurn('<update>a</update> b</update>', 'rememr1', 'p');
    expect(parsed).toMatchObject({ memory: 'p', formatValid: false });
    expect(parsed.issues).toContain('a </update> closes no open <update>: the memory is unchanged');
  });

  it('ignores tags inside thinking', () => {
    const parsed = parseMemoryTurn(
      '<thinking>Write <update>x</update>? Or <recall>?</thinking><update>y</update>',
      'rememr1',
    );
    expect(parsed).toMatchObject({ memory: 'y', recallQuery: null, formatValid: true });
    expect(parsed.thinking).toBe('Write <update>x</update>? Or <recall>?');
  });

  it('takes the text before a leading </thinking> as the thinking', () => {
    const parsed = parseMemoryTurn('reasoning</thinking><update>m</update>', 'rememr1');
    expect(parsed).toMatchObject({ thinking: 'reasoning', memory: 'm', formatValid: true });
    expect(parsed.issues).toHaveLength(1);
  });

  it('reads past a thinking block that is never closed', () => {
    const parsed = parseMemoryTurn('<thinking>hmm <update>m</update><recall>q</recall>', 'rememr1');
    expect(parsed).toMatchObject({ thinking: null, memory: 'm', recallQuery: 'q', formatValid: true });
    expect(parsed.issues).toEqual([
      '<thinking> is never closed: thinking tags are ignored and the turn is read without them',
    ]);
  });

  it('treats recall problems as format errors but keeps a good update', () => {
    const two = parseMemoryTurn('<update>m</update><recall>a</recall><recall>b</recall>', 'rememr1', 'p');
    expect(two).toMatchObject({ memory: 'm', memoryUpdated: true, recallQuery: null, formatValid: false });
    const unclosed = parseMemoryTurn('<update>m</update><recall>a', 'rememr1');
    expect(unclosed).toMatchObject({ memory: 'm', recallQuery: null, formatValid: false });
    const stray = parseMemoryTurn('<update>m</update></recall>', 'rememr1');
    expect(stray).toMatchObject({ recallQuery: null, formatValid: false });
  });

  it('reads an empty recall as no recall, without a format error', () => {
    const parsed = parseMemoryTurn('<update>m</update><recall> </recall>', 'rememr1');
    expect(parsed).toMatchObject({ recallQuery: null, formatValid: true });
    expect(parsed.issues).toEqual(['the <recall> block is empty: no recall query']);
  });

  it('joins several closed thinking blocks', () => {
    const parsed = parseMemoryTurn(
      '<thinking>a</thinking><update>m</update><thinking>b</thinking>',
      'rememr1',
    );
    expect(parsed.thinking).toBe('a\n\nb');
  });
});

describe('parseMemoryTurn (memagent)', () => {
  it('makes the whole response the memory, tags included', () => {
    expect(parseMemoryTurn('  <update>x</update> and more \n', 'memagent', 'p')).toEqual({
      memory: '<update>x</update> and more',
      memoryUpdated: true,
      recallQuery: null,
      thinking: null,
      formatValid: true,
      issues: [],
    });
  });

  it('keeps the previous memory on an empty response', () => {
    expect(parseMemoryTurn(' \n', 'memagent', 'p')).toMatchObject({ memory: 'p', formatValid: false });
  });
});

describe('parseFinalTurn', () => {
  it('reads the boxed answer after the thinking', () => {
    expect(parseFinalTurn('<thinking>It is \\boxed{Rome}? No.</thinking>\nSo: \\boxed{Paris}')).toEqual({
      answer: 'Paris',
      thinking: 'It is \\boxed{Rome}? No.',
      formatValid: true,
      issues: [],
    });
  });

  it('uses the last of several boxes, with a format error', () => {
    const parsed = parseFinalTurn('\\boxed{A} or \\boxed{B}');
    expect(parsed).toMatchObject({ answer: 'B', formatValid: false });
    expect(parsed.issues).toEqual(['2 \\boxed{…} answers, exactly one expected: the last one is used']);
  });

  it('gives no answer when the box is only inside thinking, or missing, or empty', () => {
    expect(parseFinalTurn('<thinking>\\boxed{A}</thinking> done')).toMatchObject({
      answer: null,
      formatValid: false,
      issues: ['the only \\boxed{…} answers are inside <thinking>: no answer'],
    });
    expect(parseFinalTurn('Paris')).toMatchObject({
      answer: null,
      formatValid: false,
      issues: ['no \\boxed{…} answer'],
    });
    expect(parseFinalTurn('\\boxed{ }')).toMatchObject({ answer: null, formatValid: false });
  });

  it('flags an unclosed box after a complete one', () => {
    expect(parseFinalTurn('\\boxed{A} \\boxed{B')).toMatchObject({ answer: 'A', formatValid: false });
  });
});

describe('renderMemoryTurn and renderFinalTurn', () => {
  it('write the protocol', () => {
    expect(renderMemoryTurn({ thinking: 't', memory: 'm', recallQuery: 'q' }, 'rememr1')).toBe(
      '<thinking>\nt\n</thinking>\n<update>\nm\n</update>\n<recall>q</recall>',
    );
    expect(renderMemoryTurn({ memory: 'm' }, 'memagent')).toBe('m');
    expect(renderFinalTurn({ thinking: 't', answer: 'Paris' })).toBe(
      '<thinking>\nt\n</thinking>\n\\boxed{Paris}',
    );
  });

  it('refuse parts the protocol cannot carry', () => {
    expect(() => renderMemoryTurn({ memory: 'a </update> b' }, 'rememr1')).toThrow(PromptInputError);
    expect(() => renderMemoryTurn({ memory: '  ' }, 'rememr1')).toThrow(/cannot be written/);
    expect(() => renderMemoryTurn({ memory: 'm', recallQuery: ' ' }, 'rememr1')).toThrow(/recallQuery/);
    expect(() => renderMemoryTurn({ memory: 'm', recallQuery: 'q' }, 'memagent')).toThrow(/memagent/);
    expect(() => renderFinalTurn({ answer: 'a}b' })).toThrow(PromptInputError);
  });
});

/** Text with many tag-like fragments, braces and arbitrary Unicode (lone surrogates included). */
const messyText = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        '<update>',
        '</update>',
        '<recall>',
        '</recall>',
        '<thinking>',
        '</thinking>',
        '<UPDATE >',
        '\\boxed{',
        '\\boxed {',
        '\\text{',
        '{',
        '}',
        '\\{',
        '\n',
        ' ',
      ),
      fc.string({ unit: 'binary', maxLength: 8 }),
      fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)),
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(''));

const anyText = fc.oneof(messyText, fc.string({ unit: 'binary' }));

describe('parser properties', () => {
  it('never throws, and an invalid memory turn never changes the memory', () => {
    fc.assert(
      fc.property(
        anyText,
        fc.constantFrom('rememr1' as const, 'memagent' as const),
        fc.option(fc.string()),
        (text, mode, previous) => {
          const parsed = parseMemoryTurn(text, mode, previous);
          if (!parsed.memoryUpdated) expect(parsed.memory).toBe(previous);
          if (parsed.formatValid) expect(parsed.memoryUpdated).toBe(true);
          if (parsed.memoryUpdated) expect(parsed.memory?.trim()).toBe(parsed.memory);
          if (parsed.memoryUpdated) expect(parsed.memory).not.toBe('');
          if (!parsed.formatValid) expect(parsed.issues.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never throws on final turns; a valid one has an answer', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const parsed = parseFinalTurn(text);
        if (parsed.formatValid) expect(parsed.answer).not.toBeNull();
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips every memory turn the renderer writes, and renders every tag-free turn', () => {
    const part = fc.oneof(messyText, fc.string({ unit: 'grapheme' }));
    const tagLike = /<\/?(thinking|update|recall)\s*>/i;
    fc.assert(
      fc.property(fc.option(part), part, fc.option(part), (thinking, memory, recallQuery) => {
        let written: string;
        try {
          written = renderMemoryTurn({ thinking, memory, recallQuery }, 'rememr1');
        } catch (error) {
          expect(error).toBeInstanceOf(PromptInputError);
          const tagFree = ![thinking, memory, recallQuery].some(
            (value) => value !== null && tagLike.test(value),
          );
          const blank = memory.trim() === '' || (recallQuery !== null && recallQuery.trim() === '');
          expect(tagFree && !blank).toBe(false);
          return;
        }
        const parsed = parseMemoryTurn(written, 'rememr1', 'previous');
        expect(parsed.formatValid).toBe(true);
        expect(parsed.memory).toBe(memory.trim());
        expect(parsed.recallQuery).toBe(recallQuery === null ? null : recallQuery.trim());
        expect(parsed.thinking).toBe(thinking === null || thinking.trim() === '' ? null : thinking.trim());
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips every final turn the renderer writes', () => {
    fc.assert(
      fc.property(
        fc.option(fc.string({ unit: 'grapheme' })),
        fc.string({ unit: 'grapheme', minLength: 1 }),
        (thinking, answer) => {
          const safeAnswer = answer.replace(/[{}\\]/g, '');
          fc.pre(safeAnswer.trim() !== '' && (thinking === null || !/<\/?thinking\s*>/i.test(thinking)));
          const parsed = parseFinalTurn(renderFinalTurn({ thinking, answer: safeAnswer }));
          expect(parsed).toMatchObject({ answer: safeAnswer.trim(), formatValid: true });
        },
      ),
    );
  });
});

describe('memory content (rules 7 and 7b)', () => {
  const turn =
    '<thinking>\nThe section names her birthplace.\n</thinking>\n<update>\nAlice: born in Paris.\n</update>\n<recall>Bob\nbirthplace</recall>';

  it('keeps the <update> content by default and with "update"', () => {
    const expected = parseMemoryTurn(turn, 'rememr1', 'old');
    expect(expected.memory).toBe('Alice: born in Paris.');
    expect(parseMemoryTurn(turn, 'rememr1', 'old', 'update')).toEqual(expected);
  });

  it('keeps the whole response minus its <recall> blocks with "response", reading the rest as usual', () => {
    expect(parseMemoryTurn(turn, 'rememr1', 'old', 'response')).toEqual({
      memory:
        '<thinking>\nThe section names her birthplace.\n</thinking>\n<update>\nAlice: born in Paris.\n</update>',
      memoryUpdated: true,
      recallQuery: 'Bob\nbirthplace',
      thinking: 'The section names her birthplace.',
      formatValid: true,
      issues: [],
    });
  });

  it('follows the released pattern: lower-case tags, shortest spans, unclosed <recall> kept', () => {
    expect(responseWithoutRecalls('a <recall>x</recall> b <recall>y</recall> c')).toBe('a  b  c');
    expect(responseWithoutRecalls('<RECALL>x</RECALL> kept')).toBe('<RECALL>x</RECALL> kept');
    expect(responseWithoutRecalls('text <recall>cut off')).toBe('text <recall>cut off');
    expect(responseWithoutRecalls('  <recall>only</recall>\n')).toBe('');
  });

  it('writes the response even when the <update> block is malformed, but the format stays invalid', () => {
    const parsed = parseMemoryTurn('I think Alice was born in Paris.', 'rememr1', 'old', 'response');
    expect(parsed.memory).toBe('I think Alice was born in Paris.');
    expect(parsed.memoryUpdated).toBe(true);
    expect(parsed.formatValid).toBe(false);
    expect(parsed.issues).toEqual(['no <update> block']);
    expect(parseMemoryTurn('I think', 'rememr1', 'old', 'update').memory).toBe('old');
  });

  it('keeps the previous memory when nothing is left without the <recall> blocks', () => {
    const parsed = parseMemoryTurn('<recall>who?</recall>', 'rememr1', 'old', 'response');
    expect(parsed).toMatchObject({
      memory: 'old',
      memoryUpdated: false,
      recallQuery: 'who?',
      formatValid: false,
    });
    expect(parsed.issues).toContain(
      'the response is empty without its <recall> blocks: the memory is unchanged',
    );
  });

  it('does not change memagent turns', () => {
    expect(parseMemoryTurn(turn, 'memagent', 'old', 'response')).toEqual(
      parseMemoryTurn(turn, 'memagent', 'old'),
    );
  });
});
