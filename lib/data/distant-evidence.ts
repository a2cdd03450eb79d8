/**
 * The distant-evidence benchmark (ARCHITECTURE.md §7, issue 15): long documents in which the facts a multi-hop
 * question needs lie chunks apart, among distractor facts of the same shape and filler text.
 *
 * A question follows a chain of facts from an entity it names to a town:
 *   "Summer Music Fair is held at Stone Gold House."   (fair → landmark)
 *   "Stone Gold House was built by Red River Company." (landmark → organisation)
 *   "Red River Company was founded by Mark Stone."     (organisation → person)
 *   "Mark Stone was born in North Port."               (person → town, always the last hop)
 * "In which town was the founder of Red River Company born?" needs the last two (2 hops).
 *
 * Why forward-only memory fails here and callback memory need not: every chunk carries several distractor facts
 * about other entities. A bounded memory can keep the facts linked to the question plus only the few most recent
 * other facts. When the evidence needed last comes first ("reverse" order, the paper's hard case), the fact
 * "Mark Stone was born in North Port." is not yet linked to anything when it is read; it sits among the recent
 * facts of one or two memories and is pushed out. When "Red River Company was founded by Mark Stone." arrives
 * chunks later, a forward-only agent no longer has it; an agent that recalls "Mark Stone" from its memory history
 * gets back a memory that still held it.
 *
 * Documents are laid out in chunks of exactly `chunkTokens` tokens of the given tokenizer (the episode's chunker
 * cuts at the same places, so no fact is ever split); every evidence fact sits in a chunk of its own choosing,
 * consecutive evidence chunks at least `minEvidenceGap` apart. The same options, split, length and index give
 * the same bytes: each row draws from its own seeded stream, so adding rows never changes the others.
 */
import { Xoshiro128 } from '../model/random';
import { SYLLABLES, capitalise } from './synthetic';

export type EntityType = 'fair' | 'landmark' | 'organisation' | 'person' | 'town';
export type RelationName = 'held' | 'built' | 'founded' | 'born';
export const EVIDENCE_ORDERS = ['forward', 'reverse', 'random'] as const;
export type EvidenceOrder = (typeof EVIDENCE_ORDERS)[number];
export const ENTITY_VOCABULARIES = ['words', 'syllables'] as const;
export type EntityVocabulary = (typeof ENTITY_VOCABULARIES)[number];

interface Relation {
  name: RelationName;
  subject: EntityType;
  object: EntityType;
  /** What stands between subject and object in a fact sentence. */
  phrase: string;
}

/** In chain order: a question of h hops uses the last h relations (so its answer is always a town). */
const RELATIONS: readonly Relation[] = [
  { name: 'held', subject: 'fair', object: 'landmark', phrase: ' is held at ' },
  { name: 'built', subject: 'landmark', object: 'organisation', phrase: ' was built by ' },
  { name: 'founded', subject: 'organisation', object: 'person', phrase: ' was founded by ' },
  { name: 'born', subject: 'person', object: 'town', phrase: ' was born in ' },
];
export const MAX_HOPS = RELATIONS.length;

export interface Fact {
  subject: string;
  relation: RelationName;
  object: string;
}

export function factSentence(fact: Fact): string {
  return `${fact.subject}${relation(fact.relation).phrase}${fact.object}.`;
}

function relation(name: RelationName): Relation {
  const found = RELATIONS.find((entry) => entry.name === name);
  if (found === undefined) throw new RangeError(`unknown relation ${name}`);
  return found;
}

const NAME = '[A-Z][a-z]+(?: [A-Z][a-z]+)*';
const FACT_PATTERN = new RegExp(`(${NAME})(${RELATIONS.map((entry) => entry.phrase).join('|')})(${NAME})\\.`, 'g');

/** Every fact sentence in `text`, in reading order. */
export function parseFacts(text: string): Fact[] {
  const facts: Fact[] = [];
  for (const match of text.matchAll(FACT_PATTERN)) {
    const found = RELATIONS.find((entry) => entry.phrase === match[2]);
    if (found !== undefined) facts.push({ subject: match[1], relation: found.name, object: match[3] });
  }
  return facts;
}

