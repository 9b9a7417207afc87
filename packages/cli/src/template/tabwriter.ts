// Go's text/tabwriter as docker's `--format 'table ...'` uses it (minwidth 10, padding 3, spaces):
// a cell ends at a tab; a column is as wide as its widest cell over the run of consecutive lines
// that have it, plus the padding; the text after a line's last tab is not aligned.

const MIN_WIDTH = 10;
const PADDING = 3;

function width(s: string): number {
  return [...s].length;
}

/** `text` (lines of tab-separated cells) aligned; a trailing newline stays. */
export function tabwrite(text: string): string {
  const trailing = text.endsWith('\n');
  const lines = (trailing ? text.slice(0, -1) : text).split('\n').map((l) => l.split('\t'));
  const out: string[] = [];
  const widths: number[] = [];
  const writeLines = (from: number, to: number): void => {
    for (let i = from; i < to; i++) {
      const cells = lines[i]!;
      let s = '';
      cells.forEach((c, j) => {
        s += c;
        if (j < widths.length && j < cells.length - 1) s += ' '.repeat(Math.max(0, widths[j]! - width(c)));
      });
      out.push(s);
    }
  };
  // Go's format(): a block of lines sharing a terminated cell in the current column.
  const format = (line0: number, line1: number): void => {
    const column = widths.length;
    let start = line0;
    for (let l = line0; l < line1; l++) {
      if (column >= lines[l]!.length - 1) continue;
      writeLines(start, l);
      let w = MIN_WIDTH;
      let end = l;
      for (; end < line1; end++) {
        const cells = lines[end]!;
        if (column >= cells.length - 1) break;
        w = Math.max(w, width(cells[column]!) + PADDING);
      }
      widths.push(w);
      format(l, end);
      widths.pop();
      start = end;
      l = end - 1;
    }
    writeLines(start, line1);
  };
  format(0, lines.length);
  return out.join('\n') + (trailing ? '\n' : '');
}
