/**
 * Rule-based agents for the distant-evidence benchmark (lib/data/distant-evidence.ts): the reference
 * accuracies and the supervised traces for warm starts. Pure: a prompt built by the built-in templates in,
 * the response text out.
 *
 * Memory (both variants): the facts linked to the question's chain (followed from the question's entity
 * through the facts in memory, recalled memory and chunk), then the most recent other facts, newest first,
 * whole sentences only, within `memoryWords` words. So unlinked facts survive a chunk or two and are then
 * dropped, which is what makes evidence read before it is linked fall out of a bounded memory.
 *
 * Callback: when a step links a new entity whose own fact is not in memory, the turn asks for it with
 * `<recall>entity</recall>`; the memory that comes back is searched for facts that extend the chain (the
 * rest of it is not kept). The forward-only variant never recalls.
 *
 * Final turn: follow the chain through memory and recalled memory; `\boxed{town}` when it reaches the end,
 * `\boxed{unknown}` otherwise.
 */
import {
  factSentence,
  followChain,
  parseFacts,
  parseQuestion,
  type Fact,
  type ParsedQuestion,
} from '../data/distant-evidence';
import { FIRST_STEP_MEMORY, NOTHING_RECALLED, defaultTemplates, readPrompt, type Placeholder } from './prompts';
import type { AgentMode } from './mode';

export type RuleVariant = 'forward' | 'callback';

export interface RuleAgentOptions {
  variant: RuleVariant;
  /** Most words the memory holds (linked facts are kept even beyond it). */
  memoryWords: number;
}

export const DEFAULT_RULE_MEMORY_WORDS = 48;

/** Written as the memory when no fact is worth keeping (an empty memory would be an invalid turn). */
export const EMPTY_RULE_MEMORY = 'Nothing relevant yet.';
/** The answer when the chain does not reach a town. */
export const UNKNOWN_ANSWER = 'unknown';

export class RuleAgentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuleAgentError';
  }
}

type PromptKind = 'memoryStep' | 'final';

interface ReadPrompt {
  kind: PromptKind;
  mode: AgentMode;
  values: Partial<Record<Placeholder, string>>;
}

const TEMPLATE_CHOICES: ReadonlyArray<{ kind: PromptKind; mode: AgentMode }> = [
  { kind: 'memoryStep', mode: 'rememr1' },
  { kind: 'final', mode: 'rememr1' },
  { kind: 'memoryStep', mode: 'memagent' },
  { kind: 'final', mode: 'memagent' },
];

function readAnyPrompt(prompt: string): ReadPrompt {
  for (const choice of TEMPLATE_CHOICES) {
    const values = readPrompt(prompt, defaultTemplates(choice.mode)[choice.kind]);
    if (values !== null) return { ...choice, values };
  }
  throw new RuleAgentError('the rule agent reads only prompts of the built-in templates, and this prompt matches none of them');
}

function factsOf(text: string | undefined, placeholder: string): Fact[] {
  return text === undefined || text === placeholder ? [] : parseFacts(text);
}

function sameFact(a: Fact, b: Fact): boolean {
  return a.subject === b.subject && a.relation === b.relation && a.object === b.object;
}

function words(sentence: string): number {
  return sentence.split(' ').length;
}

/** Linked facts in chain order, then the other facts in the order given, within the word budget. */
function boundedMemory(linked: readonly Fact[], others: readonly Fact[], memoryWords: number): string {
  const kept = linked.map(factSentence);
  let used = kept.reduce((sum, sentence) => sum + words(sentence), 0);
  for (const fact of others) {
    if (linked.some((entry) => sameFact(entry, fact))) continue;
    const sentence = factSentence(fact);
    if (kept.includes(sentence)) continue;
    if (used + words(sentence) > memoryWords) break;
    kept.push(sentence);
    used += words(sentence);
  }
  return kept.length === 0 ? EMPTY_RULE_MEMORY : kept.join(' ');
}

function progress(question: ParsedQuestion, linked: number, frontier: string, answer: string | null): string {
  const hops = question.relations.length;
  return answer !== null
    ? `The ${hops} facts from ${question.start} are linked; the answer is ${answer}.`
    : `${linked} of ${hops} facts from ${question.start} are linked; next I need the fact about ${frontier}.`;
}

function memoryTurn(read: ReadPrompt, question: ParsedQuestion, options: RuleAgentOptions): string {
  const memoryFacts = factsOf(read.values.memory, FIRST_STEP_MEMORY);
  const recalledFacts = factsOf(read.values.recalled, NOTHING_RECALLED);
  const chunkFacts = factsOf(read.values.chunk, '');
  const before = followChain(question, memoryFacts);
  const after = followChain(question, [...memoryFacts, ...recalledFacts, ...chunkFacts]);
  // Newest first: this chunk's facts, then the memory's unlinked ones in their order; recalled ones only if linked.
  const memory = boundedMemory(after.linked, [...chunkFacts, ...memoryFacts], options.memoryWords);
  if (read.mode === 'memagent') return memory;
  const recall =
    options.variant === 'callback' && after.answer === null && after.frontier !== question.start && after.frontier !== before.frontier
      ? after.frontier
      : null;
  const thinking = progress(question, after.linked.length, after.frontier, after.answer);
  return `<thinking>${thinking}</thinking>\n<update>${memory}</update>${recall === null ? '' : `\n<recall>${recall}</recall>`}`;
}

function finalTurn(read: ReadPrompt, question: ParsedQuestion): string {
  const facts = [...factsOf(read.values.memory, FIRST_STEP_MEMORY), ...factsOf(read.values.recalled, NOTHING_RECALLED)];
  const chain = followChain(question, facts);
  const boxed = `\\boxed{${chain.answer ?? UNKNOWN_ANSWER}}`;
  if (read.mode === 'memagent') return boxed;
  return `<thinking>${progress(question, chain.linked.length, chain.frontier, chain.answer)}</thinking>\n${boxed}`;
}

/** The rule agent's response to one prompt (a memory step or the final turn, in either mode). */
export function ruleAgentResponse(prompt: string, options: RuleAgentOptions): string {
  if (!Number.isInteger(options.memoryWords) || options.memoryWords < 1) {
    throw new RuleAgentError(`memoryWords must be a positive integer, got ${options.memoryWords}`);
  }
  const read = readAnyPrompt(prompt);
  const question = parseQuestion(read.values.question ?? '');
  if (question === null) {
    throw new RuleAgentError(`the rule agent answers only distant-evidence questions ("In which town was … born?"), not "${(read.values.question ?? '').slice(0, 80)}"`);
  }
  return read.kind === 'final' ? finalTurn(read, question) : memoryTurn(read, question, options);
}
