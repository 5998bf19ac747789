// procmem.mjs - memory of a Chromium instance from /proc, for the scripts that
// measure it (tests/browser/load_memory.mjs, bench/fullscale/run.mjs): the
// processes are the browser started with a given --user-data-dir and its
// descendants (renderers, GPU, utility); dedicated workers, and so the engine
// workers and their wasm memory, live in the renderer process. Linux only.
import { readFileSync, readdirSync } from 'node:fs';

export function procs() {
  const out = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      // children rewrite their title: the arguments may be one space-separated string
      out.set(Number(d), { ppid, cmd: readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ') });
    } catch { /* gone */ }
  }
  return out;
}
/** Chromium processes started with userDir: pid -> type. */
export function chromiumTree(userDir) {
  const all = procs();
  const roots = [...all].filter(([, p]) => p.cmd.includes(`--user-data-dir=${userDir} `) && !p.cmd.includes('--type='))
    .map(([pid]) => pid);
  const tree = new Map();
  const add = (pid) => {
    const p = all.get(pid);
    const t = /--type=(\S+)/.exec(p.cmd), sub = /--utility-sub-type=(\S+)/.exec(p.cmd);
    tree.set(pid, t ? t[1] + (sub ? `:${sub[1]}` : '') : 'browser');
    for (const [c, q] of all) if (q.ppid === pid && !tree.has(c)) add(c);
  };
  for (const r of roots) add(r);
  return tree;
}
export function status(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s) || [0, 0])[1]) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch { return null; }
}

export class Sampler {
  constructor(userDir) { this.userDir = userDir; this.peak = new Map(); this.series = []; this.t0 = Date.now(); }
  sample() {
    if (!this.tree || this.n++ % 10 === 0) this.tree = chromiumTree(this.userDir); // new processes appear
    let renderer = 0;
    for (const [pid, type] of this.tree) {
      const s = status(pid);
      if (!s) continue;
      const p = this.peak.get(pid) || { type, rss: 0, hwm: 0, first: s.rss };
      p.rss = Math.max(p.rss, s.rss);
      p.hwm = Math.max(p.hwm, s.hwm);
      this.peak.set(pid, p);
      if (type === 'renderer') renderer = Math.max(renderer, s.rss);
    }
    this.rendererPeak = Math.max(this.rendererPeak || 0, renderer);
    this.series.push([Date.now() - this.t0, renderer]);
  }
  start() { this.n = 0; this.sample(); this.timer = setInterval(() => this.sample(), 100); }
  stop() { clearInterval(this.timer); this.sample(); }
}
