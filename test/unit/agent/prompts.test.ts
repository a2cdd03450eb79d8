import fc from 'fast-check';
import {
  FIRST_STEP_MEMORY,
  NOTHING_RECALLED,
  PromptInputError,
  PromptTemplateError,
  buildFinalPrompt,
  buildMemoryStepPrompt,
  defaultTemplates,
  formatRecalled,
  parseMemoryTurn,
  parsePromptTemplates,
  templateProblems,
  validatePromptTemplates,
  type PromptTemplates,
} from '../../../lib/agent';

const compact: PromptTemplates = {
  memoryStep: 'Q={question}|R={recalled}|M={memory}|C={chunk}|\\boxed{{}}',
  final: 'Q={question}|R={recalled}|M={memory}',
};

describe('prompt builders', () => {
  it('fill the placeholders, with the first-step texts for null memory and recall', () => {
    expect(
      buildMemoryStepPrompt({
        question: 'q',
        recalled: null,
        memory: null,
        chunk: 'c',
        mode: 'rememr1',
        templates: compact,
      }),
    ).toBe(`Q=q|R=${NOTHING_RECALLED}|M=${FIRST_STEP_MEMORY}|C=c|\\boxed{}`);
    expect(
      buildFinalPrompt({ question: 'q', recalled: 'r', memory: 'm', mode: 'rememr1', templates: compact }),
    ).toBe('Q=q|R=r|M=m');
  });

  it('substitute in a single pass: placeholders inside values stay literal', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), fc.string(), (question, recalled, memory, chunk) => {
        const prompt = buildMemoryStepPrompt({
          question,
          recalled,
          memory,
          chunk,
          mode: 'rememr1',
          templates: compact,
        });
        expect(prompt).toBe(`Q=${question}|R=${recalled}|M=${memory}|C=${chunk}|\\boxed{}`);
      }),
    );
    const prompt = buildMemoryStepPrompt({
      question: 'q',
      memory: '{chunk}',
      chunk: '{memory} {{x}}',
      recalled: null,
      mode: 'rememr1',
      templates: compact,
    });
    expect(prompt).toContain('M={chunk}|C={memory} {{x}}|');
  });

  it('use the default templates, which keep the order question, recalled, memory, chunk', () => {
    const prompt = buildMemoryStepPrompt({
      question: 'QQ',
      recalled: 'RR',
      memory: 'MM',
      chunk: 'CC',
      mode: 'rememr1',
    });
    const order = ['QQ', 'RR', 'MM', 'CC'].map((value) => prompt.indexOf(value));
    expect(
      order.every((position, index) => position >= 0 && (index === 0 || position > order[index - 1])),
    ).toBe(true);
    expect(prompt).toContain('<update>');
    expect(prompt).toContain('<recall>');
    const memagent = buildMemoryStepPrompt({ question: 'QQ', memory: 'MM', chunk: 'CC', mode: 'memagent' });
    expect(memagent).not.toContain('<recall>');
    expect(buildFinalPrompt({ question: 'QQ', memory: 'MM', mode: 'memagent' })).toContain('\\boxed{}');
  });

  it('default templates are valid in their own mode only', () => {
    expect(validatePromptTemplates(defaultTemplates('rememr1'), 'rememr1')).toEqual([]);
    expect(validatePromptTemplates(defaultTemplates('memagent'), 'memagent')).toEqual([]);
    expect(validatePromptTemplates(defaultTemplates('rememr1'), 'memagent')).toEqual([
      'memoryStep: placeholder {recalled} is not available in memagent mode (it has no callback)',
      'final: placeholder {recalled} is not available in memagent mode (it has no callback)',
    ]);
  });

  it('refuse a recalled memory in memagent mode and an unusable template', () => {
    expect(() =>
      buildMemoryStepPrompt({ question: 'q', recalled: 'r', memory: null, chunk: 'c', mode: 'memagent' }),
    ).toThrow(PromptInputError);
    const broken = { ...compact, memoryStep: 'Q={question} {memory}' };
    expect(() =>
      buildMemoryStepPrompt({ question: 'q', memory: null, chunk: 'c', mode: 'rememr1', templates: broken }),
    ).toThrow(
      /memoryStep template is not usable in rememr1 mode:\n- missing placeholder \{chunk\}\n- missing placeholder \{recalled\}/,
    );
  });

  it('a model that copies the format instructions of the prompt writes a valid turn', () => {
    // The instructions show the protocol; echoing them must parse like any protocol turn.
    const prompt = buildMemoryStepPrompt({ question: 'q', memory: null, chunk: 'c', mode: 'rememr1' });
    const instructions = prompt.slice(prompt.indexOf('<thinking>'));
    expect(parseMemoryTurn(instructions, 'rememr1').memory).toBe('your new memory');
  });
});

