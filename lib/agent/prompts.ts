/**
 * Prompts of the agent loop, as data.
 *
 * A prompt template is text with placeholders in Python `str.format` syntax, so that a template taken
 * from a Python code base (for instance the one a released checkpoint was trained with) can be used
 * as it is once its placeholder names match ours:
 * - `{question}`, `{recalled}`, `{memory}`, `{chunk}` are replaced by their values;
 * - `{{` and `}}` write literal braces (so `\boxed{{}}` in a template shows `\boxed{}` to the model);
 * - any other brace is an error, reported with its line and column.
 * Substitution is a single pass: a value that itself contains `{memory}` (a document quoting a
 * template, say) is inserted literally and never expanded.
 *
 * Which placeholders a template must (✓) and must not (✗) contain:
 *                    question  recalled         memory  chunk
 *   memoryStep       ✓         ✓ rememr1 only   ✓       ✓
 *   final            ✓         ✓ rememr1 only   ✓       ✗
 * In `memagent` mode `{recalled}` is an error: that mode has no callback.
 *
 * The builders return the user message; the model runtime applies the chat template.
 */

import { PromptInputError, PromptTemplateError } from './errors';
import { assertAgentMode, type AgentMode } from './mode';
import type { RecalledMemory } from './retrieval';

export interface PromptTemplates {
  memoryStep: string;
  final: string;
}

export type TemplateKind = keyof PromptTemplates;
export type Placeholder = 'question' | 'recalled' | 'memory' | 'chunk';
export const PLACEHOLDERS: readonly Placeholder[] = ['question', 'recalled', 'memory', 'chunk'];

/** Shown as the memory at the first step, before any memory was written. */
export const FIRST_STEP_MEMORY = 'No memory yet: this is the first section.';
/** Shown as the recalled memory when nothing was recalled (first step, no query, or no match). */
export const NOTHING_RECALLED = 'Nothing recalled.';

const FORMAT_INSTRUCTIONS_REMEMR1 = `Reply in this format:
<thinking>your reasoning about this section</thinking>
<update>your new memory</update>
<recall>what you need from an earlier memory</recall>
Write the <recall> part only when this section points to evidence you saw earlier and no longer hold in your memory; leave it out otherwise.`;

const REMEMR1_TEMPLATES: PromptTemplates = {
  memoryStep: `You are answering a question about a long document that you read one section at a time. You cannot go back to earlier sections: what you know about them is your memory, which you rewrite after each section. You can also ask to see one of your earlier memories again.

Question:
{question}

Earlier memory you asked to see again:
{recalled}

Your memory so far:
{memory}

Next section of the document:
{chunk}

Rewrite your memory so that it keeps everything that may help answer the question, from your memory so far, from the earlier memory and from this section. The new memory replaces the old one, so it must be complete on its own.

${FORMAT_INSTRUCTIONS_REMEMR1}`,
  final: `You have read the whole document. Answer the question from your memory.

Question:
{question}

Earlier memory you asked to see again:
{recalled}

Your memory:
{memory}

Reason inside <thinking></thinking>, then write only the final answer inside \\boxed{{}}, for example \\boxed{{your answer}}.`,
};

const MEMAGENT_TEMPLATES: PromptTemplates = {
  memoryStep: `You are answering a question about a long document that you read one section at a time. You cannot go back to earlier sections: what you know about them is your memory, which you rewrite after each section.

Question:
{question}

Your memory so far:
{memory}

Next section of the document:
{chunk}

Write your new memory: everything from your memory so far and from this section that may help answer the question. It replaces the old memory, so it must be complete on its own. Reply with the new memory only.`,
  final: `You have read the whole document. Answer the question from your memory.

Question:
{question}

Your memory:
{memory}

Write only the final answer inside \\boxed{{}}, for example \\boxed{{your answer}}.`,
};

/** The project's own templates for a mode. */
export function defaultTemplates(mode: AgentMode): PromptTemplates {
  return mode === 'memagent' ? { ...MEMAGENT_TEMPLATES } : { ...REMEMR1_TEMPLATES };
}

interface CompiledTemplate {
  /** Literal text around the placeholders: `literals.length === names.length + 1`. */
  literals: string[];
  names: Placeholder[];
}

const MAX_REPORTED_PROBLEMS = 10;

function position(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `line ${line}, column ${column}`;
}

