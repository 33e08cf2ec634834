// Task presets: one click sends the prompt (in the UI language) as a normal chat message with the attached
// images. `structured: true` presets ask for one JSON object, which the page shows as a card.
// (When /v1/analyze lands, a preset can name its task schema here and the page can switch to it.)
export const PRESETS = [
  {
    id: 'ocr',
    label: { en: 'Read all text', zh: '识别全部文字' },
    prompt: {
      en: 'Read all the text in the image(s), exactly as written, in reading order. Keep line breaks. Do not translate or summarize.',
      zh: '逐字读出图片中的全部文字，按阅读顺序，保留换行，不要翻译或概括。',
    },
    structured: false,
  },
  {
    id: 'describe',
    label: { en: 'Describe', zh: '描述' },
    prompt: {
      en: 'Describe the image(s) in detail: the scene, people and objects, any visible text, and what the post seems to be about.',
      zh: '详细描述图片：场景、人物和物体、可见的文字，以及这条帖子大概在讲什么。',
    },
    structured: false,
  },
  {
    id: 'moderation',
    label: { en: 'Moderation check', zh: '内容审核' },
    prompt: {
      en: 'Check the image(s) for content that breaks common social-media rules. Answer with one JSON object only: ' +
        '{"safe": true|false, "categories": ["violence"|"adult"|"hate"|"harassment"|"self_harm"|"drugs"|"weapons"|"spam"|"scam"|"other"], ' +
        '"severity": "none"|"low"|"medium"|"high", "reason": "one sentence"}',
      zh: '检查图片中是否有违反常见社交媒体规则的内容。只用一个 JSON 对象回答：' +
        '{"safe": true|false, "categories": ["violence"|"adult"|"hate"|"harassment"|"self_harm"|"drugs"|"weapons"|"spam"|"scam"|"other"], ' +
        '"severity": "none"|"low"|"medium"|"high", "reason": "一句话说明"}',
    },
    structured: true,
  },
  {
    id: 'sentiment',
    label: { en: 'Post + comment sentiment', zh: '帖子与评论情感' },
    prompt: {
      en: 'The image is a social-media post; the comment (if any) follows below. Judge the sentiment of the post and of the comment. ' +
        'Answer with one JSON object only: {"post": {"sentiment": "positive"|"neutral"|"negative", "score": -1.0..1.0}, ' +
        '"comment": {"sentiment": "positive"|"neutral"|"negative", "score": -1.0..1.0}, "comment_agrees_with_post": true|false, "summary": "one sentence"}\n\nComment: ',
      zh: '图片是一条社交媒体帖子，评论（如有）写在下面。判断帖子和评论的情感。只用一个 JSON 对象回答：' +
        '{"post": {"sentiment": "positive"|"neutral"|"negative", "score": -1.0..1.0}, ' +
        '"comment": {"sentiment": "positive"|"neutral"|"negative", "score": -1.0..1.0}, "comment_agrees_with_post": true|false, "summary": "一句话"}\n\n评论：',
    },
    structured: true,
    // The composer text is appended (the comment).
    appendInput: true,
  },
  {
    id: 'promo',
    label: { en: 'Extract promotion', zh: '提取促销信息' },
    prompt: {
      en: 'Extract the promotion or advertisement details from the image(s). Answer with one JSON object only: ' +
        '{"is_promotion": true|false, "brand": "", "products": [""], "offer": "", "price": "", "original_price": "", "discount": "", ' +
        '"valid_until": "", "promo_code": "", "call_to_action": "", "contact": "", "urls": [""]} (use "" or [] when absent)',
      zh: '提取图片中的促销或广告信息。只用一个 JSON 对象回答：' +
        '{"is_promotion": true|false, "brand": "", "products": [""], "offer": "", "price": "", "original_price": "", "discount": "", ' +
        '"valid_until": "", "promo_code": "", "call_to_action": "", "contact": "", "urls": [""]}（没有的字段用 "" 或 []）',
    },
    structured: true,
  },
  {
    id: 'detect',
    label: { en: 'Locate', zh: '定位' },
    // Qwen3-VL's own grounding format; the page draws the boxes over the image (boxes.js).
    prompt: {
      en: 'Locate the QR codes, contact details, logos, products, prices and slogans in the image. Answer with a JSON array only: ' +
        '[{"bbox_2d": [x1, y1, x2, y2], "label": "what it is"}] with coordinates from 0 to 1000 relative to the image.',
      zh: '在图片中定位二维码、联系方式、品牌标志、商品、价格和宣传语。只用一个 JSON 数组回答：' +
        '[{"bbox_2d": [x1, y1, x2, y2], "label": "是什么"}]，坐标按图片宽高归一化到 0 到 1000。',
    },
    structured: false,
  },
];

/** The prompt for `preset` in `lang`, with the composer text appended where the preset takes it. */
export function presetPrompt(preset, lang, input) {
  const base = preset.prompt[lang] ?? preset.prompt.en;
  const extra = (input ?? '').trim();
  if (preset.appendInput) return base + (extra || '-');
  return extra ? `${base}\n\n${extra}` : base;
}
