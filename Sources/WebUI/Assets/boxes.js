// Grounding boxes drawn over the image an answer is about. Qwen3-VL writes boxes as JSON objects with
// `bbox_2d: [x1, y1, x2, y2]` in a 0–1000 frame relative to the image's width and height (and a `label`): in free
// answers (a JSON array, often in a ```json fence), in the `detect` task's `objects` and in `moderation`'s
// `evidence`. A relative frame is exact on any rendering of the image, so boxes are positioned in percent of the
// image element: no padding, no resize arithmetic that could shift them. All text goes in through textContent.
import { t } from './i18n.js';

/** Colours of boxes 1, 2, 3…; the same palette `postlens analyze --draw` uses. White text reads on all of them. */
export const PALETTE = ['#e6194b', '#0082c8', '#3ca028', '#f58230', '#911eb4', '#008080', '#aa6e28', '#800000'];

/** A box as four numbers 0–1000 with an area, corners ordered and clamped; null otherwise. */
export function normalizeBox(value) {
  if (!Array.isArray(value) || value.length !== 4) return null;
  const v = value.map((n) => (typeof n === 'string' && n.trim() !== '' ? Number(n) : n));
  if (!v.every((n) => typeof n === 'number' && Number.isFinite(n))) return null;
  const c = v.map((n) => Math.round(Math.min(1000, Math.max(0, n))));
  const [x1, x2] = [Math.min(c[0], c[2]), Math.max(c[0], c[2])];
  const [y1, y2] = [Math.min(c[1], c[3]), Math.max(c[1], c[3])];
  return x1 < x2 && y1 < y2 ? [x1, y1, x2, y2] : null;
}

function itemsOf(value) {
  if (Array.isArray(value)) return value;
  if (value && typeof value === 'object') {
    if (Array.isArray(value.objects)) return value.objects;    // detect
    if (Array.isArray(value.evidence)) return value.evidence;  // moderation
    if (value.bbox_2d) return [value];                         // one grounding object
  }
  return [];
}

/** JSON values in `text`: ```json fences, else every top-level [...] or {...} that parses. */
function jsonValues(text) {
  const out = [];
  const fence = /```(?:json)?\s*\n([\s\S]*?)```/gi;
  let match;
  while ((match = fence.exec(text))) {
    try { out.push(JSON.parse(match[1].trim())); } catch { /* not JSON */ }
  }
  if (out.length) return out;
  for (let i = 0; i < text.length; i++) {
    const open = text[i];
    if (open !== '[' && open !== '{') continue;
    const end = matchingBracket(text, i);
    if (end < 0) continue;
    try {
      out.push(JSON.parse(text.slice(i, end + 1)));
      i = end;
    } catch { /* keep scanning */ }
  }
  return out;
}

/** Index of the bracket closing the one at `start` (strings respected), or -1. */
function matchingBracket(text, start) {
  const stack = [];
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === '[' || ch === '{') stack.push(ch === '[' ? ']' : '}');
    else if (ch === ']' || ch === '}') {
      if (stack.pop() !== ch) return -1;
      if (!stack.length) return i;
    }
  }
  return -1;
}

/** The boxes an answer contains: [{label, bbox: [x1,y1,x2,y2] in 0–1000, category, text}], duplicates removed. */
export function extractBoxes(text) {
  if (!text || !text.includes('bbox_2d')) return [];
  const boxes = [];
  const seen = new Set();
  for (const value of jsonValues(text)) {
    for (const item of itemsOf(value)) {
      if (!item || typeof item !== 'object') continue;
      const bbox = normalizeBox(item.bbox_2d);
      if (!bbox) continue;
      const label = typeof item.label === 'string' ? item.label.trim() : '';
      const key = `${label.toLowerCase()}|${bbox.join(',')}`;
      if (seen.has(key)) continue;
      seen.add(key);
      boxes.push({
        label, bbox,
        category: typeof item.category === 'string' ? item.category : null,
        text: typeof item.text === 'string' && item.text.trim() ? item.text.trim() : null,
      });
    }
  }
  return boxes;
}

/** The box in pixels of an image `width` × `height` (edges; the whole frame is [0, 0, width, height]). */
export function toPixels(bbox, width, height) {
  const px = (v, n) => Math.floor((2 * v * n + 1000) / 2000);
  return [px(bbox[0], width), px(bbox[1], height), px(bbox[2], width), px(bbox[3], height)];
}

/**
 * The image with its boxes: a figure whose overlay is positioned in percent of the image, a toggle, and a legend.
 * Hovering (or focusing) a box or its legend entry highlights both and the places in `textRoot` that name the
 * label or quote the text (marked by `markMatches`).
 */
