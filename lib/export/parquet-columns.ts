/**
 * Typed columns for exported tables: one list of column specs gives both the Parquet schema and the column-major
 * data the writer takes. Pure functions, no I/O.
 */
import type { SchemaElement } from 'hyparquet';

export type ColumnKind = 'string' | 'int32' | 'int64' | 'double' | 'boolean' | 'string-list' | 'int32-list' | 'double-list';

export interface ColumnSpec<Row> {
  name: keyof Row & string;
  kind: ColumnKind;
  nullable: boolean;
}

const LEAF_TYPES = {
  string: { type: 'BYTE_ARRAY', converted_type: 'UTF8' },
  int32: { type: 'INT32' },
  int64: { type: 'INT64' },
  double: { type: 'DOUBLE' },
  boolean: { type: 'BOOLEAN' },
} as const satisfies Record<string, Pick<SchemaElement, 'type' | 'converted_type'>>;

/** The Parquet schema of `columns`: UTF8 strings, INT32 / INT64 / DOUBLE / BOOLEAN scalars, 3-level LISTs. */
export function parquetSchemaOf<Row>(columns: readonly ColumnSpec<Row>[]): SchemaElement[] {
  const schema: SchemaElement[] = [{ name: 'root', num_children: columns.length }];
  for (const column of columns) {
    const repetition_type = column.nullable ? 'OPTIONAL' : 'REQUIRED';
    if (column.kind.endsWith('-list')) {
      const element = LEAF_TYPES[column.kind.slice(0, -'-list'.length) as keyof typeof LEAF_TYPES];
      schema.push(
        { name: column.name, repetition_type, num_children: 1, converted_type: 'LIST', logical_type: { type: 'LIST' } },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', ...element, repetition_type: 'REQUIRED' },
      );
    } else {
      schema.push({ name: column.name, ...LEAF_TYPES[column.kind as keyof typeof LEAF_TYPES], repetition_type });
    }
  }
  return schema;
}

/** Column-major data for the Parquet writer (INT64 values as bigint, as Parquet readers return them). */
export function columnDataOf<Row>(columns: readonly ColumnSpec<Row>[], rows: readonly Row[]): Array<{ name: string; data: unknown[] }> {
  return columns.map((column) => ({
    name: column.name,
    data: rows.map((row) => {
      const value = row[column.name];
      return column.kind === 'int64' && value !== null ? BigInt(value as number) : value;
    }),
  }));
}
