/**
 * The tag protocol of model turns: parsing (never throws) and writing (for rule-based agents and tests).
 *
 * A memory turn in `rememr1` mode is
 *   <thinking>reasoning</thinking> <update>new memory</update> [<recall>query</recall>]
 * and a final turn is
 *   <thinking>reasoning</thinking> \boxed{answer}
 *
 * Parsing rules (memory and final turns):
 * 1. Tags are `<name>` and `</name>` for name = thinking, update or recall, case-insensitive, with optional
 *    white space before `>`. Anything else that looks like a tag is plain text.
 * 2. A block runs from its opening tag to the closing tag that balances it: tags of the same name nest,
 *    so a document passage with its own `<update>…</update>` pair, echoed inside the memory, stays part
 *    of the memory. Tags of other names inside a block are plain text.
 * 3. Everything inside a `<thinking>` block is ignored apart from its own nesting; the model may quote
 *    or discuss tags there.
 * 4. When the first tag of the turn is `</thinking>`, the text before it is the thinking (the opening
 *    tag was left out, for instance because a template put it at the end of the prompt). Noted in
 *    `issues`; the format stays valid.
 * 5. A `<thinking>` that is never closed is noted in `issues` and then ignored: the turn is read again
 *    with all thinking tags treated as plain text. The format can still be valid.
 * 6. Memory turn: the format is valid when there is exactly one `<update>` block, it is closed, its
 *    trimmed content is not empty, no `</update>` closes nothing, and there is at most one `<recall>`
 *    block, closed, with no `</recall>` that closes nothing.
 * 7. Memory after the turn (memory content `update`, the default): the trimmed `<update>` content when
 *    rule 6's update conditions hold; otherwise the previous memory, unchanged (`memoryUpdated` false). A
 *    malformed turn never erases what was known, and it earns no memory gain (its format reward is 0).
 * 7b. Memory content `response` (what the released ReMemR1 code keeps, needed to run its checkpoints): the whole
 *    response with every `<recall>…</recall>` span deleted, then trimmed, as the released code's
 *    `re.sub(r'<recall>.*?</recall>', '', response, flags=re.DOTALL).strip()` does: lower-case tags only, the
 *    shortest span, across lines, thinking and update tags kept in the text, an unclosed `<recall>` kept. An
 *    empty remainder keeps the previous memory (the released code would store ""). The format (rule 6), the
 *    recall query (rule 8) and the thinking (rule 9) are read as in `update` mode.
 * 8. Recall query: the trimmed content of the single closed `<recall>` block; null when there is none,
 *    when it is empty (noted, not invalid: "nothing to recall"), or when the recall part is malformed.
 * 9. Thinking: the trimmed contents of the closed thinking blocks, joined by a blank line; null if none.
 * 10. `memagent` mode: no tags; the whole response, trimmed, becomes the memory (whatever the memory content
 *    option). An empty response is invalid and keeps the previous memory.
 * 11. Final turn: `\boxed{…}` answers are read outside thinking blocks only (see boxed.ts for the brace
 *    rules). The answer is the last complete one (null if none or empty). The format is valid when
 *    there is exactly one complete, non-empty box and no unclosed one.
 * Text outside the blocks is allowed and ignored. `issues` lists every deviation from the protocol
 * found; `formatValid` says which of them count.
 */

import { cleanBoxedContent, scanBoxed } from './boxed';
import { PromptInputError } from './errors';
import type { AgentMode } from './mode';

export type TagName = 'thinking' | 'update' | 'recall';

/**
 * What a `rememr1` memory turn writes into the memory: `update`, the `<update>` content only (rule 7, the
 * default), or `response`, the whole response minus its `<recall>` blocks (rule 7b, the released code's).
 */
export const MEMORY_CONTENTS = ['update', 'response'] as const;

export type MemoryContent = (typeof MEMORY_CONTENTS)[number];

export const DEFAULT_MEMORY_CONTENT: MemoryContent = 'update';

/** Rule 7b: the response without its `<recall>…</recall>` spans (the released code's pattern), trimmed. */
export function responseWithoutRecalls(text: string): string {
  return text.replace(/<recall>[\s\S]*?<\/recall>/g, '').trim();
}

