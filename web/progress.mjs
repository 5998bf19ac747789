// progress.mjs - the download/load progress in the model panel: the bar, the
// words (MB, MB/s, time left, chunk n of m), the quarter-step announcements
// for screen readers, and the countdown while a failed chunk waits to retry.

import { $ } from './dom.mjs';
import { describeProgress, retryText } from './model.mjs';

let progressFrame = 0, lastProgress = null, spoken = '', retryTimer = 0;
function stopRetryCountdown() { clearInterval(retryTimer); retryTimer = 0; }

/** "retrying in N s (attempt k of n)", counted down each second until the next try reports. */
function showRetry(p) {
  stopRetryCountdown();
  const until = performance.now() + p.waitMs;
  const show = () => { $('progress-text').textContent = retryText(p, until - performance.now()); };
  show();
  retryTimer = setInterval(show, 250);
}

export function onProgress(p) {
  if (p.phase === 'retry') { showRetry(p); return; }
  if (retryTimer && p.phase === 'verify') return; // another chunk's hashing: keep the countdown in view
  stopRetryCountdown();
  lastProgress = p;
  // Screen readers hear the phase and every quarter, not every update.
  const quarter = p.bytesTotal > 0 ? Math.floor((4 * p.bytesDone) / p.bytesTotal) : 0;
  const phase = p.phase === 'verify' ? 'download' : p.phase;
  const words = `${phase === 'download' ? 'Downloading' : phase === 'load' ? 'Loading' : 'Ready'}: ${quarter * 25}%`;
  if (words !== spoken && phase !== 'ready') { spoken = words; $('load-status').textContent = words; }
  if (progressFrame) return;
  progressFrame = requestAnimationFrame(() => {
    progressFrame = 0;
    const q = lastProgress;
    const bar = $('load-progress');
    bar.value = q.bytesTotal > 0 ? q.bytesDone / q.bytesTotal : 0;
    bar.textContent = `${Math.round(bar.value * 100)}%`;
    if (!retryTimer) $('progress-text').textContent = describeProgress(q);
  });
}

export function endProgress() {
  stopRetryCountdown();
  if (progressFrame) { cancelAnimationFrame(progressFrame); progressFrame = 0; }
}
