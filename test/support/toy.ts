/** The toy training task: each question's one short chunk states the answer, and every answer is "blue". */
import type { EpisodeInputRecord, EpisodeSettings } from '../../lib/episode/types';
import { testSettings } from './stack';

export function toyRows(items: readonly string[]): Omit<EpisodeInputRecord, 'rowIndex'>[] {
  return items.map((item, i) => ({
    id: `toy-${i}`,
    question: `What colour is the ${item}?`,
    context: `The ${item} is blue.`,
    answers: ['blue'],
  }));
}

/** One chunk per episode, rememr1 mode, with the given memory-turn budget. */
export function toyEpisode(memoryMaxNewTokens: number): EpisodeSettings {
  return {
    ...testSettings,
    mode: 'rememr1',
    chunkTokens: 64,
    maxChunks: 1,
    memoryMaxNewTokens,
    answerMaxNewTokens: 8,
  };
}