export interface ParsedMemoryTurn {
  /** The memory after this turn (rule 7); null only when the turn is invalid and there was no memory yet. */
  memory: string | null;
  /** True when `memory` came from this turn, false when the previous memory was kept. */
  memoryUpdated: boolean;
  recallQuery: string | null;
  thinking: string | null;
  formatValid: boolean;
  issues: string[];
}

export interface ParsedFinalTurn {
  answer: string | null;
  thinking: string | null;
  formatValid: boolean;
  issues: string[];
}

interface TagToken {
  name: TagName;
  closing: boolean;
  start: number;
  end: number;
}

interface Block {
  name: TagName;
  openStart: number;
  contentStart: number;
  contentEnd: number;
  /** Offset just after the closing tag (the end of the text for an unclosed block). */
  closeEnd: number;
  closed: boolean;
}

interface Layout {
  /** Update and recall blocks (whichever names were asked for), in order. */
  blocks: Block[];
  /** Closing tags of the asked-for names that close nothing. */
  strayClosers: TagToken[];
  thinking: string | null;
  /** [start, end) ranges of the text that are not thinking. */
  outside: Array<[number, number]>;
  issues: string[];
}

const TAG_PATTERN = /<(\/?)(thinking|update|recall)\s*>/gi;

function findTags(text: string): TagToken[] {
  const pattern = new RegExp(TAG_PATTERN.source, TAG_PATTERN.flags);
  const tokens: TagToken[] = [];
  for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
    tokens.push({
      name: match[2].toLowerCase() as TagName,
      closing: match[1] === '/',
      start: match.index,
      end: match.index + match[0].length,
    });
  }
  return tokens;
}

/** Rule 2: pairs tags of the structural names into blocks; other tags are text. */
function scanBlocks(
  textLength: number,
  tags: readonly TagToken[],
  structural: ReadonlySet<TagName>,
): { blocks: Block[]; strayClosers: TagToken[] } {
  const blocks: Block[] = [];
  const strayClosers: TagToken[] = [];
  let open: { name: TagName; openStart: number; contentStart: number; depth: number } | null = null;
  for (const tag of tags) {
    if (!structural.has(tag.name)) continue;
    if (open === null) {
      if (tag.closing) strayClosers.push(tag);
      else open = { name: tag.name, openStart: tag.start, contentStart: tag.end, depth: 1 };
    } else if (tag.name === open.name) {
      open.depth += tag.closing ? -1 : 1;
      if (open.depth === 0) {
        blocks.push({
          name: open.name,
          openStart: open.openStart,
          contentStart: open.contentStart,
          contentEnd: tag.start,
          closeEnd: tag.end,
          closed: true,
        });
        open = null;
      }
    }
  }
  if (open !== null) {
    blocks.push({
      name: open.name,
      openStart: open.openStart,
      contentStart: open.contentStart,
      contentEnd: textLength,
      closeEnd: textLength,
      closed: false,
    });
  }
  return { blocks, strayClosers };
}

/** Rules 1–5 and 9: finds the thinking and the blocks of `bodyNames` outside it. */
function layOut(text: string, bodyNames: readonly TagName[]): Layout {
  const issues: string[] = [];
  const relevant = new Set<TagName>(['thinking', ...bodyNames]);
  let tags = findTags(text).filter((tag) => relevant.has(tag.name));
  const thinkingRanges: Array<[number, number, number, number]> = []; // block start, content start, content end, block end

  const first = tags[0];
  if (first !== undefined && first.name === 'thinking' && first.closing) {
    issues.push('no opening <thinking>: the text before the first </thinking> is taken as the thinking');
    thinkingRanges.push([0, 0, first.start, first.end]);
    tags = tags.slice(1);
  }

  let scan = scanBlocks(text.length, tags, relevant);
  const last = scan.blocks[scan.blocks.length - 1];
  if (last !== undefined && last.name === 'thinking' && !last.closed) {
    issues.push('<thinking> is never closed: thinking tags are ignored and the turn is read without them');
    scan = scanBlocks(text.length, tags, new Set(bodyNames));
  }

  const blocks: Block[] = [];
  for (const block of scan.blocks) {
    if (block.name === 'thinking') {
      thinkingRanges.push([block.openStart, block.contentStart, block.contentEnd, block.closeEnd]);
    } else {
      blocks.push(block);
    }
  }
  const strayClosers: TagToken[] = [];
  for (const tag of scan.strayClosers) {
    if (tag.name === 'thinking') issues.push('a </thinking> closes no open <thinking>');
    else strayClosers.push(tag);
  }

  const parts: string[] = [];
  const outside: Array<[number, number]> = [];
  let cursor = 0;
  for (const [blockStart, contentStart, contentEnd, blockEnd] of thinkingRanges) {
    const part = text.slice(contentStart, contentEnd).trim();
    if (part !== '') parts.push(part);
    if (blockStart > cursor) outside.push([cursor, blockStart]);
    cursor = blockEnd;
  }
  if (cursor < text.length) outside.push([cursor, text.length]);
  return { blocks, strayClosers, thinking: parts.length > 0 ? parts.join('\n\n') : null, outside, issues };
}

