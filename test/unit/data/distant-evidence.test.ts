/** The distant-evidence benchmark: deterministic bytes, and knobs that do what they say. */
import { createHash } from 'node:crypto';
import {
  BenchmarkSpecError,
  distantEvidenceJsonLines,
  factSentence,
  fillerWords,
  followChain,
  generateDistantEvidenceRow,
  generateSplits,
  parseFacts,
  parseQuestion,
  questionText,
  vocabularyWords,
  type DistantEvidenceRow,
} from '../../../lib/data/distant-evidence';
import { loadModelFolder, type ModelFolder } from '../../../lib/model';
import { BUNDLED_MODEL_FOLDER } from '../../../lib/episode/rule-policy';

describe('distant-evidence benchmark', () => {
  let folder: ModelFolder;
  const count = (text: string): number => folder.tokenizer.encodePlain(text).length;
  beforeAll(async () => {
    folder = await loadModelFolder(BUNDLED_MODEL_FOLDER);
  });

  /** The text of each chunk as the episode chunker cuts it. */
  function chunksOf(row: DistantEvidenceRow): string[] {
    const ids = folder.tokenizer.encodePlain(row.context);
    expect(ids.length).toBe(row.meta.chunks * row.meta.chunkTokens);
    const out: string[] = [];
    for (let start = 0; start < ids.length; start += row.meta.chunkTokens) out.push(folder.tokenizer.decode(ids.slice(start, start + row.meta.chunkTokens)));
    return out;
  }

  it('writes the same bytes for the same options (pinned digest)', () => {
    const spec = { options: { seed: 7, chunkTokens: 128, hops: [2, 3], order: 'random' as const, minEvidenceGap: 1, distractorsPerChunk: 3, distractorSimilarity: 0.3, vocabulary: 'words' as const }, splits: { dev: { questions: 2, chunks: [4, 6] } } };
    const text = distantEvidenceJsonLines(generateSplits(spec, count).dev);
    expect(distantEvidenceJsonLines(generateSplits(spec, count).dev)).toBe(text);
    expect(createHash('sha256').update(text).digest('hex')).toBe('597a6abb2019f8165e6ba94d9433b025eeabc7968b8e5a13a156dc6672899ea6');
  });

  it('gives each row its own stream: more rows leave the earlier ones unchanged; splits differ', () => {
    const few = generateSplits({ options: { ...baseOptions() }, splits: { test: { questions: 2, chunks: [4] }, dev: { questions: 2, chunks: [4] } } }, count);
    const more = generateSplits({ options: { ...baseOptions() }, splits: { test: { questions: 5, chunks: [4] } } }, count);
    expect(more.test.slice(0, 2)).toEqual(few.test);
    expect(few.dev[0].question).not.toBe(few.test[0].question);
  });

  it('keeps names and filler within one token per word of the bundled tokenizer', () => {
    expect(vocabularyWords('words').filter((word) => count(` ${word}`) !== 1)).toEqual([]);
    expect(fillerWords().filter((word) => count(` ${word}`) !== 1)).toEqual([]);
  });

  it('lays documents out in whole chunks, each evidence fact whole in the chunk its metadata names', () => {
    for (const order of ['forward', 'reverse', 'random'] as const) {
      for (let index = 0; index < 4; index += 1) {
        const row = generateDistantEvidenceRow({ ...baseOptions(), chunks: 10, hops: [3], order }, count, 'test', index);
        const chunks = chunksOf(row);
        const question = parseQuestion(row.question);
        expect(question?.relations).toHaveLength(3);
        const chain = followChain(question!, parseFacts(row.context));
        expect(chain.answer).toBe(row.answers[0]);
        chain.linked.forEach((fact, k) => expect(chunks[row.meta.evidenceChunks[k]]).toContain(factSentence(fact)));
      }
    }
  });

  it('orders evidence as asked, at least the minimum gap apart, with room left to recall it', () => {
    for (let index = 0; index < 12; index += 1) {
      const forward = generateDistantEvidenceRow({ ...baseOptions(), chunks: 20, hops: [3], order: 'forward', minEvidenceGap: 4 }, count, 'test', index).meta;
      const reverse = generateDistantEvidenceRow({ ...baseOptions(), chunks: 20, hops: [3], order: 'reverse', minEvidenceGap: 4 }, count, 'test', index).meta;
      const [a, b, c] = forward.evidenceChunks;
      expect(b - a).toBeGreaterThanOrEqual(4);
      expect(c - b).toBeGreaterThanOrEqual(4);
      expect(c).toBeLessThanOrEqual(20 - 3 + 1);
      const [x, y, z] = reverse.evidenceChunks;
      expect(x - y).toBeGreaterThanOrEqual(4);
      expect(y - z).toBeGreaterThanOrEqual(4);
      expect(reverse.order).toBe('reverse');
    }
  });

  it('draws the number of hops from the list', () => {
    const hops = new Set(Array.from({ length: 16 }, (_, index) => generateDistantEvidenceRow({ ...baseOptions(), hops: [1, 4] }, count, 'train', index).meta.hops));
    expect([...hops].sort()).toEqual([1, 4]);
  });

  it('makes near misses of the question entities only as often as asked', () => {
    const words = (similarity: number): number => {
      let shared = 0;
      for (let index = 0; index < 6; index += 1) {
        const row = generateDistantEvidenceRow({ ...baseOptions(), chunks: 8, distractorSimilarity: similarity }, count, 'test', index);
        const question = parseQuestion(row.question)!;
        const facts = parseFacts(row.context);
        const chainWords = new Set(followChain(question, facts).linked.flatMap((fact) => [...fact.subject.split(' '), ...fact.object.split(' ')]));
        const others = facts.filter((fact) => !followChain(question, facts).linked.some((linked) => factSentence(linked) === factSentence(fact)));
        shared += others.filter((fact) => [...fact.subject.split(' '), ...fact.object.split(' ')].some((word) => chainWords.has(word))).length;
      }
      return shared;
    };
    expect(words(0)).toBe(0);
    expect(words(0.5)).toBeGreaterThan(20);
  });

  it('reads back its own questions and refuses impossible layouts with a clear message', () => {
    for (let hops = 1; hops <= 4; hops += 1) expect(parseQuestion(questionText('Red River Company', hops))?.relations).toHaveLength(hops);
    expect(parseQuestion('Who founded the Varn Institute?')).toBeNull();
    expect(() => generateDistantEvidenceRow({ ...baseOptions(), chunks: 4, hops: [3], minEvidenceGap: 3 }, count, 'test', 0)).toThrow(BenchmarkSpecError);
    expect(() => generateDistantEvidenceRow({ ...baseOptions(), chunkTokens: 32, distractorsPerChunk: 6 }, count, 'test', 0)).toThrow(/no room for filler/);
  });
});

function baseOptions() {
  return { seed: 3, chunkTokens: 128, hops: [2], order: 'random' as const, minEvidenceGap: 1, distractorsPerChunk: 3, distractorSimilarity: 0, vocabulary: 'words' as const };
}
