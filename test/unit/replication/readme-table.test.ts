/**
 * The README quotes the replication's EM table: it must be the one `rememr1 replication` last wrote
 * (docs/replication/table.md), so that the figures a newcomer reads are the committed results.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..', '..');

/** The first Markdown table of a text: its consecutive lines starting with `|`. */
function firstTable(text: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((line) => line.startsWith('|'));
  const end = lines.findIndex((line, index) => index > start && !line.startsWith('|'));
  return lines.slice(start, end === -1 ? undefined : end).join('\n');
}

describe('README', () => {
  it("quotes the replication's EM table as docs/replication/table.md has it", () => {
    const table = firstTable(fs.readFileSync(path.join(root, 'docs', 'replication', 'table.md'), 'utf8'));
    expect(table).toMatch(/^\| EM %/);
    expect(fs.readFileSync(path.join(root, 'README.md'), 'utf8')).toContain(table);
  });
});
