// PostLens web UI: conversations in the sidebar, messages with images, streamed Markdown answers.
import { api, APIError, answerStats, download, health, setAPIKey, streamChat } from './api.js';
import { applyTranslations, lang, LANGUAGES, setLang, t } from './i18n.js';
import { DEFAULT_MAX_PIXELS, imageFilesFrom, prepareImage, readAsDataURL } from './images.js';
import { watchJobs } from './jobs.js';
import { renderMarkdown } from './markdown.js';
import { PRESETS, presetPrompt } from './presets.js';
import { extractJSON, renderCard, toCSV } from './structured.js';
import { extractBoxes, renderBoxedImage, toPixels } from './boxes.js';
import { renderReasoning } from './reasoning.js';
import { fillPicker, listModels, loadModel, modelLabel, modelName } from './models.js';

const $ = (id) => document.getElementById(id);

// ---- Settings (per browser) ----
const DEFAULT_SETTINGS = { temperature: 0.7, maxTokens: 1024, detail: 'auto', system: '', apiKey: '', thinking: 'on', reasoningBudget: '' };
function loadSettings() {
  try { return { ...DEFAULT_SETTINGS, ...JSON.parse(localStorage.getItem('postlens.settings') || '{}') }; }
  catch { return { ...DEFAULT_SETTINGS }; }
}
function saveSettings() { localStorage.setItem('postlens.settings', JSON.stringify(state.settings)); }

const state = {
  settings: loadSettings(),
  conversations: [],
  current: null,        // {id, title, messages: [...], parameters}
  pending: [],          // attachments: {id, name, dataURL, hash?}
  editing: false,
  streaming: null,      // {controller}
  health: { status: 'unknown' },
  maxPixels: DEFAULT_MAX_PIXELS,
  imageCache: new Map(), // sha256 → data URL
  searchTimer: null,
};
setAPIKey(state.settings.apiKey);

// ---- Status line ----
let statusTimer = null;
function showStatus(text, kind = 'info', sticky = false) {
  const el = $('status');
  clearTimeout(statusTimer);
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = !text;
  if (text && !sticky) statusTimer = setTimeout(() => { el.hidden = true; el.textContent = ''; }, 6000);
}
function clearStatus() { showStatus(''); }

function explain(error) {
  if (!(error instanceof APIError)) return t('statusError', { message: String(error && error.message || error) });
  switch (error.kind) {
    case 'unreachable': return t('statusUnreachable');
    case 'loading': return state.health.status === 'failed' ? t('statusFailed', { reason: state.health.error || error.message }) : loadingText(state.health);
    case 'busy': return t('statusBusy', { s: error.retryAfter ?? 5 });
    default: return t('statusError', { message: error.message });
  }
}
function showError(error) {
  showStatus(explain(error), error && error.kind === 'loading' ? 'warn' : 'error', true);
  if (error && (error.kind === 'loading' || error.kind === 'unreachable')) pollHealth();
}

// ---- Health ----
let healthTimer = null;
async function pollHealth() {
  clearTimeout(healthTimer);
  try {
    const h = await health();
    state.health = h;
    if (h.max_image_pixels > 0) state.maxPixels = h.max_image_pixels;
    showModel(h);
    document.body.dataset.health = h.status;
    // A switch whose model failed to load (the previous one is back): said once.
    const switchFailed = h.switch_error && h.switch_error !== state.shownSwitchError;
    if (switchFailed) {
      state.shownSwitchError = h.switch_error;
      showStatus(t('switchFailed', { reason: h.switch_error }), 'error', true);
    }
    if (h.status === 'ready') {
      const el = $('status');
      if (!switchFailed && (el.dataset.kind === 'warn' || el.textContent === t('statusUnreachable'))) clearStatus();
      return;
    }
    if (h.status === 'failed') { showStatus(t('statusFailed', { reason: h.error || '' }), 'error', true); return; }
    showStatus(loadingText(h), 'warn', true);
  } catch {
    state.health = { status: 'unreachable' };
    document.body.dataset.health = 'unreachable';
    showStatus(t('statusUnreachable'), 'error', true);
  }
  healthTimer = setTimeout(pollHealth, 2000);
}