/** How the object of each non-final relation is described inside a question. */
const DESCRIPTIONS: Record<Exclude<RelationName, 'born'>, { prefix: string; suffix: string }> = {
  held: { prefix: 'the place where ', suffix: ' is held' },
  built: { prefix: 'the builder of ', suffix: '' },
  founded: { prefix: 'the founder of ', suffix: '' },
};
const QUESTION_PREFIX = 'In which town was ';
const QUESTION_SUFFIX = ' born?';

export interface ParsedQuestion {
  /** The entity the question names. */
  start: string;
  /** The relations to follow from it, in order; the last is always 'born'. */
  relations: RelationName[];
}

/** "In which town was the founder of Red River Company born?" for start "Red River Company" and 2 hops. */
export function questionText(start: string, hops: number): string {
  const chain = chainRelations(hops);
  let described = start;
  for (const entry of chain.slice(0, -1)) {
    const { prefix, suffix } = DESCRIPTIONS[entry.name as Exclude<RelationName, 'born'>];
    described = `${prefix}${described}${suffix}`;
  }
  return `${QUESTION_PREFIX}${described}${QUESTION_SUFFIX}`;
}

/** The inverse of `questionText`; null for any other text. */
export function parseQuestion(question: string): ParsedQuestion | null {
  const text = question.trim();
  if (!text.startsWith(QUESTION_PREFIX) || !text.endsWith(QUESTION_SUFFIX)) return null;
  let described = text.slice(QUESTION_PREFIX.length, text.length - QUESTION_SUFFIX.length);
  const relations: RelationName[] = ['born'];
  for (;;) {
    const next = (Object.keys(DESCRIPTIONS) as Array<keyof typeof DESCRIPTIONS>).find((name) => {
      const { prefix, suffix } = DESCRIPTIONS[name];
      return described.startsWith(prefix) && described.endsWith(suffix) && described.length > prefix.length + suffix.length;
    });
    if (next === undefined) break;
    const { prefix, suffix } = DESCRIPTIONS[next];
    described = described.slice(prefix.length, described.length - suffix.length);
    relations.unshift(next);
  }
  if (!new RegExp(`^${NAME}$`).test(described)) return null;
  const expected = chainRelations(relations.length).map((entry) => entry.name);
  if (expected.join() !== relations.join()) return null;
  return { start: described, relations };
}

function chainRelations(hops: number): readonly Relation[] {
  if (!Number.isInteger(hops) || hops < 1 || hops > MAX_HOPS) throw new RangeError(`hops must be an integer from 1 to ${MAX_HOPS}, got ${hops}`);
  return RELATIONS.slice(RELATIONS.length - hops);
}

/** Following a question's chain through facts: the facts linked to it, how far it got, and the answer if reached. */
export interface ChainState {
  linked: Fact[];
  /** The last entity reached (the question's start entity when no fact links to it). */
  frontier: string;
  answer: string | null;
}

export function followChain(question: ParsedQuestion, facts: readonly Fact[]): ChainState {
  const bySubject = new Map<string, Fact>();
  for (const fact of facts) {
    const key = `${fact.relation}\u0000${fact.subject}`;
    if (!bySubject.has(key)) bySubject.set(key, fact);
  }
  const linked: Fact[] = [];
  let frontier = question.start;
  for (const name of question.relations) {
    const fact = bySubject.get(`${name}\u0000${frontier}`);
    if (fact === undefined) return { linked, frontier, answer: null };
    linked.push(fact);
    frontier = fact.object;
  }
  return { linked, frontier, answer: frontier };
}

// ---- Entity vocabulary -------------------------------------------------------------------------------------

/**
 * Name parts: every one is a single token of the bundled tokenizer, with or without a leading space (a test
 * checks), so a fact costs about ten tokens. A name is one part from each list of its type.
 */