/** Parses `str.format` syntax; returns the problems found instead of throwing. */
function compileTemplate(text: string): { compiled: CompiledTemplate; problems: string[] } {
  const literals: string[] = [];
  const names: Placeholder[] = [];
  const problems: string[] = [];
  let literal = '';
  let index = 0;
  while (index < text.length) {
    const char = text[index];
    if (char === '{') {
      if (text[index + 1] === '{') {
        literal += '{';
        index += 2;
        continue;
      }
      const close = text.indexOf('}', index + 1);
      const nextOpen = text.indexOf('{', index + 1);
      if (close < 0 || (nextOpen >= 0 && nextOpen < close)) {
        problems.push(
          `"{" at ${position(text, index)} opens no placeholder (write "{{" for a literal brace)`,
        );
        literal += '{';
        index += 1;
        continue;
      }
      const field = text.slice(index + 1, close);
      if ((PLACEHOLDERS as readonly string[]).includes(field)) {
        literals.push(literal);
        names.push(field as Placeholder);
        literal = '';
      } else if (field === '') {
        problems.push(`empty placeholder "{}" at ${position(text, index)} (write "{{}}" for literal braces)`);
      } else if (/[:!]/.test(field)) {
        problems.push(
          `"{${field}}" at ${position(text, index)}: format specifications and conversions are not supported`,
        );
      } else {
        problems.push(
          `unknown placeholder "{${field}}" at ${position(text, index)}; expected one of ${PLACEHOLDERS.map((name) => `{${name}}`).join(', ')} (write "{{" and "}}" for literal braces)`,
        );
      }
      index = close + 1;
    } else if (char === '}') {
      if (text[index + 1] === '}') {
        literal += '}';
        index += 2;
      } else {
        problems.push(`single "}" at ${position(text, index)} (write "}}" for a literal brace)`);
        literal += '}';
        index += 1;
      }
    } else {
      literal += char;
      index += 1;
    }
  }
  literals.push(literal);
  return { compiled: { literals, names }, problems };
}

function placeholderRules(
  kind: TemplateKind,
  mode: AgentMode | undefined,
): { required: Placeholder[]; forbidden: Placeholder[] } {
  const required: Placeholder[] = ['question', 'memory'];
  const forbidden: Placeholder[] = [];
  if (kind === 'memoryStep') required.push('chunk');
  else forbidden.push('chunk');
  if (mode === 'rememr1') required.push('recalled');
  else if (mode === 'memagent') forbidden.push('recalled');
  return { required, forbidden };
}

/**
 * Checks one template; returns one sentence per problem (empty when the template is usable).
 * `kind` says which prompt it is for, since the memory-step and final prompts need different
 * placeholders. Without `mode`, only the rules shared by both modes are checked.
 */
export function templateProblems(text: string, kind: TemplateKind, mode?: AgentMode): string[] {
  const { compiled, problems } = compileTemplate(text);
  const used = new Set(compiled.names);
  const rules = placeholderRules(kind, mode);
  for (const name of rules.required) {
    if (!used.has(name)) problems.push(`missing placeholder {${name}}`);
  }
  for (const name of rules.forbidden) {
    if (used.has(name)) {
      problems.push(
        name === 'chunk'
          ? 'placeholder {chunk} is not available in the final prompt (the document has been read)'
          : `placeholder {${name}} is not available in memagent mode (it has no callback)`,
      );
    }
  }
  return problems;
}

/** Checks both templates; the problems are prefixed with the template they belong to. */
export function validatePromptTemplates(templates: PromptTemplates, mode?: AgentMode): string[] {
  return (['memoryStep', 'final'] as const).flatMap((kind) =>
    templateProblems(templates[kind], kind, mode).map((problem) => `${kind}: ${problem}`),
  );
}

function throwIfProblems(context: string, problems: string[]): void {
  if (problems.length === 0) return;
  const shown = problems.slice(0, MAX_REPORTED_PROBLEMS);
  if (problems.length > shown.length) shown.push(`… and ${problems.length - shown.length} more`);
  throw new PromptTemplateError(context, shown);
}

const SECTION_HEADER = /^=== *(memoryStep|final) *===[ \t]*$/;

/**
 * Reads user-supplied templates and validates them for `mode`; throws a {@link PromptTemplateError}
 * listing every problem. Without `mode`, the rules that depend on it ({recalled}) are checked when a
 * prompt is built. Two formats are accepted:
 * - JSON: `{"memoryStep": "…", "final": "…"}` (no other keys);
 * - sections: a line `=== memoryStep ===`, the template, a line `=== final ===`, the template. Each
 *   template is the text between its header line and the next header line (or the end), with the
 *   line break before the next header and one final line break of the file left out. Line breaks
 *   are read as `\n` whatever the file uses. Nothing but blank lines may come before the first header.
 * The format is JSON when the first non-blank character is `{`.
 */
export function parsePromptTemplates(text: string, mode?: AgentMode): PromptTemplates {
  const templates = text.trimStart().startsWith('{') ? parseJsonTemplates(text) : parseSectionTemplates(text);
  const context =
    mode === undefined
      ? 'the prompt templates are not usable'
      : `the prompt templates are not usable in ${mode} mode`;
  throwIfProblems(context, validatePromptTemplates(templates, mode));
  return templates;
}

function parseJsonTemplates(text: string): PromptTemplates {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new PromptTemplateError('the prompt templates are not valid JSON', [(error as Error).message]);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PromptTemplateError('the prompt templates are not usable', [
      'expected a JSON object {"memoryStep": "…", "final": "…"}',
    ]);
  }
  const record = value as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(record)) {
    if (key !== 'memoryStep' && key !== 'final') {
      problems.push(`unknown key "${key}"; expected only "memoryStep" and "final"`);
    }
  }
  for (const key of ['memoryStep', 'final'] as const) {
    if (typeof record[key] !== 'string') problems.push(`"${key}" must be a string`);
  }
  throwIfProblems('the prompt templates are not usable', problems);
  return { memoryStep: record.memoryStep as string, final: record.final as string };
}