export function renderBoxedImage(src, boxes, { textRoot = null, imageName = '' } = {}) {
  const wrap = document.createElement('div');
  wrap.className = 'boxed';
  const figure = document.createElement('figure');
  figure.className = 'boxed-figure';
  const img = document.createElement('img');
  img.src = src;
  img.alt = t('boxedImageAlt', { n: boxes.length, name: imageName });
  img.decoding = 'async';
  const overlay = document.createElement('div');
  overlay.className = 'box-overlay';
  const legend = document.createElement('ol');
  legend.className = 'box-legend';
  const marks = textRoot ? markMatches(textRoot, boxes) : [];

  const parts = boxes.map((box, i) => {
    const color = PALETTE[i % PALETTE.length];
    const el = document.createElement('div');
    el.className = 'box';
    el.dataset.box = String(i);
    el.style.left = `${box.bbox[0] / 10}%`;
    el.style.top = `${box.bbox[1] / 10}%`;
    el.style.width = `${(box.bbox[2] - box.bbox[0]) / 10}%`;
    el.style.height = `${(box.bbox[3] - box.bbox[1]) / 10}%`;
    el.style.setProperty('--box-color', color);
    el.tabIndex = 0;
    el.setAttribute('role', 'img');
    el.setAttribute('aria-label', `${i + 1}. ${box.label || box.category || ''}`);
    const tag = document.createElement('span');
    tag.className = 'box-tag';
    tag.textContent = `${i + 1} ${box.label || box.category || ''}`.trim();
    el.append(tag);
    overlay.append(el);

    const li = document.createElement('li');
    li.dataset.box = String(i);
    li.style.setProperty('--box-color', color);
    li.tabIndex = 0;
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    const name = document.createElement('span');
    name.textContent = [box.label || box.category || '—', box.text && box.text !== box.label ? `“${box.text}”` : ''].filter(Boolean).join(' ');
    const coords = document.createElement('code');
    coords.textContent = `[${box.bbox.join(', ')}]`;
    li.append(swatch, name, ' ', coords);
    legend.append(li);
    return { el, li };
  });

  const highlight = (index, on) => {
    parts[index].el.classList.toggle('active', on);
    parts[index].li.classList.toggle('active', on);
    for (const mark of marks) if (mark.dataset.box === String(index)) mark.classList.toggle('active', on);
  };
  const bind = (node, index) => {
    node.addEventListener('mouseenter', () => highlight(index, true));
    node.addEventListener('mouseleave', () => highlight(index, false));
    node.addEventListener('focus', () => highlight(index, true));
    node.addEventListener('blur', () => highlight(index, false));
  };
  parts.forEach(({ el, li }, i) => { bind(el, i); bind(li, i); });
  for (const mark of marks) bind(mark, Number(mark.dataset.box));

  const toggle = document.createElement('button');
  toggle.type = 'button';
  toggle.className = 'small toggle-boxes';
  toggle.textContent = t('hideBoxes');
  toggle.setAttribute('aria-pressed', 'true');
  toggle.addEventListener('click', () => {
    const shown = overlay.hidden;
    overlay.hidden = !shown;
    toggle.textContent = shown ? t('hideBoxes') : t('showBoxes');
    toggle.setAttribute('aria-pressed', String(shown));
  });

  figure.append(img, overlay);
  const head = document.createElement('div');
  head.className = 'boxed-head';
  const title = document.createElement('span');
  title.textContent = t('boxesFound', { n: boxes.length });
  head.append(title, toggle);
  wrap.append(head, figure, legend);
  return wrap;
}

/**
 * Wraps the first occurrence of each box's label (and quoted text) in `root`'s text with <mark data-box=i>, so the
 * answer's words light up with their box. Text is split at node level; nothing is parsed as HTML.
 */
export function markMatches(root, boxes) {
  const marks = [];
  boxes.forEach((box, index) => {
    for (const needle of [box.label, box.text]) {
      if (!needle || needle.length < 2) continue;
      const mark = wrapFirst(root, needle, index);
      if (mark) marks.push(mark);
    }
  });
  return marks;
}

function wrapFirst(root, needle, index) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => (node.parentElement && node.parentElement.closest('mark.box-ref, .boxed, pre.card-raw')
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  let node;
  while ((node = walker.nextNode())) {
    const at = node.nodeValue.indexOf(needle);
    if (at < 0) continue;
    const range = document.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + needle.length);
    const mark = document.createElement('mark');
    mark.className = 'box-ref';
    mark.dataset.box = String(index);
    mark.style.setProperty('--box-color', PALETTE[index % PALETTE.length]);
    range.surroundContents(mark);
    return mark;
  }
  return null;
}
