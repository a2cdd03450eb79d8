/**
 * A seeded synthetic long-document multi-hop QA benchmark (ARCHITECTURE.md §7): the small-scale stand-in for
 * HotpotQA padded with distractors, used where no real dataset can be downloaded.
 *
 * Each question chains `hops` facts ("The Varn Institute was founded by Elsa Morrow." → "Elsa Morrow was born
 * in Tellhaven."), each fact in its own "Document i:" block, hidden among distractor documents built from the
 * same templates about other entities. Knobs: number of documents, hops, words per document, evidence order
 * (forward or reverse, the paper's "distant evidence" setting) and the minimum gap between evidence documents.
 * The same options and seed give the same bytes.
 */
import { Xoshiro128 } from '../model/random';
import type { QaRow } from './dataset';

export interface SyntheticOptions {
  seed: number;
  questions: number;
  documentsPerQuestion: number;
  /** 1 or 2 facts chained per question. */
  hops: 1 | 2;
  /** Filler words per document besides its fact (sets the document length). */
  wordsPerDocument: number;
  evidenceOrder: 'forward' | 'reverse';
  /** Minimum number of documents between two evidence documents of a question. */
  minEvidenceGap: number;
}

export const defaultSyntheticOptions: SyntheticOptions = {
  seed: 1,
  questions: 8,
  documentsPerQuestion: 24,
  hops: 2,
  wordsPerDocument: 60,
  evidenceOrder: 'forward',
  minEvidenceGap: 4,
};

/** The project's seeded generator (xoshiro128**), as a plain uniform-in-[0, 1) function. */
function createRandom(seed: number): () => number {
  const generator = Xoshiro128.forLabel(seed, 'synthetic-benchmark');
  return () => generator.nextFloat();
}

/** Syllables of made-up names (shared with the distant-evidence benchmark's syllable vocabulary). */
export const SYLLABLES: readonly string[] = ['ar', 'bel', 'cor', 'dun', 'el', 'fen', 'gal', 'hor', 'is', 'jor', 'kel', 'lun', 'mar', 'nor', 'os', 'pel', 'quin', 'ras', 'sol', 'tor', 'ul', 'ven', 'wyn', 'zar'];
const ORGANISATION_KINDS = ['Institute', 'Company', 'Society', 'Museum', 'Observatory', 'Guild', 'Library', 'Foundry'];
const FILLER = (
  'the records of that period describe long winters and busy harbours while traders carried wool salt and ' +
  'timber along the coast and the old roads were repaired every spring by the villages that used them most ' +
  'scholars still argue about the exact dates but agree that the region grew quickly during those decades'
).split(' ');

export function capitalise(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

class NameMaker {
  private readonly used = new Set<string>();
  constructor(private readonly random: () => number) {}

  private word(syllables: number): string {
    let out = '';
    for (let i = 0; i < syllables; i += 1) out += SYLLABLES[Math.floor(this.random() * SYLLABLES.length)];
    return capitalise(out);
  }

  /** Syllables per word; grows when names get scarce, so any number of unique names can be made. */
  private syllables = 2;

  /** A name not produced before by this maker, so a fact can never be confused with a distractor. */
  unique(make: () => string): string {
    for (let attempt = 1; ; attempt += 1) {
      const name = make();
      if (!this.used.has(name)) {
        this.used.add(name);
        return name;
      }
      if (attempt % 16 === 0) this.syllables += 1;
    }
  }

  person(): string {
    return this.unique(() => `${this.word(this.syllables)} ${this.word(this.syllables)}`);
  }
  place(): string {
    return this.unique(() => `${this.word(this.syllables)}haven`);
  }
  organisation(): string {
    return this.unique(() => `the ${this.word(this.syllables)} ${ORGANISATION_KINDS[Math.floor(this.random() * ORGANISATION_KINDS.length)]}`);
  }
}

interface Chain {
  facts: string[];
  question: string;
  answer: string;
}

function makeChain(names: NameMaker, hops: 1 | 2): Chain {
  const organisation = names.organisation();
  const founder = names.person();
  const founded = `${capitalise(organisation)} was founded by ${founder}.`;
  if (hops === 1) return { facts: [founded], question: `Who founded ${organisation}?`, answer: founder };
  const birthplace = names.place();
  return {
    facts: [founded, `${founder} was born in ${birthplace}.`],
    question: `In which town was the founder of ${organisation} born?`,
    answer: birthplace,
  };
}

function fillerText(random: () => number, words: number): string {
  const out: string[] = [];
  let offset = Math.floor(random() * FILLER.length);
  while (out.length < words) {
    out.push(FILLER[offset % FILLER.length]);
    offset += 1 + Math.floor(random() * 3);
  }
  return `${capitalise(out.join(' '))}.`;
}

/** Chooses the evidence documents' positions: ordered as asked, at least `gap` documents apart. */
function evidencePositions(random: () => number, count: number, documents: number, gap: number, order: 'forward' | 'reverse'): number[] {
  const span = (count - 1) * (gap + 1);
  if (span >= documents) throw new RangeError(`${documents} documents cannot hold ${count} evidence documents ${gap} apart`);
  const start = Math.floor(random() * (documents - span));
  const slack = documents - span - start;
  const positions: number[] = [start];
  for (let i = 1; i < count; i += 1) positions.push(positions[i - 1] + gap + 1 + Math.floor(random() * Math.max(1, slack / count)));
  const clamped = positions.map((p) => Math.min(p, documents - 1));
  return order === 'forward' ? clamped : clamped.reverse();
}

/** Generates the benchmark's rows (the same shape the dataset readers produce). */
export function generateSyntheticRows(options: Partial<SyntheticOptions> = {}): QaRow[] {
  const settings = { ...defaultSyntheticOptions, ...options };
  const random = createRandom(settings.seed);
  const names = new NameMaker(random);
  const rows: QaRow[] = [];
  for (let q = 0; q < settings.questions; q += 1) {
    const chain = makeChain(names, settings.hops);
    const distractorFacts: string[] = [];
    while (distractorFacts.length < settings.documentsPerQuestion - chain.facts.length) {
      distractorFacts.push(...makeChain(names, settings.hops).facts);
    }
    const positions = evidencePositions(random, chain.facts.length, settings.documentsPerQuestion, settings.minEvidenceGap, settings.evidenceOrder);
    const documents: string[] = [];
    let nextDistractor = 0;
    for (let d = 0; d < settings.documentsPerQuestion; d += 1) {
      const evidenceIndex = positions.indexOf(d);
      const fact = evidenceIndex >= 0 ? chain.facts[evidenceIndex] : distractorFacts[nextDistractor++];
      const filler = fillerText(random, settings.wordsPerDocument);
      documents.push(`Document ${d + 1}:\n${random() < 0.5 ? `${fact} ${filler}` : `${filler} ${fact}`}`);
    }
    rows.push({
      rowIndex: q,
      id: `synthetic-${settings.seed}-${q}`,
      question: chain.question,
      context: documents.join('\n\n'),
      answers: [chain.answer],
    });
  }
  return rows;
}

/** The rows as JSON Lines in the dataset file format (fields question, context, answers, id). */
export function toJsonLines(rows: QaRow[]): string {
  return rows.map((row) => JSON.stringify({ id: row.id, question: row.question, context: row.context, answers: row.answers })).join('\n') + '\n';
}
