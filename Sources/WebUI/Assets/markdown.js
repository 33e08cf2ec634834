// A small Markdown renderer that builds DOM nodes. Model text only ever reaches the page through
// textContent / createTextNode, so it can never become live HTML or script. Links are kept only for
// http(s) URLs and open with rel="noopener noreferrer".
//
// Blocks: ATX headings, fenced code, indented lists (ordered, unordered, nested), tables, block quotes,
// horizontal rules, paragraphs. Inline: `code`, **strong**, *emphasis*, ~~strike~~, [links](url), bare URLs.

/** Renders `source` into a new DocumentFragment. Control characters other than tab and newline (a model can
 * emit a NUL byte) are shown as U+FFFD, the same way while streaming and when history is reloaded. */
export function renderMarkdown(source) {
  const fragment = document.createDocumentFragment();
  const text = String(source ?? '').replace(/\r\n?/g, '\n').replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g, '\uFFFD');
  renderBlocks(text.split('\n'), fragment);
  return fragment;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const TABLE_SEP = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;

function renderBlocks(lines, parent) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i++; continue; }

    let m = FENCE.exec(line);
    if (m) {
      const fence = m[1];
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trimStart().startsWith(fence)) body.push(lines[i++]);
      i++; // closing fence (or end of text while streaming)
      const pre = el('pre');
      const code = el('code');
      if (m[2]) { code.dataset.lang = m[2]; pre.dataset.lang = m[2]; }
      code.textContent = body.join('\n');
      pre.append(code);
      parent.append(pre);
      continue;
    }

    m = HEADING.exec(line);
    if (m) {
      const h = el('h' + Math.min(6, m[1].length + 2 > 6 ? 6 : m[1].length + 2));
      // Answer headings sit below the page's own h1/h2: # → h3, ## → h4, …
      h.classList.add('md-h' + m[1].length);
      renderInline(m[2], h);
      parent.append(h);
      i++;
      continue;
    }

    if (RULE.test(line)) { parent.append(el('hr')); i++; continue; }

    if (isTableStart(lines, i)) {
      i = renderTable(lines, i, parent);
      continue;
    }

    if (QUOTE.test(line)) {
      const inner = [];
      while (i < lines.length && lines[i].trim() && QUOTE.test(lines[i])) inner.push(QUOTE.exec(lines[i++])[1]);
      const quote = el('blockquote');
      renderBlocks(inner, quote);
      parent.append(quote);
      continue;
    }

    m = LIST_ITEM.exec(line);
    if (m) {
      i = renderList(lines, i, parent);
      continue;
    }

    // Paragraph: until a blank line or the start of another block.
    const para = [];
    while (i < lines.length && lines[i].trim() && (para.length === 0 || !startsBlock(lines, i))) para.push(lines[i++]);
    const p = el('p');
    para.forEach((text, index) => {
      if (index > 0) p.append(el('br'));
      renderInline(text.trim(), p);
    });
    parent.append(p);
  }
}

function startsBlock(lines, i) {
  const line = lines[i];
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || LIST_ITEM.test(line) || isTableStart(lines, i);
}

function isTableStart(lines, i) {
  return lines[i].includes('|') && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1]) && lines[i + 1].includes('-');
}

function splitRow(line) {
  let text = line.trim();
  if (text.startsWith('|')) text = text.slice(1);
  if (text.endsWith('|') && !text.endsWith('\\|')) text = text.slice(0, -1);
  const cells = [];
  let cell = '';
  for (let k = 0; k < text.length; k++) {
    if (text[k] === '\\' && text[k + 1] === '|') { cell += '|'; k++; continue; }
    if (text[k] === '|') { cells.push(cell.trim()); cell = ''; continue; }
    cell += text[k];
  }
  cells.push(cell.trim());
  return cells;
}