const WORD_PARTS: Record<EntityType, readonly (readonly string[])[]> = {
  person: [
    ['Mark', 'Will', 'May', 'Page', 'Hope', 'Hunt', 'Rich', 'Young', 'King', 'Bird', 'Wood', 'Star'],
    ['Stone', 'Hill', 'Field', 'Black', 'White', 'Green', 'North', 'West', 'Fish', 'Rock', 'Snow', 'Cross', 'Moon', 'Sun', 'Gold', 'Horse'],
  ],
  town: [
    ['North', 'South', 'East', 'West', 'Old', 'New', 'High', 'Low', 'Long', 'Far', 'Red', 'White', 'Black', 'Green'],
    ['Port', 'Water', 'Land', 'River', 'Sea', 'Town', 'City', 'Mountain', 'Tree', 'Lake', 'Farm', 'Rock', 'Field', 'Hill'],
  ],
  organisation: [
    ['Red', 'Iron', 'Gold', 'Sun', 'Moon', 'Star', 'Light', 'Fire', 'Wind', 'Snow', 'Rain', 'North', 'South', 'High', 'Old', 'New'],
    ['River', 'Stone', 'Tree', 'Horse', 'Dog', 'Door', 'Water', 'Mountain', 'Sea', 'Field'],
    ['Company', 'Group', 'School'],
  ],
  landmark: [
    ['Stone', 'Iron', 'Gold', 'Sun', 'Moon', 'Star', 'Tree', 'Horse', 'Water', 'River', 'Fire', 'Wind', 'Night', 'Day', 'Cross', 'Sea'],
    ['Black', 'White', 'Red', 'Green', 'Old', 'New', 'High', 'Long'],
    ['House', 'Road', 'Ship', 'Door'],
  ],
  fair: [
    ['Summer', 'Spring', 'Winter', 'Night', 'Day', 'Morning', 'Music', 'Light', 'Fire', 'Moon', 'Star', 'Sun'],
    ['Song', 'Dance', 'Game', 'Horse', 'Fish', 'Bird', 'Tree', 'Water'],
    ['Fair', 'Day', 'Night'],
  ],
};

/** Made-up words (2 syllables) in place of every word part but the kinds (Company, House, Fair …). */
function syllableParts(): Record<EntityType, readonly (readonly string[])[]> {
  const random = Xoshiro128.forLabel(0, 'distant-evidence/syllable-vocabulary');
  const used = new Set<string>();
  const word = (): string => {
    for (;;) {
      let out = '';
      for (let i = 0; i < 2; i += 1) out += SYLLABLES[Math.floor(random.nextFloat() * SYLLABLES.length)];
      const made = capitalise(out);
      if (!used.has(made)) {
        used.add(made);
        return made;
      }
    }
  };
  const pool = (size: number): string[] => Array.from({ length: size }, word);
  return {
    person: [pool(24), pool(24)],
    town: [pool(24), ['Port', 'Water', 'Land', 'River', 'Town', 'City']],
    organisation: [pool(24), pool(12), WORD_PARTS.organisation[2]],
    landmark: [pool(24), pool(12), WORD_PARTS.landmark[2]],
    fair: [pool(24), pool(8), WORD_PARTS.fair[2]],
  };
}

let syllableVocabulary: Record<EntityType, readonly (readonly string[])[]> | undefined;

function vocabularyParts(vocabulary: EntityVocabulary): Record<EntityType, readonly (readonly string[])[]> {
  if (vocabulary === 'words') return WORD_PARTS;
  syllableVocabulary ??= syllableParts();
  return syllableVocabulary;
}

/** Every word the vocabulary builds names from (for token-count checks). */
export function vocabularyWords(vocabulary: EntityVocabulary): string[] {
  const parts = vocabularyParts(vocabulary);
  return [...new Set(Object.values(parts).flatMap((lists) => lists.flat()))];
}