function parseSectionTemplates(text: string): PromptTemplates {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const sections = new Map<string, string[]>();
  const problems: string[] = [];
  let current: string[] | null = null;
  lines.forEach((line, index) => {
    const header = SECTION_HEADER.exec(line);
    if (header) {
      if (sections.has(header[1])) problems.push(`section "${header[1]}" appears twice (line ${index + 1})`);
      current = [];
      sections.set(header[1], current);
    } else if (current !== null) {
      current.push(line);
    } else if (line.trim() !== '') {
      problems.push(
        `line ${index + 1} comes before the first "=== memoryStep ===" or "=== final ===" header`,
      );
    }
  });
  for (const key of ['memoryStep', 'final']) {
    if (!sections.has(key)) problems.push(`missing section "=== ${key} ==="`);
  }
  throwIfProblems('the prompt templates are not usable', problems);
  const body = (key: string): string => (sections.get(key) ?? []).join('\n');
  const templates = { memoryStep: body('memoryStep'), final: body('final') };
  // The file's final line break belongs to no template.
  const lastKey = [...sections.keys()].pop() as TemplateKind;
  if (text.endsWith('\n')) templates[lastKey] = templates[lastKey].replace(/\n$/, '');
  return templates;
}

function render(
  template: string,
  kind: TemplateKind,
  mode: AgentMode,
  values: Record<Placeholder, string>,
): string {
  throwIfProblems(
    `the ${kind} template is not usable in ${mode} mode`,
    templateProblems(template, kind, mode),
  );
  const { literals, names } = compileTemplate(template).compiled;
  let out = literals[0];
  names.forEach((name, index) => {
    out += values[name] + literals[index + 1];
  });
  return out;
}

function checkMode(mode: AgentMode, recalled: string | null | undefined): void {
  assertAgentMode(mode);
  if (mode === 'memagent' && recalled !== null && recalled !== undefined) {
    throw new PromptInputError('memagent mode has no recalled memory: pass recalled as null');
  }
}

export interface MemoryStepPromptInput {
  question: string;
  /** The memory recalled by the previous step's query (see {@link formatRecalled}); null when none. */
  recalled?: string | null;
  /** The current memory; null at the first step. */
  memory: string | null;
  chunk: string;
  mode: AgentMode;
  /** Defaults to {@link defaultTemplates}(mode). */
  templates?: PromptTemplates;
}

/** The user message of one memory step. Throws {@link PromptTemplateError} for an unusable template. */
export function buildMemoryStepPrompt(input: MemoryStepPromptInput): string {
  checkMode(input.mode, input.recalled);
  const templates = input.templates ?? defaultTemplates(input.mode);
  return render(templates.memoryStep, 'memoryStep', input.mode, {
    question: input.question,
    recalled: input.recalled ?? NOTHING_RECALLED,
    memory: input.memory ?? FIRST_STEP_MEMORY,
    chunk: input.chunk,
  });
}

export type FinalPromptInput = Omit<MemoryStepPromptInput, 'chunk'>;

/** The user message of the final (answer) turn. */
export function buildFinalPrompt(input: FinalPromptInput): string {
  checkMode(input.mode, input.recalled);
  const templates = input.templates ?? defaultTemplates(input.mode);
  return render(templates.final, 'final', input.mode, {
    question: input.question,
    recalled: input.recalled ?? NOTHING_RECALLED,
    memory: input.memory ?? FIRST_STEP_MEMORY,
    chunk: '',
  });
}

/**
 * The text shown as the recalled memory for retrieval results: null when there are none (the
 * builders then show {@link NOTHING_RECALLED}), the memory itself for one result (the paper's
 * top-1 setting), and for several results each one under a "Memory from step N:" line, oldest first.
 */
export function formatRecalled(results: readonly RecalledMemory[]): string | null {
  if (results.length === 0) return null;
  if (results.length === 1) return results[0].text;
  return [...results]
    .sort((a, b) => a.step - b.step)
    .map((result) => `Memory from step ${result.step}:\n${result.text}`)
    .join('\n\n');
}

/**
 * The inverse of the builders: the values a prompt of `template` was filled with, or null when `text` is not
 * such a prompt (for policies that read prompts by rule). A placeholder used twice must hold the same value.
 */
export function readPrompt(text: string, template: string): Partial<Record<Placeholder, string>> | null {
  const { compiled, problems } = compileTemplate(template);
  if (problems.length > 0) return null;
  const escape = (literal: string): string => literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  let pattern = `^${escape(compiled.literals[0])}`;
  compiled.names.forEach((_, index) => {
    pattern += `([\\s\\S]*?)${escape(compiled.literals[index + 1])}`;
  });
  const match = new RegExp(`${pattern}$`).exec(text);
  if (match === null) return null;
  const values: Partial<Record<Placeholder, string>> = {};
  for (const [index, name] of compiled.names.entries()) {
    const value = match[index + 1];
    if (values[name] !== undefined && values[name] !== value) return null;
    values[name] = value;
  }
  return values;
}