/** What a loading server is doing (`/health`'s `loading`): downloading the model (how far), or reading it. */
function loadingText(h) {
  const l = h && h.loading;
  if (l && l.phase === 'downloading' && l.total_bytes > 0) {
    return t('statusDownloading', {
      percent: Math.floor((l.fraction ?? l.completed_bytes / l.total_bytes) * 100),
      done: formatBytes(l.completed_bytes), total: formatBytes(l.total_bytes),
    });
  }
  return t('statusLoading');
}

function formatBytes(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(2) + ' GB';
  if (n >= 1e6) return (n / 1e6).toFixed(1) + ' MB';
  return Math.round(n / 1e3) + ' kB';
}

/**
 * The served model in the top bar (from /health: its id and, when known, family member and thinking mode): a plain
 * badge, or a picker when the server offers several models and this page may list them (/v1/models, with its key).
 */
function showModel(h) {
  const badge = $('model-badge'), picker = $('model-picker');
  const info = h.model_info || null;
  state.modelInfo = info;
  badge.textContent = modelLabel(h.model, info);
  badge.title = t('servedModel', { name: h.model || '' });
  picker.title = badge.title;
  document.body.dataset.thinking = info && info.thinking ? 'true' : 'false';
  document.body.dataset.model = h.model || '';
  // The list is asked for again whenever the served model or its state changes (a switch, the end of loading).
  const key = `${h.model}|${h.status}`;
  if (key !== state.modelKey) {
    state.modelKey = key;
    refreshPicker(h);
  }
  picker.disabled = h.status !== 'ready';
  picker.hidden = !state.offered;
  badge.hidden = state.offered || !badge.textContent;
}

async function refreshPicker(h) {
  let models = null;
  try { models = (await listModels()).data; } catch { /* no key for /v1/models, or not reachable: the badge stays */ }
  state.offered = fillPicker($('model-picker'), models, h.model);
  $('model-picker').hidden = !state.offered;
  $('model-badge').hidden = state.offered || !$('model-badge').textContent;
}

/** The operator picked another model: confirm, ask the server to switch, follow /health while it loads. */
async function pickModel() {
  const picker = $('model-picker');
  const id = picker.value, served = state.health.model;
  if (id === served) return;
  const entry = [...picker.options].find((o) => o.value === id);
  if (!confirm(t('switchConfirm', { name: entry ? entry.textContent : id, current: modelName(served, state.modelInfo) }))) {
    picker.value = served;
    return;
  }
  try {
    await loadModel(id);
    showStatus(t('switching', { name: entry ? entry.textContent : id }), 'warn', true);
  } catch (error) {
    picker.value = served;
    showError(error);
  }
  pollHealth();
}

// ---- Sidebar ----
async function refreshList() {
  const q = $('search').value.trim();
  try {
    const { data } = await api.list(q);
    state.conversations = data;
    renderList(q);
  } catch (error) { showError(error); }
}

function renderList(query) {
  const list = $('conversation-list');
  list.replaceChildren();
  if (!state.conversations.length) {
    const li = document.createElement('li');
    li.className = 'hint';
    li.textContent = query ? t('noMatches') : t('noConversations');
    list.append(li);
    return;
  }
  for (const c of state.conversations) {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'conversation-item';
    button.dataset.id = c.id;
    if (state.current && state.current.id === c.id) button.setAttribute('aria-current', 'true');
    const title = document.createElement('span');
    title.className = 'conversation-title';
    title.textContent = c.title;
    button.append(title);
    if (c.snippet) {
      const snippet = document.createElement('span');
      snippet.className = 'snippet';
      snippet.textContent = c.snippet;
      button.append(snippet);
    }
    button.addEventListener('click', () => { openConversation(c.id); closeSidebar(); });
    li.append(button);
    list.append(li);
  }
}