/** Filler: lower-case one-token words (no relation words, so filler never reads as a fact) and sentence starts. */
const FILLER_WORDS = (
  'the of and to a in it that for on with as they at one have this from or had not but what some can out other ' +
  'all there when up use your how each which do their time if will way about many then them would like so these ' +
  'long make thing see two has look more day could go come did number sound no most people over know water than ' +
  'call first may down side been now find any new work part take get place made live where after back little only ' +
  'round man year came show every good give our under name very through just form great think say help low line ' +
  'turn much mean before move right old too same tell does set three want air well also play small end put home ' +
  'read hand port large add even land here must big high such follow act why ask men change went light kind off ' +
  'need house picture try again animal point world near build earth head stand own page should country found ' +
  'answer school grow study still learn plant cover food sun four between state keep eye never last let city tree ' +
  'cross farm hard start might story far sea draw left late run while close night real life few north open next ' +
  'white begin walk paper group always music those both often letter until mile river car feet care second book'
).split(' ');
const FILLER_STARTS = ['The', 'After', 'When', 'Some', 'Many', 'Most', 'Each', 'Every', 'Few', 'Long', 'Then', 'There', 'Here', 'Once', 'Still', 'Now'];

/** Every word filler text is made of, as it appears (for token-count checks). */
export function fillerWords(): string[] {
  return [...FILLER_WORDS, ...FILLER_STARTS];
}

// ---- Generation --------------------------------------------------------------------------------------------

export interface DistantEvidenceOptions {
  seed: number;
  /** Document length in chunks. */
  chunks: number;
  /** Tokens per chunk (of the tokenizer given to the generator); episodes must be read with the same chunk size. */
  chunkTokens: number;
  /** Hops per question, drawn per question from this list (1 … 4). */
  hops: readonly number[];
  /** Order of the evidence in the document: chain order, the last-needed first (the hard case), or shuffled. */
  order: EvidenceOrder;
  /** Least number of chunks between consecutive evidence facts (0 allows the same chunk). */
  minEvidenceGap: number;
  /** Distractor facts per chunk (same relations, other entities). */
  distractorsPerChunk: number;
  /**
   * Probability that a distractor entity is a near miss of the question chain's entity of its position (all name
   * words but one shared); other distractor entities share no word with the question chain's.
   */
  distractorSimilarity: number;
  vocabulary: EntityVocabulary;
}

export const defaultDistantEvidenceOptions: DistantEvidenceOptions = {
  seed: 1,
  chunks: 8,
  chunkTokens: 256,
  hops: [2],
  order: 'random',
  minEvidenceGap: 1,
  distractorsPerChunk: 3,
  distractorSimilarity: 0,
  vocabulary: 'words',
};

/** Counts tokens the way the episode chunker does (the bundled tokenizer's `encodePlain(text).length`). */
export type TokenCounter = (text: string) => number;

export interface DistantEvidenceRow {
  id: string;
  question: string;
  context: string;
  answers: string[];
  meta: {
    split: string;
    chunks: number;
    chunkTokens: number;
    hops: number;
    order: 'forward' | 'reverse' | 'shuffled';
    /** Chunk index of each evidence fact, in chain order (the first is about the question's entity). */
    evidenceChunks: number[];
  };
}

export class BenchmarkSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BenchmarkSpecError';
  }
}