function renderTable(lines, i, parent) {
  const header = splitRow(lines[i]);
  const aligns = splitRow(lines[i + 1]).map((spec) => {
    const left = spec.startsWith(':'), right = spec.endsWith(':');
    return left && right ? 'center' : right ? 'right' : left ? 'left' : '';
  });
  i += 2;
  const wrap = el('div');
  wrap.className = 'table-wrap';
  const table = el('table');
  const thead = el('thead');
  const headRow = el('tr');
  header.forEach((text, c) => {
    const th = el('th');
    th.scope = 'col';
    if (aligns[c]) th.classList.add('align-' + aligns[c]);
    renderInline(text, th);
    headRow.append(th);
  });
  thead.append(headRow);
  table.append(thead);
  const tbody = el('tbody');
  while (i < lines.length && lines[i].trim() && lines[i].includes('|')) {
    const row = el('tr');
    const cells = splitRow(lines[i]);
    for (let c = 0; c < header.length; c++) {
      const td = el('td');
      if (aligns[c]) td.classList.add('align-' + aligns[c]);
      renderInline(cells[c] ?? '', td);
      row.append(td);
    }
    tbody.append(row);
    i++;
  }
  table.append(tbody);
  wrap.append(table);
  parent.append(wrap);
  return i;
}

function renderList(lines, i, parent) {
  const first = LIST_ITEM.exec(lines[i]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const list = el(ordered ? 'ol' : 'ul');
  if (ordered) {
    const start = parseInt(first[2], 10);
    if (start !== 1) list.start = start;
  }
  while (i < lines.length) {
    const m = LIST_ITEM.exec(lines[i]);
    if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
    const item = el('li');
    const body = [m[3]];
    i++;
    // Continuation lines: indented deeper than the marker, or lazily continued text; blank lines inside are kept
    // only when followed by more indented content.
    while (i < lines.length) {
      const next = lines[i];
      if (!next.trim()) {
        if (i + 1 < lines.length && leadingSpaces(lines[i + 1]) > indent && lines[i + 1].trim()) { body.push(''); i++; continue; }
        break;
      }
      const sub = LIST_ITEM.exec(next);
      if (sub && sub[1].length <= indent) break;
      if (!sub && leadingSpaces(next) <= indent && startsBlock(lines, i)) break;
      body.push(next.slice(Math.min(leadingSpaces(next), indent + 2)));
      i++;
    }
    const nested = body.some((line, k) => k > 0 && (LIST_ITEM.test(line) || !line.trim()));
    if (!nested) {
      body.forEach((text, k) => {
        if (k > 0) item.append(el('br'));
        renderInline(text.trim(), item);
      });
    } else {
      renderBlocks(body, item);
      // A lone paragraph in an item reads better unwrapped.
      if (item.firstChild && item.firstChild.nodeName === 'P') item.firstChild.classList.add('tight');
    }
    list.append(item);
    while (i < lines.length && !lines[i].trim() && i + 1 < lines.length) {
      const after = LIST_ITEM.exec(lines[i + 1]);
      if (after && after[1].length === indent && /\d/.test(after[2]) === ordered) i++;
      else break;
    }
  }
  parent.append(list);
  return i;
}

function leadingSpaces(line) {
  const m = /^[ \t]*/.exec(line);
  return m[0].replace(/\t/g, '    ').length;
}

// ---- Inline ----

const URL_RE = /^https?:\/\/[^\s<>()"']*[^\s<>()"'.,;:!?*_~]/i;

/** Appends the inline Markdown `text` to `parent` as DOM nodes. */
export function renderInline(text, parent) {
  let buffer = '';
  const flush = () => { if (buffer) { parent.append(document.createTextNode(buffer)); buffer = ''; } };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];

    if (ch === '\\' && i + 1 < text.length && /[\\`*_{}\[\]()#+\-.!|~<>]/.test(text[i + 1])) {
      buffer += text[i + 1];
      i += 2;
      continue;
    }

    if (ch === '`') {
      const run = /^`+/.exec(text.slice(i))[0];
      const end = text.indexOf(run, i + run.length);
      if (end > 0) {
        flush();
        const code = el('code');
        code.textContent = text.slice(i + run.length, end).replace(/^ (.*) $/, '$1');
        parent.append(code);
        i = end + run.length;
        continue;
      }
      buffer += run;
      i += run.length;
      continue;
    }

    if ((ch === '*' || ch === '_' || ch === '~') && text[i + 1] === ch) {
      const marker = ch + ch;
      const end = findClose(text, marker, i + 2);
      if (end > i + 2) {
        flush();
        const node = el(ch === '~' ? 'del' : 'strong');
        renderInline(text.slice(i + 2, end), node);
        parent.append(node);
        i = end + 2;
        continue;
      }
    } else if ((ch === '*' || ch === '_') && text[i + 1] && !/\s/.test(text[i + 1])) {
      // _ only counts at a word boundary (snake_case stays as it is).
      const okStart = ch === '*' || i === 0 || !/[\p{L}\p{N}]/u.test(text[i - 1]);
      const end = okStart ? findClose(text, ch, i + 1) : -1;
      if (end > i + 1 && !/\s/.test(text[end - 1]) && (ch === '*' || !/[\p{L}\p{N}]/u.test(text[end + 1] ?? ' '))) {
        flush();
        const em = el('em');
        renderInline(text.slice(i + 1, end), em);
        parent.append(em);
        i = end + 1;
        continue;
      }
    }

    if (ch === '[') {
      const close = matchBracket(text, i);
      if (close > 0 && text[close + 1] === '(') {
        const end = text.indexOf(')', close + 2);
        if (end > 0) {
          const target = text.slice(close + 2, end).trim().split(/\s+/)[0].replace(/^<|>$/g, '');
          const label = text.slice(i + 1, close);
          flush();
          appendLink(parent, target, label);
          i = end + 1;
          continue;
        }
      }
    }

    if (ch === '<') {
      const m = /^<(https?:\/\/[^\s>]+)>/i.exec(text.slice(i));
      if (m) {
        flush();
        appendLink(parent, m[1], null);
        i += m[0].length;
        continue;
      }
    }

    if ((ch === 'h' || ch === 'H') && (i === 0 || /[\s(\[]/.test(text[i - 1]))) {
      const m = URL_RE.exec(text.slice(i));
      if (m) {
        flush();
        appendLink(parent, m[0], null);
        i += m[0].length;
        continue;
      }
    }

    buffer += ch;
    i++;
  }
  flush();
}

function findClose(text, marker, from) {
  let k = from;
  while (k < text.length) {
    if (text[k] === '\\') { k += 2; continue; }
    if (text[k] === '`') {
      const end = text.indexOf('`', k + 1);
      if (end < 0) return -1;
      k = end + 1;
      continue;
    }
    if (text.startsWith(marker, k) && (marker.length > 1 || text[k + 1] !== marker)) return k;
    if (marker.length === 1 && text.startsWith(marker + marker, k)) {
      const skip = text.indexOf(marker + marker, k + 2);
      if (skip < 0) return -1;
      k = skip + 2;
      continue;
    }
    k++;
  }
  return -1;
}

function matchBracket(text, open) {
  let depth = 0;
  for (let k = open; k < text.length; k++) {
    if (text[k] === '\\') { k++; continue; }
    if (text[k] === '[') depth++;
    else if (text[k] === ']') { depth--; if (depth === 0) return k; }
  }
  return -1;
}

/** A link only for http(s) URLs; anything else (javascript:, data:, relative) stays plain text. */
function appendLink(parent, target, label) {
  let url = null;
  try {
    const parsed = new URL(target);
    if (parsed.protocol === 'http:' || parsed.protocol === 'https:') url = parsed.href;
  } catch { /* not a URL */ }
  if (!url) {
    if (label !== null) renderInline(label, parent);
    else parent.append(document.createTextNode(target));
    return;
  }
  const a = el('a');
  a.href = url;
  a.target = '_blank';
  a.rel = 'noopener noreferrer nofollow';
  if (label !== null && label.trim()) renderInline(label, a);
  else a.textContent = target;
  parent.append(a);
}

function el(name) {
  return document.createElement(name);
}