/**
 * Reads a memory turn (rules above). `previousMemory` is the memory shown in this turn's prompt
 * (null at the first step); an invalid turn keeps it.
 */
export function parseMemoryTurn(
  text: string,
  mode: AgentMode,
  previousMemory: string,
  memoryContent?: MemoryContent,
): ParsedMemoryTurn & { memory: string };
export function parseMemoryTurn(
  text: string,
  mode: AgentMode,
  previousMemory?: string | null,
  memoryContent?: MemoryContent,
): ParsedMemoryTurn;
export function parseMemoryTurn(
  text: string,
  mode: AgentMode,
  previousMemory: string | null = null,
  memoryContent: MemoryContent = DEFAULT_MEMORY_CONTENT,
): ParsedMemoryTurn {
  if (mode === 'memagent') {
    const memory = text.trim();
    if (memory === '') {
      return {
        memory: previousMemory,
        memoryUpdated: false,
        recallQuery: null,
        thinking: null,
        formatValid: false,
        issues: ['the response is empty: the memory is unchanged'],
      };
    }
    return { memory, memoryUpdated: true, recallQuery: null, thinking: null, formatValid: true, issues: [] };
  }

  const layout = layOut(text, ['update', 'recall']);
  const issues = layout.issues;
  const updates = layout.blocks.filter((block) => block.name === 'update');
  const recalls = layout.blocks.filter((block) => block.name === 'recall');

  // In `response` mode a bad update block does not decide the memory (rule 7b), so the issues do not say so.
  const unchanged = memoryContent === 'update' ? ': the memory is unchanged' : '';
  let newMemory: string | null = null;
  if (updates.length === 0) {
    issues.push(`no <update> block${unchanged}`);
  } else if (updates.length > 1) {
    issues.push(`${updates.length} <update> blocks, exactly one expected${unchanged}`);
  } else if (!updates[0].closed) {
    issues.push(`<update> is never closed (output cut off?)${unchanged}`);
  } else {
    const content = text.slice(updates[0].contentStart, updates[0].contentEnd).trim();
    if (content === '') issues.push(`the <update> block is empty${unchanged}`);
    else newMemory = content;
  }
  if (layout.strayClosers.some((tag) => tag.name === 'update')) {
    issues.push(`a </update> closes no open <update>${unchanged}`);
    newMemory = null;
  }
  const updateValid = newMemory !== null;
  if (memoryContent === 'response') {
    newMemory = responseWithoutRecalls(text);
    if (newMemory === '') {
      newMemory = null;
      issues.push('the response is empty without its <recall> blocks: the memory is unchanged');
    }
  }

  let recallValid = true;
  let recallQuery: string | null = null;
  if (recalls.length > 1) {
    recallValid = false;
    issues.push(`${recalls.length} <recall> blocks, at most one expected: no recall query`);
  } else if (recalls.length === 1) {
    if (!recalls[0].closed) {
      recallValid = false;
      issues.push('<recall> is never closed (output cut off?): no recall query');
    } else {
      const content = text.slice(recalls[0].contentStart, recalls[0].contentEnd).trim();
      if (content === '') issues.push('the <recall> block is empty: no recall query');
      else recallQuery = content;
    }
  }
  if (layout.strayClosers.some((tag) => tag.name === 'recall')) {
    recallValid = false;
    recallQuery = null;
    issues.push('a </recall> closes no open <recall>: no recall query');
  }

  return {
    memory: newMemory ?? previousMemory,
    memoryUpdated: newMemory !== null,
    recallQuery,
    thinking: layout.thinking,
    formatValid: updateValid && recallValid,
    issues,
  };
}