function checkOptions(options: DistantEvidenceOptions): void {
  const fail = (message: string): never => {
    throw new BenchmarkSpecError(message);
  };
  if (!Number.isSafeInteger(options.seed)) fail(`seed must be an integer, got ${options.seed}`);
  if (!Number.isInteger(options.chunks) || options.chunks < 1) fail(`chunks must be a positive integer, got ${options.chunks}`);
  if (!Number.isInteger(options.chunkTokens) || options.chunkTokens < 32) fail(`chunkTokens must be an integer ≥ 32, got ${options.chunkTokens}`);
  if (options.hops.length === 0) fail('hops must list at least one number of hops');
  for (const hops of options.hops) {
    if (!Number.isInteger(hops) || hops < 1 || hops > MAX_HOPS) fail(`hops must be integers from 1 to ${MAX_HOPS}, got ${hops}`);
  }
  if (!EVIDENCE_ORDERS.includes(options.order)) fail(`order must be one of ${EVIDENCE_ORDERS.join(', ')}, got ${options.order}`);
  if (!Number.isInteger(options.minEvidenceGap) || options.minEvidenceGap < 0) fail(`minEvidenceGap must be an integer ≥ 0, got ${options.minEvidenceGap}`);
  if (!Number.isInteger(options.distractorsPerChunk) || options.distractorsPerChunk < 0)
    fail(`distractorsPerChunk must be an integer ≥ 0, got ${options.distractorsPerChunk}`);
  if (!(options.distractorSimilarity >= 0 && options.distractorSimilarity <= 1))
    fail(`distractorSimilarity must be from 0 to 1, got ${options.distractorSimilarity}`);
  if (!ENTITY_VOCABULARIES.includes(options.vocabulary)) fail(`vocabulary must be one of ${ENTITY_VOCABULARIES.join(', ')}, got ${options.vocabulary}`);
  for (const hops of options.hops) evidenceRange(options, hops);
}

/** The last chunk an evidence fact may sit in: room for hops − 1 recalls after it, the final turn included. */
function evidenceRange(options: DistantEvidenceOptions, hops: number): number {
  const last = Math.min(options.chunks - 1, options.chunks - hops + 1);
  if (last < 0 || (hops - 1) * options.minEvidenceGap > last) {
    throw new BenchmarkSpecError(
      `${options.chunks} chunks cannot hold ${hops} evidence facts ${options.minEvidenceGap} chunks apart with ${hops - 1} chunks left to recall them`,
    );
  }
  return last;
}

class Draw {
  constructor(private readonly generator: Xoshiro128) {}
  float(): number {
    return this.generator.nextFloat();
  }
  int(n: number): number {
    return Math.floor(this.generator.nextFloat() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i -= 1) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}

const NO_WORDS: ReadonlySet<string> = new Set();

/** Unique names per type within one document; near misses share all parts of a given name but one. */
class Names {
  private readonly used = new Set<string>();
  constructor(
    private readonly draw: Draw,
    private readonly parts: Record<EntityType, readonly (readonly string[])[]>,
  ) {}

  /** A name not used before in the document, made of none of the words in `avoid`. */
  fresh(type: EntityType, avoid: ReadonlySet<string> = NO_WORDS): string {
    for (let attempt = 0; attempt < 10_000; attempt += 1) {
      const parts = this.parts[type].map((list) => this.draw.pick(list));
      if (parts.some((part) => avoid.has(part))) continue;
      const name = parts.join(' ');
      if (this.claim(type, name)) return name;
    }
    throw new BenchmarkSpecError(`the entity vocabulary has too few ${type} names for this many facts per document; use fewer chunks, fewer distractors or the syllables vocabulary`);
  }

  nearMiss(type: EntityType, of: string): string {
    const words = of.split(' ');
    for (let attempt = 0; attempt < 16; attempt += 1) {
      const position = this.draw.int(words.length);
      const changed = [...words];
      changed[position] = this.draw.pick(this.parts[type][position]);
      if (this.claim(type, changed.join(' '))) return changed.join(' ');
    }
    return this.fresh(type);
  }