async function openConversation(id) {
  if (state.streaming) stopGeneration();
  try {
    state.current = await api.get(id);
    localStorage.setItem('postlens.current', id);
    cancelEdit();
    renderConversation();
    renderList($('search').value.trim());
  } catch (error) {
    if (error.status === 404) { localStorage.removeItem('postlens.current'); newConversation(); refreshList(); return; }
    showError(error);
  }
}

function newConversation() {
  if (state.streaming) stopGeneration();
  state.current = null;
  localStorage.removeItem('postlens.current');
  cancelEdit();
  renderConversation();
  renderList($('search').value.trim());
  $('composer-input').focus();
}

function updateTopbar() {
  const has = !!state.current;
  $('conversation-title').textContent = has ? state.current.title : t('appName');
  for (const id of ['rename-button', 'export-button', 'delete-button']) $(id).disabled = !has;
  $('csv-button').disabled = !has || structuredAnswers().length === 0;
  document.title = has ? `${state.current.title} · PostLens` : 'PostLens';
}

// ---- Messages ----
function renderConversation() {
  updateTopbar();
  const box = $('messages');
  box.replaceChildren();
  const messages = state.current ? state.current.messages : [];
  if (!messages.length) {
    const hint = document.createElement('p');
    hint.id = 'empty-hint';
    hint.className = 'hint';
    hint.textContent = t('empty');
    box.append(hint);
  }
  messages.forEach((m, index) => box.append(renderMessage(m, index, messages)));
  box.scrollTop = box.scrollHeight;
}

function renderMessage(message, index, all) {
  const article = document.createElement('article');
  article.className = `message ${message.role}`;
  article.dataset.index = String(index);
  article.dataset.role = message.role;
  const who = document.createElement('h2');
  who.className = 'visually-hidden';
  who.textContent = message.role === 'user' ? t('you') : t('assistant');
  article.append(who);

  if (message.images && message.images.length) {
    const strip = document.createElement('div');
    strip.className = 'message-images';
    for (const ref of message.images) {
      const img = document.createElement('img');
      img.src = state.imageCache.get(ref.sha256) || api.imageURL(ref.sha256);
      img.alt = '';
      img.loading = 'lazy';
      img.decoding = 'async';
      strip.append(img);
    }
    article.append(strip);
  }
  const content = document.createElement('div');
  content.className = 'content';
  if (message.role === 'assistant') {
    if (message.stats && message.stats.reasoning) article.append(renderReasoning(message.stats.reasoning, { tokens: message.stats.reasoning_tokens }));
    fillAnswer(content, message.content);
  } else content.textContent = message.content;
  article.append(content);
  if (message.role === 'assistant') attachBoxes(article, content, message, index, all);

  const isLast = index === all.length - 1;
  const lastUser = lastIndexOf(all, 'user');
  const actions = document.createElement('div');
  actions.className = 'message-actions';
  if (message.role === 'assistant') {
    const meta = document.createElement('p');
    meta.className = 'meta';
    meta.textContent = describeStats(message.stats);
    if (meta.textContent) article.append(meta);
    actions.append(actionButton(t('copy'), 'copy', async (button) => {
      await copyText(message.content);
      button.textContent = t('copied');
      setTimeout(() => { button.textContent = t('copy'); }, 1500);
    }));
    if (isLast) actions.append(actionButton(t('regenerate'), 'regenerate', () => regenerate()));
  } else if (message.role === 'user' && index === lastUser) {
    actions.append(actionButton(t('edit'), 'edit', () => startEdit(index)));
  }
  if (actions.childElementCount) article.append(actions);
  return article;
}

function fillAnswer(content, text) {
  content.replaceChildren(renderMarkdown(text));
  const value = extractJSON(text);
  if (value) content.append(renderCard(value, { onCsv: (v) => saveBlob(new Blob([toCSV([v])], { type: 'text/csv' }), 'postlens-answer.csv') }));
}