describe('templateProblems', () => {
  it('reports syntax errors with line and column', () => {
    // line 2 is "{memory} {chunk} \boxed{} …": columns 1–8 "{memory}", 10–16 "{chunk}", 18–23 "\boxed", 24 "{"
    expect(
      templateProblems('{question}\n{memory} {chunk} \\boxed{} {recalled}', 'memoryStep', 'rememr1'),
    ).toEqual(['empty placeholder "{}" at line 2, column 24 (write "{{}}" for literal braces)']);
    expect(templateProblems('{question} {memory} }', 'final')).toEqual([
      'single "}" at line 1, column 21 (write "}}" for a literal brace)',
    ]);
    expect(templateProblems('{question} {memory} {', 'final')).toEqual([
      '"{" at line 1, column 21 opens no placeholder (write "{{" for a literal brace)',
    ]);
    expect(templateProblems('{question} {memory} {prompt} {memory:>5}', 'final')).toEqual([
      'unknown placeholder "{prompt}" at line 1, column 21; expected one of {question}, {recalled}, {memory}, {chunk} (write "{{" and "}}" for literal braces)',
      '"{memory:>5}" at line 1, column 30: format specifications and conversions are not supported',
    ]);
  });

  it('reports missing and misplaced placeholders', () => {
    expect(templateProblems('{question}', 'memoryStep', 'rememr1')).toEqual([
      'missing placeholder {memory}',
      'missing placeholder {chunk}',
      'missing placeholder {recalled}',
    ]);
    expect(templateProblems('{question} {memory} {chunk}', 'final', 'memagent')).toEqual([
      'placeholder {chunk} is not available in the final prompt (the document has been read)',
    ]);
  });
});

describe('parsePromptTemplates', () => {
  it('reads JSON', () => {
    expect(parsePromptTemplates(JSON.stringify(compact), 'rememr1')).toEqual(compact);
  });

  it('reads the section format, keeping inner line breaks exactly', () => {
    const text =
      '\n=== memoryStep ===\nQ={question}\n\nM={memory} C={chunk}\n=== final ===\r\nQ={question} M={memory}\r\n';
    expect(parsePromptTemplates(text, 'memagent')).toEqual({
      memoryStep: 'Q={question}\n\nM={memory} C={chunk}',
      final: 'Q={question} M={memory}',
    });
  });

  it('lists every problem in one error', () => {
    let caught: unknown;
    try {
      parsePromptTemplates(
        JSON.stringify({ memoryStep: '{question}', final: '{question} {memory}', extra: 1 }),
        'rememr1',
      );
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(PromptTemplateError);
    expect((caught as PromptTemplateError).problems).toEqual([
      'unknown key "extra"; expected only "memoryStep" and "final"',
    ]);
    expect(() =>
      parsePromptTemplates(
        '{"memoryStep": "{question}", "final": "{question} {memory} {recalled}"}',
        'rememr1',
      ),
    ).toThrow(
      'the prompt templates are not usable in rememr1 mode:\n- memoryStep: missing placeholder {memory}\n- memoryStep: missing placeholder {chunk}\n- memoryStep: missing placeholder {recalled}',
    );
  });

  it('explains malformed files', () => {
    expect(() => parsePromptTemplates('{not json', 'rememr1')).toThrow(/not valid JSON/);
    expect(() => parsePromptTemplates('[1]', 'rememr1')).toThrow(/missing section "=== memoryStep ==="/);
    expect(() => parsePromptTemplates('text\n=== final ===\n{question} {memory}', 'memagent')).toThrow(
      /line 1 comes before the first/,
    );
  });

  it('without a mode, leaves the {recalled} rule to the builders', () => {
    const templates = parsePromptTemplates(JSON.stringify(defaultTemplates('memagent')));
    expect(() => buildFinalPrompt({ question: 'q', memory: 'm', mode: 'rememr1', templates })).toThrow(
      /missing placeholder \{recalled\}/,
    );
  });
});

describe('formatRecalled', () => {
  it('shows nothing, one memory as it is, or several by step', () => {
    expect(formatRecalled([])).toBeNull();
    expect(formatRecalled([{ step: 3, text: 'a', score: 1 }])).toBe('a');
    expect(
      formatRecalled([
        { step: 7, text: 'b', score: 0.9 },
        { step: 3, text: 'a', score: 0.5 },
      ]),
    ).toBe('Memory from step 3:\na\n\nMemory from step 7:\nb');
  });
});