  private claim(type: EntityType, name: string): boolean {
    const key = `${type}\u0000${name}`;
    if (this.used.has(key)) return false;
    this.used.add(key);
    return true;
  }
}

/**
 * The entities of a chain of `hops` facts. A distractor chain (`question` given) names, with probability
 * `similarity`, a near miss of the question chain's entity at each position, and otherwise an entity sharing no
 * word with the question chain (so the question's names are distinctive unless near misses are asked for).
 */
function makeChain(names: Names, draw: Draw, hops: number, question: readonly string[] | null, similarity: number): string[] {
  const chain = chainRelations(hops);
  const types = [chain[0].subject, ...chain.map((entry) => entry.object)];
  const avoid = new Set((question ?? []).flatMap((name) => name.split(' ')));
  return types.map((type, index) =>
    question !== null && draw.float() < similarity ? names.nearMiss(type, question[index]) : names.fresh(type, avoid),
  );
}

function chainFacts(entities: readonly string[], hops: number): Fact[] {
  return chainRelations(hops).map((entry, index) => ({ subject: entities[index], relation: entry.name, object: entities[index + 1] }));
}

/** Evidence chunks in document order: uniform, consecutive ones at least `gap` apart, none after `last`. */
function evidenceChunks(draw: Draw, count: number, last: number, gap: number): number[] {
  const room = last - (count - 1) * gap;
  const offsets = Array.from({ length: count }, () => draw.int(room + 1)).sort((a, b) => a - b);
  return offsets.map((offset, index) => offset + index * gap);
}

/** A filler sentence of exactly `tokens` tokens (≥ 3): a start word, one-token words, a full stop. */
function fillerSentence(draw: Draw, tokens: number): string {
  const words = [draw.pick(FILLER_STARTS)];
  for (let i = 0; i < tokens - 2; i += 1) words.push(draw.pick(FILLER_WORDS));
  return `${words.join(' ')}.`;
}

/** How many filler sentences share `total` tokens: about 14 tokens each, at least 3. */
function fillerCount(total: number): number {
  return total === 0 ? 0 : Math.max(1, Math.min(Math.floor(total / 3), Math.round(total / 14)));
}

/** Splits `total` filler tokens into `count` sentences of 3 or more tokens. */
function fillerLengths(draw: Draw, total: number, count: number): number[] {
  const lengths = new Array<number>(count).fill(3);
  for (let left = total - 3 * count; left > 0; left -= 1) lengths[draw.int(count)] += 1;
  return lengths;
}

/** One question over one document (`split` and `index` name its seeded stream and its id). */
export function generateDistantEvidenceRow(
  partial: Partial<DistantEvidenceOptions>,
  countTokens: TokenCounter,
  split: string,
  index: number,
): DistantEvidenceRow {
  const options = { ...defaultDistantEvidenceOptions, ...partial };
  checkOptions(options);
  const draw = new Draw(Xoshiro128.forLabel(options.seed, `distant-evidence/${split}/${options.chunks}/${index}`));
  const names = new Names(draw, vocabularyParts(options.vocabulary));
  const hops = draw.pick(options.hops);

  const entities = makeChain(names, draw, hops, null, 0);
  const evidence = chainFacts(entities, hops);
  const sorted = evidenceChunks(draw, hops, evidenceRange(options, hops), options.minEvidenceGap);
  const order = options.order === 'random' ? draw.shuffle(evidence.map((_, i) => i)) : evidence.map((_, i) => (options.order === 'forward' ? i : hops - 1 - i));
  // order[k] = the document-order slot of chain fact k.
  const placed = evidence.map((_, k) => sorted[order[k]]);

  const distractors: Fact[] = [];
  while (distractors.length < options.chunks * options.distractorsPerChunk) {
    distractors.push(...chainFacts(makeChain(names, draw, hops, entities, options.distractorSimilarity), hops));
  }
  distractors.length = options.chunks * options.distractorsPerChunk;
  draw.shuffle(distractors);

  const chunkTexts: string[] = [];
  for (let chunk = 0; chunk < options.chunks; chunk += 1) {
    const facts = distractors.slice(chunk * options.distractorsPerChunk, (chunk + 1) * options.distractorsPerChunk);
    evidence.forEach((fact, k) => {
      if (placed[k] === chunk) facts.push(fact);
    });
    chunkTexts.push(layOutChunk(draw, facts.map(factSentence), options.chunkTokens, chunk === 0, countTokens));
  }
  const context = chunkTexts.join('');
  const total = countTokens(context);
  if (total !== options.chunks * options.chunkTokens) {
    throw new Error(`internal: the document has ${total} tokens, not ${options.chunks} × ${options.chunkTokens}; the tokenizer does not split where the layout assumed`);
  }
  const ordered = evidence.map((_, k) => k).sort((a, b) => placed[a] - placed[b] || a - b);
  const orderName = ordered.every((k, i) => k === i) ? 'forward' : ordered.every((k, i) => k === hops - 1 - i) ? 'reverse' : 'shuffled';
  return {
    id: `de-${split}-c${options.chunks}-${index}`,
    question: questionText(entities[0], hops),
    context,
    answers: [entities[hops]],
    meta: { split, chunks: options.chunks, chunkTokens: options.chunkTokens, hops, order: hops === 1 ? 'forward' : orderName, evidenceChunks: placed },
  };
}

/**
 * One chunk of exactly `chunkTokens` tokens: the facts and filler sentences in a shuffled order, each sentence
 * after a space (but the document's first). Facts are counted; filler is built from one-token words to fill
 * the rest exactly, and the whole chunk is counted again.
 */
function layOutChunk(draw: Draw, facts: string[], chunkTokens: number, first: boolean, countTokens: TokenCounter): string {
  let room = chunkTokens - facts.reduce((sum, fact) => sum + countTokens(` ${fact}`), 0);
  if (room < 3) throw new BenchmarkSpecError(`chunkTokens ${chunkTokens} leaves no room for filler beside ${facts.length} facts; use larger chunks or fewer distractors`);
  const count = fillerCount(room);
  const slots: Array<string | null> = draw.shuffle([...facts, ...new Array<null>(count).fill(null)]);
  // The document's first sentence has no space before it, which may change its count.
  const lead = slots[0];
  if (first && lead !== null) room += countTokens(` ${lead}`) - countTokens(lead);
  if (room < 3 * count) throw new BenchmarkSpecError(`chunkTokens ${chunkTokens} leaves too little room for filler; use larger chunks`);
  const lengths = fillerLengths(draw, room, count);
  let next = 0;
  const pieces = slots.map((slot) => slot ?? fillerSentence(draw, lengths[next++]));
  const text = pieces.map((piece, i) => (first && i === 0 ? piece : ` ${piece}`)).join('');
  const counted = countTokens(text);
  if (counted !== chunkTokens) {
    throw new Error(`internal: a chunk has ${counted} tokens, not ${chunkTokens}; the tokenizer does not encode the filler words as single tokens`);
  }
  return text;
}

// ---- Splits --------------------------------------------------------------------------------------------------

export interface SplitSpec {
  /** Questions per document length. */
  questions: number;
  /** Document lengths in chunks. */
  chunks: readonly number[];
}

export interface BenchmarkSpec {
  options: Omit<DistantEvidenceOptions, 'chunks'>;
  splits: Record<string, SplitSpec>;
}

/** Every split's rows: for each length in order, `questions` rows. */
export function generateSplits(spec: BenchmarkSpec, countTokens: TokenCounter): Record<string, DistantEvidenceRow[]> {
  const out: Record<string, DistantEvidenceRow[]> = {};
  for (const [split, { questions, chunks }] of Object.entries(spec.splits)) {
    if (!/^[a-z0-9-]+$/.test(split)) throw new BenchmarkSpecError(`split names use a-z, 0-9 and -, got "${split}"`);
    const rows: DistantEvidenceRow[] = [];
    for (const length of chunks) {
      for (let index = 0; index < questions; index += 1) rows.push(generateDistantEvidenceRow({ ...spec.options, chunks: length }, countTokens, split, index));
    }
    out[split] = rows;
  }
  return out;
}

/** Rows as JSON Lines in the dataset format (id, question, context, answers), plus each row's `meta`. */
export function distantEvidenceJsonLines(rows: readonly DistantEvidenceRow[]): string {
  return rows.map((row) => JSON.stringify({ id: row.id, question: row.question, context: row.context, answers: row.answers, meta: row.meta })).join('\n') + '\n';
}