/** Reads a final turn: the answer of its last `\boxed{…}` outside thinking (rule 11). */
export function parseFinalTurn(text: string): ParsedFinalTurn {
  const layout = layOut(text, []);
  const issues = layout.issues;
  const boxes: string[] = [];
  let unclosed = 0;
  for (const [start, end] of layout.outside) {
    const scan = scanBoxed(text.slice(start, end));
    for (const box of scan.complete) boxes.push(box.content);
    unclosed += scan.unclosedStarts.length;
  }
  if (unclosed > 0) issues.push(`${unclosed} \\boxed{ never closed (output cut off?)`);
  if (boxes.length === 0) {
    issues.push(
      layout.thinking !== null && scanBoxed(layout.thinking).complete.length > 0
        ? 'the only \\boxed{…} answers are inside <thinking>: no answer'
        : 'no \\boxed{…} answer',
    );
  } else if (boxes.length > 1) {
    issues.push(`${boxes.length} \\boxed{…} answers, exactly one expected: the last one is used`);
  }
  const last = boxes.length > 0 ? cleanBoxedContent(boxes[boxes.length - 1]) : null;
  if (last === '') issues.push('the \\boxed{} answer is empty');
  const answer = last === '' ? null : last;
  return {
    answer,
    thinking: layout.thinking,
    formatValid: boxes.length === 1 && unclosed === 0 && answer !== null,
    issues,
  };
}

export interface MemoryTurnParts {
  thinking?: string | null;
  memory: string;
  recallQuery?: string | null;
}

/**
 * Writes a memory turn the way a model following the protocol would. Throws a {@link PromptInputError}
 * when the parts cannot be carried by the protocol (for example a memory holding an unmatched
 * `</update>`, or an empty memory), checked by parsing the result back.
 */
export function renderMemoryTurn(parts: MemoryTurnParts, mode: AgentMode): string {
  const thinking = parts.thinking ?? null;
  const recallQuery = parts.recallQuery ?? null;
  if (mode === 'memagent') {
    if (thinking !== null || recallQuery !== null) {
      throw new PromptInputError(
        'memagent turns carry only the memory: pass thinking and recallQuery as null',
      );
    }
  }
  if (recallQuery !== null && recallQuery.trim() === '') {
    throw new PromptInputError('recallQuery must have visible text, or be null for a turn without recall');
  }
  const text =
    mode === 'memagent'
      ? parts.memory
      : [
          thinking === null ? '' : `<thinking>\n${thinking}\n</thinking>\n`,
          `<update>\n${parts.memory}\n</update>`,
          recallQuery === null ? '' : `\n<recall>${recallQuery}</recall>`,
        ].join('');
  const parsed = parseMemoryTurn(text, mode, null);
  const expectedThinking = thinking === null || thinking.trim() === '' ? null : thinking.trim();
  if (
    !parsed.formatValid ||
    parsed.memory !== parts.memory.trim() ||
    parsed.recallQuery !== (recallQuery === null ? null : recallQuery.trim()) ||
    parsed.thinking !== expectedThinking
  ) {
    const why =
      parsed.issues.length > 0 ? parsed.issues.join('; ') : 'a part contains text that reads as a tag';
    throw new PromptInputError(`this memory turn cannot be written in the tag protocol: ${why}`);
  }
  return text;
}

export interface FinalTurnParts {
  thinking?: string | null;
  answer: string;
}

/** Writes a final turn (`<thinking>` then `\boxed{answer}`); throws like {@link renderMemoryTurn}. */
export function renderFinalTurn(parts: FinalTurnParts): string {
  const thinking = parts.thinking ?? null;
  const text = `${thinking === null ? '' : `<thinking>\n${thinking}\n</thinking>\n`}\\boxed{${parts.answer}}`;
  const parsed = parseFinalTurn(text);
  const expectedThinking = thinking === null || thinking.trim() === '' ? null : thinking.trim();
  if (
    !parsed.formatValid ||
    parsed.answer !== cleanBoxedContent(parts.answer) ||
    parsed.thinking !== expectedThinking
  ) {
    const why =
      parsed.issues.length > 0
        ? parsed.issues.join('; ')
        : 'a part contains text that reads as a tag or a box';
    throw new PromptInputError(`this final turn cannot be written in the tag protocol: ${why}`);
  }
  return text;
}
