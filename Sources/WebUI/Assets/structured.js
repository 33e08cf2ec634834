// Structured answers: find the JSON object in an answer, show it as a readable card (raw JSON one click
// away), and turn one or many of them into CSV. All text goes in through textContent.
import { t } from './i18n.js';

/** The first JSON object in `text` (a ```json fence, or the outermost {...}); null when there is none. */
export function extractJSON(text) {
  if (!text) return null;
  const fenced = /```(?:json)?\s*\n([\s\S]*?)```/i.exec(text);
  const candidates = [];
  if (fenced) candidates.push(fenced[1]);
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  if (start >= 0 && end > start) candidates.push(text.slice(start, end + 1));
  for (const candidate of candidates) {
    try {
      const value = JSON.parse(candidate.trim());
      if (value && typeof value === 'object' && !Array.isArray(value)) return value;
    } catch { /* not JSON */ }
  }
  return null;
}

/** A card for `value`: a definition list (nested for objects), with a Card / Raw JSON toggle and CSV export. */
export function renderCard(value, { onCsv } = {}) {
  const card = document.createElement('section');
  card.className = 'card';
  const head = document.createElement('div');
  head.className = 'card-head';
  const title = document.createElement('h3');
  title.textContent = t('structured');
  const toggle = document.createElement('button');
  toggle.type = 'button';
  toggle.className = 'small toggle-raw';
  toggle.textContent = t('rawJson');
  toggle.setAttribute('aria-pressed', 'false');
  const csv = document.createElement('button');
  csv.type = 'button';
  csv.className = 'small card-csv';
  csv.textContent = t('exportCsv');
  csv.title = t('exportCsvTitle');
  csv.addEventListener('click', () => onCsv && onCsv(value));
  head.append(title, toggle, csv);

  const body = renderValue(value);
  body.classList.add('card-body');
  const raw = document.createElement('pre');
  raw.className = 'card-raw';
  raw.hidden = true;
  const code = document.createElement('code');
  code.textContent = JSON.stringify(value, null, 2);
  raw.append(code);

  toggle.addEventListener('click', () => {
    const showRaw = raw.hidden;
    raw.hidden = !showRaw;
    body.hidden = showRaw;
    toggle.textContent = showRaw ? t('card') : t('rawJson');
    toggle.setAttribute('aria-pressed', String(showRaw));
  });
  card.append(head, body, raw);
  return card;
}

function renderValue(value) {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const dl = document.createElement('dl');
    for (const [key, item] of Object.entries(value)) {
      const dt = document.createElement('dt');
      dt.textContent = key.replace(/_/g, ' ');
      const dd = document.createElement('dd');
      if (item && typeof item === 'object' && !Array.isArray(item)) dd.append(renderValue(item));
      else dd.append(renderScalar(item));
      dl.append(dt, dd);
    }
    return dl;
  }
  const div = document.createElement('div');
  div.append(renderScalar(value));
  return div;
}

function renderScalar(value) {
  const span = document.createElement('span');
  if (Array.isArray(value)) {
    if (value.length === 0) { span.textContent = '—'; span.className = 'muted'; return span; }
    if (value.every((v) => v === null || typeof v !== 'object')) {
      for (const item of value) {
        const chip = document.createElement('span');
        chip.className = 'chip';
        chip.textContent = String(item);
        span.append(chip);
      }
      return span;
    }
    const list = document.createElement('ol');
    for (const item of value) {
      const li = document.createElement('li');
      li.append(item && typeof item === 'object' ? renderValue(item) : renderScalar(item));
      list.append(li);
    }
    return list;
  }
  if (typeof value === 'boolean') {
    span.textContent = value ? '✓ true' : '✗ false';
    span.className = value ? 'bool-true' : 'bool-false';
    return span;
  }
  if (value === null || value === '') { span.textContent = '—'; span.className = 'muted'; return span; }
  span.textContent = String(value);
  return span;
}

/** `{a: {b: 1}, c: [1, 2]}` → `{"a.b": 1, "c": "1; 2"}`. */
export function flatten(value, prefix = '', out = {}) {
  for (const [key, item] of Object.entries(value ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (item && typeof item === 'object' && !Array.isArray(item)) flatten(item, path, out);
    else if (Array.isArray(item)) out[path] = item.map((v) => (v && typeof v === 'object' ? JSON.stringify(v) : String(v))).join('; ');
    else out[path] = item;
  }
  return out;
}

/** CSV (RFC 4180, CRLF) with one row per object; columns are the union of the flattened keys. */
export function toCSV(rows) {
  const flat = rows.map((row) => flatten(row));
  const columns = [];
  for (const row of flat) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  const cell = (v) => {
    if (v === undefined || v === null) return '';
    const text = String(v);
    // Guard against spreadsheet formula injection from model output.
    const safe = /^[=+\-@\t\r]/.test(text) && !/^-?\d/.test(text) ? `'${text}` : text;
    return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  return [columns.map(cell).join(','), ...flat.map((row) => columns.map((c) => cell(row[c])).join(','))].join('\r\n') + '\r\n';
}
