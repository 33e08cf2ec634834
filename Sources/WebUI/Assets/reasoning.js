// A thinking model's reasoning (`reasoning_content`), shown collapsed above its answer: the answer is what the
// user asked for; the reasoning is one click away. Text goes in through textContent.
import { t } from './i18n.js';

/** A collapsed <details> with the reasoning; `live` while it streams (then its body is updated in place). */
export function renderReasoning(text, { live = false, tokens = null } = {}) {
  const details = document.createElement('details');
  details.className = 'reasoning';
  const summary = document.createElement('summary');
  summary.textContent = live ? t('thinkingLive') : tokens ? t('reasoningTokens', { n: tokens }) : t('reasoning');
  const body = document.createElement('div');
  body.className = 'reasoning-text';
  body.textContent = text;
  details.append(summary, body);
  return details;
}