/** The image an answer is about: the last image of the nearest earlier question that has images. */
function imageFor(index, all) {
  for (let i = index - 1; i >= 0; i--) {
    const m = all[i];
    if (m.role === 'user' && m.images && m.images.length) return m.images[m.images.length - 1];
  }
  return null;
}

/** Boxes in the answer (Qwen grounding JSON, detect's objects, moderation's evidence) drawn over its image. */
function attachBoxes(article, content, message, index, all) {
  const boxes = extractBoxes(message.content);
  const ref = imageFor(index, all);
  if (!boxes.length || !ref) return;
  const src = state.imageCache.get(ref.sha256) || api.imageURL(ref.sha256);
  article.insertBefore(renderBoxedImage(src, boxes, { textRoot: content, imageName: ref.sha256.slice(0, 8) }), content.nextSibling);
}

/** Boxes kept with an answer (and so exported with the conversation): both frames, and the image they belong to. */
async function boxesForStats(text, messages) {
  const boxes = extractBoxes(text);
  const ref = imageFor(messages.length, messages);
  if (!boxes.length || !ref) return null;
  const size = await imageSize(await imageDataURL(ref.sha256));
  return boxes.map((b) => ({
    label: b.label, category: b.category, text: b.text, image: ref.sha256, image_size: size,
    bbox_2d: b.bbox, bbox_px: size ? toPixels(b.bbox, size[0], size[1]) : null,
  }));
}

function imageSize(url) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve([img.naturalWidth, img.naturalHeight]);
    img.onerror = () => resolve(null);
    img.src = url;
  });
}

function describeStats(stats) {
  if (!stats) return '';
  const parts = [];
  if (stats.completion_tokens != null) parts.push(t('tokens', { n: stats.completion_tokens }));
  if (stats.ttft_ms != null) parts.push(t('ttft', { ms: Math.round(stats.ttft_ms) }));
  if (stats.tokens_per_s != null) parts.push(t('speed', { v: stats.tokens_per_s }));
  if (stats.image_cache != null) parts.push(stats.image_cache ? t('cacheHit') : t('cacheMiss'));
  if (stats.stopped) parts.push(t('stopped'));
  return parts.join(' · ');
}

function actionButton(label, name, onClick) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = `small action-${name}`;
  button.textContent = label;
  button.addEventListener('click', () => onClick(button));
  return button;
}

function lastIndexOf(messages, role) {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i].role === role) return i;
  return -1;
}

