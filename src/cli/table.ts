/**
 * A small aligned-table formatter for human CLI output. Columns are padded to their widest
 * cell; numbers are right-aligned; cells never wrap (long values are cut with an ellipsis).
 */

/** A cell value; `undefined` and `null` print as `-`. */
export type Cell = string | number | boolean | null | undefined;

/** One column of a table. */
export interface Column<Row> {
  readonly header: string;
  readonly value: (row: Row) => Cell;
  /** Defaults to right for numbers, left otherwise. */
  readonly align?: 'left' | 'right';
  /** Widest a cell may be before it is cut (default 60). */
  readonly maxWidth?: number;
}

function text(cell: Cell): string {
  if (cell === undefined || cell === null || cell === '') return '-';
  if (typeof cell === 'boolean') return cell ? 'yes' : 'no';
  return String(cell);
}

function cut(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, Math.max(1, max - 1))}…`;
}

/**
 * Formats rows as an aligned table with a header and a dashed rule. Returns `(none)` when there
 * are no rows, so a section is never silently empty.
 */
export function formatTable<Row>(rows: readonly Row[], columns: readonly Column<Row>[], indent = '  '): string {
  if (rows.length === 0) return `${indent}(none)`;
  const cells = rows.map((row) => columns.map((column) => column.value(row)));
  const rendered = cells.map((row) => row.map((cell, index) => cut(text(cell), columns[index]?.maxWidth ?? 60)));
  const widths = columns.map((column, index) =>
    Math.max(column.header.length, ...rendered.map((row) => row[index]?.length ?? 0)),
  );
  const alignOf = (index: number): 'left' | 'right' => {
    const declared = columns[index]?.align;
    if (declared !== undefined) return declared;
    return cells.every((row) => typeof row[index] === 'number' || row[index] === undefined || row[index] === null) ? 'right' : 'left';
  };
  const line = (values: readonly string[]): string =>
    indent +
    values
      .map((value, index) => {
        const width = widths[index] ?? value.length;
        return alignOf(index) === 'right' ? value.padStart(width) : value.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((column) => column.header)), line(widths.map((width) => '-'.repeat(width))), ...rendered.map(line)].join('\n');
}
