// The served model in the top bar, and the operator's pick among the models the server offers (`serve --offer`).
// One model is loaded at a time: picking another asks the server to switch (POST /v1/models/load); /health then says
// `loading` until the new one is ready, and the page follows it like at start-up.
import { request } from './api.js';
import { t } from './i18n.js';

/** GET /v1/models: every offered model, the served one first, each with `postlens.status`. */
export const listModels = () => request('GET', '/v1/models');

/** POST /v1/models/load: switch the served model (202 while it loads, 200 when it is already served). */
export const loadModel = (id) => request('POST', '/v1/models/load', { model: id });

/** What to call a model: its family name (`Qwen3-VL-4B-Thinking`) when its shapes match one, else its id. */
export function modelName(id, info) {
  return info && info.name && info.name !== 'Qwen3-VL' ? info.name : id || '';
}

/** The top-bar text for a model: its name, with "thinking" added when the name does not say it. */
export function modelLabel(id, info) {
  const name = modelName(id, info);
  return name + (info && info.thinking && !/thinking/i.test(name) ? ` · ${t('thinkingModel')}` : '');
}

/**
 * Fills `select` with the offered `models` (entries of /v1/models) and selects `served`. Returns whether there is a
 * choice to make (two or more models); with one, the caller shows the plain badge instead.
 */
export function fillPicker(select, models, served) {
  if (!Array.isArray(models) || models.length < 2) return false;
  const options = models.map((m) => {
    const option = document.createElement('option');
    option.value = m.id;
    const name = modelLabel(m.id, m.postlens);
    option.textContent = name === m.id ? name : `${name} (${m.id})`;
    return option;
  });
  select.replaceChildren(...options);
  select.value = served;
  return true;
}