async function copyText(text) {
  try { await navigator.clipboard.writeText(text); return; } catch { /* fall back */ }
  const area = document.createElement('textarea');
  area.value = text;
  document.body.append(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

// ---- Attachments ----
let attachmentCounter = 0;
async function addFiles(files) {
  for (const file of files) {
    try {
      const image = await prepareImage(file, state.maxPixels);
      state.pending.push({ id: ++attachmentCounter, name: image.name, dataURL: image.dataURL });
      if (image.downscaled) showStatus(t('statusDownscaled', { name: image.name, w: image.width, h: image.height }));
    } catch (error) {
      showStatus(error.message === 'too-big' ? t('statusTooBig', { name: file.name }) : t('statusNotImage', { name: file.name }), 'error');
    }
  }
  renderThumbs();
}

function renderThumbs() {
  const list = $('thumbs');
  list.replaceChildren();
  for (const item of state.pending) {
    const li = document.createElement('li');
    li.className = 'thumb';
    const img = document.createElement('img');
    img.src = item.dataURL;
    img.alt = item.name;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'remove-thumb';
    remove.textContent = '✕';
    remove.setAttribute('aria-label', t('removeImage', { name: item.name }));
    remove.addEventListener('click', () => {
      state.pending = state.pending.filter((p) => p !== item);
      renderThumbs();
      $('composer-input').focus();
    });
    li.append(img, remove);
    list.append(li);
  }
  list.hidden = state.pending.length === 0;
}

// ---- Sending and generating ----
async function send(text, { preset = null } = {}) {
  if (state.streaming) return;
  const images = state.pending.slice();
  if (!text.trim() && !images.length) { showStatus(t('needInput'), 'warn'); return; }
  clearStatus();
  state.streaming = { controller: new AbortController() };
  setBusy(true);
  try {
    if (!state.current) {
      const title = (preset ? preset.label[lang()] || preset.label.en : text.trim().split('\n')[0]).slice(0, 80) || t('untitled');
      state.current = await api.create(title, currentParameters());
      localStorage.setItem('postlens.current', state.current.id);
    } else if (state.editing) {
      const keep = lastIndexOf(state.current.messages, 'user');
      state.current = await api.truncate(state.current.id, keep);
    }
    const stored = await api.append(state.current.id, {
      role: 'user',
      content: text,
      images: images.map((p) => p.hash || p.dataURL),
    });
    stored.images.forEach((ref, i) => { if (images[i] && images[i].dataURL) state.imageCache.set(ref.sha256, images[i].dataURL); });
    state.current.messages.push(stored);
    state.pending = [];
    $('composer-input').value = '';
    autoGrow();
    cancelEdit();
    renderThumbs();
    renderConversation();
    refreshList();
  } catch (error) {
    state.streaming = null;
    setBusy(false);
    showError(error);
    return;
  }
  await generate(state.streaming.controller);
}

function currentParameters() {
  const s = state.settings;
  return { temperature: Number(s.temperature), max_tokens: Number(s.maxTokens), detail: s.detail, system: s.system || undefined };
}

async function chatMessages() {
  const out = [];
  if (state.settings.system.trim()) out.push({ role: 'system', content: state.settings.system.trim() });
  for (const m of state.current.messages) {
    if (m.role === 'user' && m.images && m.images.length) {
      const parts = [];
      for (const ref of m.images) {
        parts.push({ type: 'image_url', image_url: { url: await imageDataURL(ref.sha256), detail: state.settings.detail } });
      }
      if (m.content) parts.push({ type: 'text', text: m.content });
      out.push({ role: 'user', content: parts });
    } else {
      out.push({ role: m.role, content: m.content });
    }
  }
  return out;
}

async function imageDataURL(hash) {
  if (state.imageCache.has(hash)) return state.imageCache.get(hash);
  const blob = await download(api.imageURL(hash));
  const url = await readAsDataURL(blob);
  state.imageCache.set(hash, url);
  return url;
}

async function generate(controller = new AbortController()) {
  const conversation = state.current;
  const box = $('messages');
  const hint = $('empty-hint');
  if (hint) hint.remove();
  const placeholder = { role: 'assistant', content: '', images: [], stats: null };
  const article = renderMessage(placeholder, conversation.messages.length, [...conversation.messages, placeholder]);
  article.classList.add('streaming');
  article.setAttribute('aria-busy', 'true');
  article.querySelector('.message-actions')?.remove();
  const content = article.querySelector('.content');
  box.append(article);
  box.scrollTop = box.scrollHeight;

  state.streaming = { controller };
  setBusy(true);
  let result, stopped = false, failed = null;
  try {
    const body = {
      messages: await chatMessages(),
      temperature: Number(state.settings.temperature),
      max_tokens: Number(state.settings.maxTokens),
    };
    if (state.health.model) body.model = state.health.model;
    if (state.modelInfo && state.modelInfo.thinking) {
      if (state.settings.thinking === 'off') body.chat_template_kwargs = { enable_thinking: false };
      else if (state.settings.reasoningBudget !== '') body.max_reasoning_tokens = Number(state.settings.reasoningBudget);
    }
    let reasoningBox = null;
    if (controller.signal.aborted) throw Object.assign(new APIError('stopped', { kind: 'aborted' }), { partial: { text: '', chunks: 0, elapsedMs: 0, ttftMs: null } });
    result = await streamChat(body, {
      signal: controller.signal,
      onReasoning: (_, text) => {
        if (!reasoningBox) {
          reasoningBox = renderReasoning('', { live: true });
          article.insertBefore(reasoningBox, content);
        }
        reasoningBox.querySelector('.reasoning-text').textContent = text;
      },
      onDelta: (_, text) => {
        const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
        content.replaceChildren(renderMarkdown(text));
        if (nearBottom) box.scrollTop = box.scrollHeight;
      },
    });
  } catch (error) {
    if (error.kind === 'aborted') { stopped = true; result = error.partial; }
    else { failed = error; result = error.partial; }
  } finally {
    state.streaming = null;
    setBusy(false);
  }
  if (state.current !== conversation) return; // switched away meanwhile
  if (failed && !(result && result.text)) {
    article.remove();
    showError(failed);
    if (!conversation.messages.length || conversation.messages.at(-1).role === 'user') $('composer-input').focus();
    return;
  }
  if (failed) showError(failed);
  const stats = answerStats(result, { stopped: stopped || !!failed });
  if (result.reasoning) stats.reasoning = result.reasoning;
  const boxes = await boxesForStats(result.text, conversation.messages);
  if (boxes) stats.boxes = boxes;
  try {
    const saved = await api.append(conversation.id, { role: 'assistant', content: result.text, stats });
    conversation.messages.push(saved);
  } catch (error) {
    showError(error);
    conversation.messages.push({ role: 'assistant', content: result.text, stats, images: [] });
  }
  renderConversation();
  refreshList();
}

function setBusy(busy) {
  $('send-button').hidden = busy;
  $('stop-button').hidden = !busy;
  document.body.dataset.busy = busy ? 'true' : 'false';
  for (const b of document.querySelectorAll('#presets button')) b.disabled = busy;
  if (busy) $('stop-button').focus({ preventScroll: true });
  else if (document.activeElement === $('stop-button') || document.activeElement === document.body) $('composer-input').focus({ preventScroll: true });
}

function stopGeneration() {
  if (state.streaming) state.streaming.controller.abort();
}

async function regenerate() {
  if (state.streaming || !state.current) return;
  const messages = state.current.messages;
  const keep = lastIndexOf(messages, 'user') + 1;
  if (keep <= 0) return;
  const controller = new AbortController();
  state.streaming = { controller };
  setBusy(true);
  try {
    state.current = await api.truncate(state.current.id, keep);
    renderConversation();
  } catch (error) {
    state.streaming = null;
    setBusy(false);
    showError(error);
    return;
  }
  await generate(controller);
}

function startEdit(index) {
  const message = state.current.messages[index];
  state.editing = true;
  $('edit-banner').hidden = false;
  $('composer-input').value = message.content;
  state.pending = (message.images || []).map((ref) => ({
    id: ++attachmentCounter, name: ref.sha256.slice(0, 8), hash: ref.sha256,
    dataURL: state.imageCache.get(ref.sha256) || api.imageURL(ref.sha256),
  }));
  renderThumbs();
  autoGrow();
  $('composer-input').focus();
}

function cancelEdit() {
  if (!state.editing) return;
  state.editing = false;
  $('edit-banner').hidden = true;
  state.pending = [];
  $('composer-input').value = '';
  renderThumbs();
}

// ---- Conversation actions ----
async function renameCurrent() {
  if (!state.current) return;
  const title = prompt(t('renamePrompt'), state.current.title);
  if (title === null || !title.trim()) return;
  try {
    const summary = await api.update(state.current.id, { title: title.trim() });
    state.current.title = summary.title;
    updateTopbar();
    refreshList();
  } catch (error) { showError(error); }
}

async function deleteCurrent() {
  if (!state.current) return;
  if (!confirm(t('confirmDelete', { title: state.current.title }))) return;
  try {
    await api.remove(state.current.id);
    newConversation();
    refreshList();
  } catch (error) { showError(error); }
}

async function exportCurrent() {
  if (!state.current) return;
  try {
    const blob = await download(api.exportURL(state.current.id));
    saveBlob(blob, `postlens-${slug(state.current.title)}.json`);
  } catch (error) { showError(error); }
}

async function exportAll() {
  try {
    saveBlob(await download(api.exportAllURL()), 'postlens-conversations.json');
  } catch (error) { showError(error); }
}

/** One row per answer with a JSON object or boxes; boxes in both frames (0–1000 and pixels of the image). */
function structuredAnswers() {
  if (!state.current) return [];
  const rows = [];
  state.current.messages.forEach((m, index, all) => {
    if (m.role !== 'assistant') return;
    const value = extractJSON(m.content);
    const stored = m.stats && Array.isArray(m.stats.boxes) ? m.stats.boxes : null;
    const boxes = stored || extractBoxes(m.content).map((b) => ({ ...b, bbox_2d: b.bbox, bbox_px: null, image: imageFor(index, all)?.sha256 }));
    if (!value && !boxes.length) return;
    const row = { ...(value || {}) };
    if (boxes.length) {
      const cell = (key) => boxes.map((b) => `${b.label || b.category || ''} [${b[key] ? b[key].join(',') : ''}]`).join('; ');
      row.boxes_2d = cell('bbox_2d');
      row.boxes_px = cell('bbox_px');
      row.boxes_image = boxes[0].image || '';
    }
    rows.push(row);
  });
  return rows;
}

function exportCSV() {
  const rows = structuredAnswers();
  if (rows.length) saveBlob(new Blob([toCSV(rows)], { type: 'text/csv' }), `postlens-${slug(state.current.title)}.csv`);
}

async function importFile(file) {
  try {
    const text = await file.text();
    let doc;
    try { doc = JSON.parse(text); } catch { throw new APIError('not a JSON file', { kind: 'error' }); }
    const { data } = await api.importDocument(doc);
    showStatus(t('statusImported', { n: data.length }), 'info');
    await refreshList();
    if (data.length) openConversation(data[0].id);
  } catch (error) {
    showStatus(t('statusImportFailed', { message: error.message }), 'error', true);
  }
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function slug(title) {
  return (title || 'conversation').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || 'conversation';
}

// ---- Settings dialog ----
function openSettings() {
  const s = state.settings;
  $('set-temperature').value = s.temperature;
  $('temperature-value').textContent = Number(s.temperature).toFixed(2);
  $('set-max-tokens').value = s.maxTokens;
  $('set-detail').value = s.detail;
  $('set-system').value = s.system;
  $('set-api-key').value = s.apiKey;
  $('set-thinking').value = s.thinking;
  $('set-reasoning-budget').value = s.reasoningBudget;
  $('settings').showModal();
}

function readSettings() {
  const temperature = Math.min(2, Math.max(0, parseFloat($('set-temperature').value) || 0));
  const maxTokens = Math.min(32768, Math.max(1, parseInt($('set-max-tokens').value, 10) || DEFAULT_SETTINGS.maxTokens));
  const budget = parseInt($('set-reasoning-budget').value, 10);
  state.settings = {
    temperature, maxTokens, detail: $('set-detail').value, system: $('set-system').value, apiKey: $('set-api-key').value.trim(),
    thinking: $('set-thinking').value === 'off' ? 'off' : 'on', reasoningBudget: Number.isFinite(budget) && budget >= 0 ? String(budget) : '',
  };
  setAPIKey(state.settings.apiKey);
  saveSettings();
}

// ---- Layout helpers ----
function autoGrow() {
  const area = $('composer-input');
  area.style.height = 'auto';
  area.style.height = Math.min(area.scrollHeight, 220) + 'px';
}
function openSidebar() {
  document.body.classList.add('sidebar-open');
  $('scrim').hidden = false;
  $('open-sidebar').setAttribute('aria-expanded', 'true');
  $('search').focus();
}
function closeSidebar() {
  if (!document.body.classList.contains('sidebar-open')) return;
  document.body.classList.remove('sidebar-open');
  $('scrim').hidden = true;
  $('open-sidebar').setAttribute('aria-expanded', 'false');
}

function renderPresets() {
  const box = $('presets');
  box.replaceChildren();
  for (const preset of PRESETS) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'preset';
    button.dataset.preset = preset.id;
    button.textContent = preset.label[lang()] || preset.label.en;
    button.disabled = !!state.streaming;
    button.addEventListener('click', () => send(presetPrompt(preset, lang(), $('composer-input').value), { preset }));
    box.append(button);
  }
}

function renderLanguages() {
  const select = $('language');
  select.replaceChildren();
  for (const [code, name] of LANGUAGES) {
    const option = document.createElement('option');
    option.value = code;
    option.textContent = name;
    option.selected = code === lang();
    select.append(option);
  }
}

// ---- Wiring ----
function wire() {
  $('composer').addEventListener('submit', (event) => { event.preventDefault(); send($('composer-input').value); });
  $('composer-input').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      send($('composer-input').value);
    }
  });
  $('composer-input').addEventListener('input', autoGrow);
  $('stop-button').addEventListener('click', stopGeneration);
  $('attach-button').addEventListener('click', () => $('file-input').click());
  $('file-input').addEventListener('change', async (event) => {
    await addFiles([...event.target.files]);
    event.target.value = '';
  });
  $('new-chat').addEventListener('click', () => { newConversation(); closeSidebar(); });
  $('search').addEventListener('input', () => {
    clearTimeout(state.searchTimer);
    state.searchTimer = setTimeout(refreshList, 200);
  });
  $('rename-button').addEventListener('click', renameCurrent);
  $('model-picker').addEventListener('change', pickModel);
  $('delete-button').addEventListener('click', deleteCurrent);
  $('export-button').addEventListener('click', exportCurrent);
  $('csv-button').addEventListener('click', exportCSV);
  $('export-all').addEventListener('click', exportAll);
  $('import-button').addEventListener('click', () => $('import-file').click());
  $('import-file').addEventListener('change', async (event) => {
    const file = event.target.files[0];
    event.target.value = '';
    if (file) await importFile(file);
  });
  $('cancel-edit').addEventListener('click', cancelEdit);
  $('settings-button').addEventListener('click', openSettings);
  $('set-temperature').addEventListener('input', () => { $('temperature-value').textContent = Number($('set-temperature').value).toFixed(2); });
  $('settings').addEventListener('close', readSettings);
  $('reset-settings').addEventListener('click', () => {
    state.settings = { ...DEFAULT_SETTINGS, apiKey: state.settings.apiKey };
    saveSettings();
    openSettings();
  });
  $('language').addEventListener('change', (event) => {
    setLang(event.target.value);
    renderPresets();
    renderConversation();
    renderList($('search').value.trim());
  });
  $('open-sidebar').addEventListener('click', openSidebar);
  $('close-sidebar').addEventListener('click', closeSidebar);
  $('scrim').addEventListener('click', closeSidebar);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      if (state.streaming) stopGeneration();
      else closeSidebar();
    }
  });

  // Paste images anywhere on the page.
  document.addEventListener('paste', (event) => {
    const files = imageFilesFrom(event.clipboardData);
    if (files.length) { event.preventDefault(); addFiles(files); }
  });
  // Drag and drop anywhere on the page.
  let dragDepth = 0;
  const hasFiles = (event) => event.dataTransfer && [...(event.dataTransfer.types || [])].includes('Files');
  document.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth++;
    $('drop-overlay').hidden = false;
  });
  document.addEventListener('dragover', (event) => { if (hasFiles(event)) event.preventDefault(); });
  document.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) $('drop-overlay').hidden = true;
  });
  document.addEventListener('drop', (event) => {
    event.preventDefault();
    dragDepth = 0;
    $('drop-overlay').hidden = true;
    const files = imageFilesFrom(event.dataTransfer);
    if (files.length) addFiles(files);
  });
}

async function start() {
  applyTranslations(document);
  renderLanguages();
  renderPresets();
  renderThumbs();
  wire();
  pollHealth();
  watchJobs();
  await refreshList();
  const last = localStorage.getItem('postlens.current');
  if (last && state.conversations.some((c) => c.id === last)) await openConversation(last);
  else renderConversation();
  document.body.dataset.ready = 'true';
  $('composer-input').focus();
}

start();
