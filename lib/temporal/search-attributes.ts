/**
 * The project's custom search attributes, shared by workflows (which set them) and the local stack (which
 * registers them). Pure: safe to import from workflow code.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const searchAttributes = {
  runId: defineSearchAttributeKey('RememRunId', SearchAttributeType.KEYWORD),
  dataset: defineSearchAttributeKey('RememDataset', SearchAttributeType.KEYWORD),
  status: defineSearchAttributeKey('RememStatus', SearchAttributeType.KEYWORD),
  kind: defineSearchAttributeKey('RememKind', SearchAttributeType.KEYWORD),
  chunksDone: defineSearchAttributeKey('RememChunksDone', SearchAttributeType.INT),
  chunksTotal: defineSearchAttributeKey('RememChunksTotal', SearchAttributeType.INT),
  documentTokens: defineSearchAttributeKey('RememDocumentTokens', SearchAttributeType.INT),
} as const;

/** Name → the dev server's `--search-attribute Name=Type` spelling. */
export function searchAttributeFlags(): string[] {
  const typeNames: Record<string, string> = {
    [SearchAttributeType.KEYWORD]: 'Keyword',
    [SearchAttributeType.INT]: 'Int',
    [SearchAttributeType.TEXT]: 'Text',
    [SearchAttributeType.DOUBLE]: 'Double',
    [SearchAttributeType.BOOL]: 'Bool',
    [SearchAttributeType.DATETIME]: 'Datetime',
    [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
  };
  return Object.values(searchAttributes).map((key) => `${key.name}=${typeNames[key.type]}`);
}
