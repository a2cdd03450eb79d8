/**
 * `\boxed{…}` answers.
 *
 * Rules:
 * - `\boxed` followed by optional white space and `{` opens a boxed answer; its content ends at the `}`
 *   that balances that `{`, counting nested braces.
 * - `\{` and `\}` are escaped (literal) braces: they do not count. Any other unmatched `}` is ignored.
 * - `\\boxed{` (a doubled backslash, as JSON-escaped output has) also opens a box.
 * - A `\boxed{` whose brace never closes is unclosed (typically output cut off at the token limit); it
 *   yields no answer.
 * - "Last" means the complete box that starts last, so `\boxed{\boxed{x}}` gives `x` (as the common
 *   `last_boxed_only_string` helpers do).
 * - The answer is the content trimmed, with whole-answer text wrappers removed: `\boxed{\text{Paris}}`
 *   gives `Paris` (`\text`, `\textbf`, `\textit`, `\textrm`, `\mathrm`, `\mbox`). Without this, the
 *   normalisation of the metrics would read the wrapper as the word "textparis".
 * One pass over the text, linear in its length.
 */

export interface BoxedSpan {
  /** Offset of the backslash of `\boxed`. */
  start: number;
  /** Offset just after the closing brace. */
  end: number;
  /** The raw text between the braces. */
  content: string;
}

export interface BoxedScan {
  /** Complete boxes, ordered by start offset. */
  complete: BoxedSpan[];
  /** Start offsets of boxes whose brace never closes. */
  unclosedStarts: number[];
}

const BOXED_COMMAND = '\\boxed';

/** Finds every complete and unclosed `\boxed{…}` in `text`. */
export function scanBoxed(text: string): BoxedScan {
  const complete: BoxedSpan[] = [];
  // One entry per open `{`: the box it belongs to, or null for an ordinary brace.
  const open: Array<{ start: number; contentStart: number } | null> = [];
  let index = 0;
  while (index < text.length) {
    const char = text[index];
    if (char === '\\') {
      if (text.startsWith(BOXED_COMMAND, index)) {
        let brace = index + BOXED_COMMAND.length;
        while (brace < text.length && /\s/.test(text[brace])) brace += 1;
        if (text[brace] === '{') {
          open.push({ start: index, contentStart: brace + 1 });
          index = brace + 1;
          continue;
        }
      }
      const next = text[index + 1];
      index += next === '{' || next === '}' ? 2 : 1;
      continue;
    }
    if (char === '{') {
      open.push(null);
    } else if (char === '}' && open.length > 0) {
      const box = open.pop();
      if (box)
        complete.push({ start: box.start, end: index + 1, content: text.slice(box.contentStart, index) });
    }
    index += 1;
  }
  complete.sort((a, b) => a.start - b.start);
  const unclosedStarts: number[] = [];
  for (const entry of open) if (entry) unclosedStarts.push(entry.start);
  return { complete, unclosedStarts };
}

const TEXT_WRAPPER = /^\\(?:text|textbf|textit|textrm|mathrm|mbox)\s*\{/;

/** Trims a boxed content and removes text wrappers that span all of it (repeatedly). */
export function cleanBoxedContent(content: string): string {
  let answer = content.trim();
  for (;;) {
    const wrapper = TEXT_WRAPPER.exec(answer);
    if (!wrapper || !answer.endsWith('}')) return answer;
    const inner = answer.slice(wrapper[0].length, -1);
    if (!bracesBalance(inner)) return answer;
    answer = inner.trim();
  }
}

/** True when every unescaped `{` in `text` is closed in order and no `}` closes nothing. */
function bracesBalance(text: string): boolean {
  let depth = 0;
  for (let index = 0; index < text.length; index += 1) {
    const char = text[index];
    if (char === '\\') {
      index += 1;
    } else if (char === '{') {
      depth += 1;
    } else if (char === '}') {
      depth -= 1;
      if (depth < 0) return false;
    }
  }
  return depth === 0;
}

/** The answer in the last complete `\boxed{…}` of `text` (rules above), or null when there is none. */
export function extractLastBoxed(text: string): string | null {
  const { complete } = scanBoxed(text);
  const last = complete[complete.length - 1];
  return last ? cleanBoxedContent(last.content) : null;
}
