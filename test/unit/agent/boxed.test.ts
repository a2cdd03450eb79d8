import { extractLastBoxed, scanBoxed } from '../../../lib/agent';

describe('extractLastBoxed', () => {
  it('reads a plain box', () => {
    expect(extractLastBoxed('The answer is \\boxed{Paris}.')).toBe('Paris');
  });

  it('counts nested braces', () => {
    expect(extractLastBoxed('\\boxed{\\frac{1}{2}}')).toBe('\\frac{1}{2}');
  });

  it('takes the last box, and the inner one when boxes nest', () => {
    expect(extractLastBoxed('\\boxed{A} then \\boxed{B}')).toBe('B');
    expect(extractLastBoxed('\\boxed{\\boxed{x}}')).toBe('x');
  });

  it('ignores escaped braces and stray closing braces', () => {
    expect(extractLastBoxed('} \\boxed{a \\} b}')).toBe('a \\} b');
  });

  it('ignores a box that never closes and falls back to the last complete one', () => {
    expect(extractLastBoxed('\\boxed{A} \\boxed{B')).toBe('A');
    expect(extractLastBoxed('\\boxed{B')).toBeNull();
  });

  it('accepts white space before the brace and a doubled backslash', () => {
    expect(extractLastBoxed('\\boxed {x}')).toBe('x');
    expect(extractLastBoxed('\\\\boxed{y}')).toBe('y');
  });

  it('removes text wrappers spanning the whole answer, and only those', () => {
    expect(extractLastBoxed('\\boxed{ \\text{Paris} }')).toBe('Paris');
    expect(extractLastBoxed('\\boxed{\\textbf{\\text{Rome}}}')).toBe('Rome');
    expect(extractLastBoxed('\\boxed{\\text{a} + \\text{b}}')).toBe('\\text{a} + \\text{b}');
  });

  it('returns null without a box', () => {
    expect(extractLastBoxed('Paris')).toBeNull();
    expect(extractLastBoxed('\\boxedParis')).toBeNull();
  });

  it('reports offsets and unclosed boxes', () => {
    // "x \boxed{a} \boxed{b": the first box spans offsets 2..11, the second starts at 12 and never closes
    expect(scanBoxed('x \\boxed{a} \\boxed{b')).toEqual({
      complete: [{ start: 2, end: 11, content: 'a' }],
      unclosedStarts: [12],
    });
  });
});
