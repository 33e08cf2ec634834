// UI strings in English and Chinese. The language comes from the browser unless the user picked one.
const STRINGS = {
  en: {
    appName: 'PostLens',
    skip: 'Skip to the message box',
    conversations: 'Conversations',
    newChat: 'New conversation',
    search: 'Search conversations',
    searchPlaceholder: 'Search titles and text',
    exportAll: 'Export all',
    importFile: 'Import',
    rename: 'Rename',
    export: 'Export',
    exportCsv: 'CSV',
    exportCsvTitle: 'Export the structured answers as CSV',
    delete: 'Delete',
    settings: 'Settings',
    language: 'Language',
    openSidebar: 'Show conversations',
    closeSidebar: 'Hide conversations',
    messages: 'Messages',
    tasks: 'Tasks',
    attached: 'Attached images',
    addImages: 'Add images',
    message: 'Message',
    placeholder: 'Ask about the images… (Enter sends, Shift+Enter for a new line)',
    send: 'Send',
    stop: 'Stop',
    removeImage: 'Remove image {name}',
    dropHere: 'Drop images to attach them',
    copy: 'Copy',
    copied: 'Copied',
    regenerate: 'Regenerate',
    edit: 'Edit',
    editing: 'Editing the last question. Send replaces it and the answer after it.',
    cancel: 'Cancel',
    rawJson: 'Raw JSON',
    card: 'Card',
    structured: 'Structured result',
    tokens: '{n} tokens',
    ttft: 'first token {ms} ms',
    speed: '{v} tokens/s',
    cacheHit: 'image from cache',
    cacheMiss: 'image encoded',
    stopped: 'stopped',
    empty: 'Attach images (drop, paste or +) and ask a question, or pick a task below.',
    untitled: 'New conversation',
    renamePrompt: 'New title',
    confirmDelete: 'Delete “{title}”? This cannot be undone.',
    noConversations: 'No conversations yet',
    noMatches: 'Nothing matches',
    statusLoading: 'The model is loading… you can type now and send when it is ready.',
    statusBusy: 'The server is busy (too many requests). Try again in {s} s.',
    statusUnreachable: 'Cannot reach the server. Check that postlens serve is running.',
    statusFailed: 'The model failed to load: {reason}',
    statusError: 'Error: {message}',
    statusImported: 'Imported {n} conversation(s).',
    statusImportFailed: 'Import failed: {message}',
    statusTooBig: 'Image {name} is too large to read.',
    statusNotImage: '{name} is not an image.',
    statusDownscaled: 'Downscaled {name} to {w}×{h} for upload.',
    needInput: 'Type a question or attach an image first.',
    temperature: 'Temperature',
    maxTokens: 'Max tokens',
    detail: 'Image detail',
    detailAuto: 'Auto',
    detailLow: 'Low (faster)',
    detailHigh: 'High (small text)',
    systemPrompt: 'System prompt',
    apiKey: 'API key (if the server needs one)',
    close: 'Close',
    reset: 'Reset',
    settingsSaved: 'Settings are kept in this browser.',
    you: 'You',
    assistant: 'PostLens',
  },
  zh: {
    appName: 'PostLens',
    skip: '跳到输入框',
    conversations: '对话',
    newChat: '新对话',
    search: '搜索对话',
    searchPlaceholder: '搜索标题和内容',
    exportAll: '全部导出',
    importFile: '导入',
    rename: '重命名',
    export: '导出',
    exportCsv: 'CSV',
    exportCsvTitle: '把结构化结果导出为 CSV',
    delete: '删除',
    settings: '设置',
    language: '语言',
    openSidebar: '显示对话列表',
    closeSidebar: '隐藏对话列表',
    messages: '消息',
    tasks: '任务',
    attached: '已添加的图片',
    addImages: '添加图片',
    message: '消息',
    placeholder: '询问图片内容……（Enter 发送，Shift+Enter 换行）',
    send: '发送',
    stop: '停止',
    removeImage: '移除图片 {name}',
    dropHere: '松开即可添加图片',
    copy: '复制',
    copied: '已复制',
    regenerate: '重新生成',
    edit: '编辑',
    editing: '正在编辑上一个问题。发送后将替换它及其回答。',
    cancel: '取消',
    rawJson: '原始 JSON',
    card: '卡片',
    structured: '结构化结果',
    tokens: '{n} 个词元',
    ttft: '首词元 {ms} 毫秒',
    speed: '每秒 {v} 个词元',
    cacheHit: '图片来自缓存',
    cacheMiss: '图片已编码',
    stopped: '已停止',
    empty: '添加图片（拖放、粘贴或点 +）并提问，或选择下面的任务。',
    untitled: '新对话',
    renamePrompt: '新标题',
    confirmDelete: '删除“{title}”？此操作无法撤销。',
    noConversations: '还没有对话',
    noMatches: '没有匹配的对话',
    statusLoading: '模型加载中……可以先输入，加载完成后再发送。',
    statusBusy: '服务器繁忙（请求过多），请 {s} 秒后重试。',
    statusUnreachable: '无法连接服务器，请确认 postlens serve 正在运行。',
    statusFailed: '模型加载失败：{reason}',
    statusError: '错误：{message}',
    statusImported: '已导入 {n} 个对话。',
    statusImportFailed: '导入失败：{message}',
    statusTooBig: '图片 {name} 太大，无法读取。',
    statusNotImage: '{name} 不是图片。',
    statusDownscaled: '已将 {name} 缩小到 {w}×{h} 再上传。',
    needInput: '请先输入问题或添加图片。',
    temperature: '温度',
    maxTokens: '最大词元数',
    detail: '图片细节',
    detailAuto: '自动',
    detailLow: '低（更快）',
    detailHigh: '高（小字）',
    systemPrompt: '系统提示词',
    apiKey: 'API 密钥（服务器需要时填写）',
    close: '关闭',
    reset: '重置',
    settingsSaved: '设置保存在此浏览器中。',
    you: '你',
    assistant: 'PostLens',
  },
};

export const LANGUAGES = [['en', 'English'], ['zh', '中文']];

let current = pickLanguage();

function pickLanguage() {
  const saved = localStorage.getItem('postlens.lang');
  if (saved && STRINGS[saved]) return saved;
  const browser = (navigator.languages && navigator.languages[0]) || navigator.language || 'en';
  return browser.toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

export function lang() { return current; }

export function setLang(code) {
  if (!STRINGS[code]) return;
  current = code;
  localStorage.setItem('postlens.lang', code);
  applyTranslations(document);
}

/** The string for `key` in the current language, with `{name}` placeholders filled from `values`. */
export function t(key, values = {}) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

/** Fills `data-i18n` (text), `data-i18n-placeholder`, `data-i18n-label` (aria-label) and `data-i18n-title`. */
export function applyTranslations(root) {
  document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-label]')) el.setAttribute('aria-label', t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
}
