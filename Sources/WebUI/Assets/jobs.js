// The batch jobs panel: the newest jobs (GET /v1/batches) with their state and progress, refreshed while any runs.
// Jobs come from `postlens jobs submit`, POST /v1/batches, or another server sharing the database.
import { request } from './api.js';
import { t } from './i18n.js';

const BUSY_MS = 2000;   // refresh while a job is queued or running
const IDLE_MS = 15000;  // otherwise look now and then for new ones

function jobRow(job) {
  const li = document.createElement('li');
  li.dataset.jobId = job.id;
  li.dataset.state = job.state;
  const title = document.createElement('span');
  title.className = 'job-task';
  title.textContent = job.task;
  title.title = job.id;
  const state = document.createElement('span');
  state.className = 'job-state';
  state.dataset.state = job.state;
  state.textContent = t(`jobState_${job.state}`);
  const bar = document.createElement('progress');
  bar.max = Math.max(1, job.total);
  bar.value = job.done;
  bar.setAttribute('aria-label', `${job.task} ${t('jobProgress', { done: job.done, total: job.total })}`);
  const count = document.createElement('span');
  count.className = 'job-count';
  const parts = [t('jobProgress', { done: job.done, total: job.total })];
  if (job.failed) parts.push(t('jobFailed', { n: job.failed }));
  if (job.items_per_second && (job.state === 'running' || job.state === 'queued')) {
    parts.push(t('jobRate', { v: job.items_per_second.toFixed(2) }));
  }
  count.textContent = parts.join(' · ');
  li.append(title, state, bar, count);
  return li;
}

/** Fills the panel from the server; returns whether a job is still unfinished. */
export async function refreshJobs() {
  const panel = document.getElementById('jobs-panel');
  const list = document.getElementById('job-list');
  let jobs;
  try {
    jobs = (await request('GET', '/v1/batches?limit=10')).data || [];
  } catch {
    return false; // no batches here (or no key yet): keep the panel as it was
  }
  list.replaceChildren(...jobs.map(jobRow));
  panel.hidden = jobs.length === 0;
  return jobs.some((job) => job.state === 'queued' || job.state === 'running' || job.state === 'submitting');
}

/** Keeps the panel current for as long as the page is open. */
export function watchJobs() {
  const tick = async () => {
    const busy = document.hidden ? false : await refreshJobs();
    setTimeout(tick, busy ? BUSY_MS : IDLE_MS);
  };
  tick();
}
