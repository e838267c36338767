// The small Markdown subset docs/runbooks.md is written in (headings, paragraphs, "-" lists, fenced
// code, `code` and **bold**), rendered to HTML: no renderer is installed, and the page must not need one.

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to "-". */
export function headingId(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .trim()
    .replace(/\s/g, '-');
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function inline(text: string): string {
  return text
    .split(/(`[^`]*`)/)
    .map((part) => (part.startsWith('`') && part.endsWith('`') && part.length > 1 ? `<code>${escapeHtml(part.slice(1, -1))}</code>` : escapeHtml(part).replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>')))
    .join('');
}

export function renderMarkdown(markdown: string): string {
  const out: string[] = [];
  const lines = markdown.replace(/\r\n/g, '\n').split('\n');
  let paragraph: string[] = [];
  let list: string[] | undefined;
  const flush = () => {
    if (paragraph.length > 0) out.push(`<p>${inline(paragraph.join(' '))}</p>`);
    paragraph = [];
    if (list !== undefined) out.push(`<ul>${list.map((item) => `<li>${inline(item)}</li>`).join('')}</ul>`);
    list = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (line.startsWith('```')) {
      flush();
      const code: string[] = [];
      for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) code.push(lines[i]!);
      out.push(`<pre><code>${escapeHtml(code.join('\n'))}</code></pre>`);
    } else if (heading) {
      flush();
      const level = heading[1]!.length;
      const text = heading[2]!.trim();
      out.push(`<h${level} id="${escapeHtml(headingId(text))}">${inline(text)}</h${level}>`);
    } else if (/^\s*[-*]\s+/.test(line)) {
      if (paragraph.length > 0) flush();
      (list ??= []).push(line.replace(/^\s*[-*]\s+/, ''));
    } else if (line.trim() === '') {
      flush();
    } else if (list !== undefined && /^\s+/.test(line)) {
      list[list.length - 1] += ` ${line.trim()}`; // a list item's continuation line
    } else {
      if (list !== undefined) flush();
      paragraph.push(line.trim());
    }
  }
  flush();
  return out.join('\n');
}
