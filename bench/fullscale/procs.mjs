// procs.mjs - memory of every browser this process started, from /proc (Linux): all
// descendants of this Node process, whichever engine (tests/browser/engines.mjs
// launches Chromium and Firefox as children, and WebKitWebDriver, which starts
// MiniBrowser and its WebKitWebProcess). The engine workers and their wasm memory
// live in the page's content process: Chromium's renderer, Firefox's tab content
// process ("-contentproc ... tab"), WebKit's WebKitWebProcess — kind 'content' here.
import { readFileSync } from 'node:fs';
import { procs, status } from '../../tests/browser/procmem.mjs';

/** What a browser process is, from its command line; null for processes that are not the browser's. */
export function kindOf(cmd) {
  const exe = cmd.split(' ')[0];
  if (/Xvfb|\/node$|\/time$/.test(exe)) return null;
  const t = /--type=(\S+)/.exec(cmd);
  if (t) return t[1] === 'renderer' ? 'content' : t[1];
  if (/-contentproc/.test(cmd)) return /\btab$/.test(cmd.trim()) ? 'content' : `child:${cmd.trim().split(' ').pop()}`;
  if (/WebKitWebProcess/.test(exe)) return 'content';
  if (/WebKitNetworkProcess/.test(exe)) return 'network';
  if (/WebKitWebDriver/.test(exe)) return 'driver';
  return 'browser';
}

/** pid -> kind for the browser processes below rootPid. */
export function browserTree(rootPid = process.pid) {
  const all = procs();
  const out = new Map();
  const walk = (pid) => {
    for (const [c, p] of all) {
      if (p.ppid !== pid || out.has(c)) continue;
      const k = kindOf(p.cmd);
      if (k) out.set(c, k);
      walk(c); // a process we skip (xvfb-run, time) may still have browser children
    }
  };
  walk(rootPid);
  return out;
}

/** The 1, 5 and 15 minute load averages. */
export const loadAvg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);

/** The system's MemAvailable in bytes. */
export function memAvailable() {
  const m = /^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * Samples the browser processes' RSS every 200 ms: the largest content process (peak) and
 * the sum over all the browser's processes (peak), plus a snapshot for "where it stopped".
 */
export class BrowserMemory {
  constructor(rootPid = process.pid) {
    this.rootPid = rootPid;
    this.n = 0;
    this.contentPeak = this.totalPeak = 0; // since the last take()
    this.allContent = this.allTotal = 0; // since the start
  }
  snapshot() {
    if (!this.tree || this.n++ % 10 === 0) this.tree = browserTree(this.rootPid); // processes come and go
    const list = [];
    for (const [pid, kind] of this.tree) {
      const s = status(pid);
      if (s) list.push({ pid, kind, rssBytes: s.rss, hwmBytes: s.hwm });
    }
    const content = Math.max(0, ...list.filter((p) => p.kind === 'content').map((p) => p.rssBytes));
    const total = list.reduce((a, p) => a + p.rssBytes, 0);
    return { contentRssBytes: content, totalRssBytes: total, memAvailableBytes: memAvailable(), processes: list };
  }
  sample() {
    const s = this.snapshot();
    this.contentPeak = Math.max(this.contentPeak, s.contentRssBytes);
    this.totalPeak = Math.max(this.totalPeak, s.totalRssBytes);
    this.allContent = Math.max(this.allContent, s.contentRssBytes);
    this.allTotal = Math.max(this.allTotal, s.totalRssBytes);
    return s;
  }
  /** The peaks since the last take(), then start over (each phase of a run gets its own). */
  take() {
    this.sample();
    const r = { contentPeakBytes: this.contentPeak, totalPeakBytes: this.totalPeak };
    this.contentPeak = this.totalPeak = 0;
    return r;
  }
  start() { this.sample(); this.timer = setInterval(() => this.sample(), 200); }
  stop() { clearInterval(this.timer); }
}
