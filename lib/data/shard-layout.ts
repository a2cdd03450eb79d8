/**
 * The reserved page layout of a sharded dataset, shared by the batch workflow (which places each shard) and the
 * indexing activities (which fill it). Pure, so that workflow code can import it.
 */

/** The pages a shard spanning `span` row numbers owns: enough for all of them to be valid. */
export function reservedPagesFor(span: number, pageSize: number): number {
  return Math.ceil(span / pageSize);
}
