// engines.mjs - the three browser engines behind one small page interface, so a
// browser test is written once and run in each (demo.test.mjs, faults.test.mjs,
// capabilities.mjs). No browser is ever downloaded: each engine is Debian's.
//
//   chromium  /usr/bin/chromium, npm playwright-core (DevTools protocol)
//   firefox   /usr/bin/firefox-esr (Debian firefox-esr), npm puppeteer-core over
//             WebDriver BiDi (playwright-core 1.65 cannot drive ESR 153 over BiDi)
//   webkit    Debian webkit2gtk-driver: WebKitWebDriver + MiniBrowser --automation,
//             npm selenium-webdriver; it needs an X display: under xvfb-run, or
//             else this module starts its own Xvfb (Debian xvfb)
//
// OWLET_BROWSERS=chromium,firefox (a comma list) limits the engines a test runs in.
//
// What differs between engines lives here and nowhere else:
// - page errors: WebKitWebDriver has no console API, so every engine's pages are
//   also watched from inside (tests/browser/page-errors.js, which the test server
//   injects into HTML pages; it keeps what it saw in sessionStorage, so a reload
//   loses nothing); Chromium and Firefox add their console and page-error events.
// - "the tab is killed": Chromium crashes the renderer (DevTools Page.crash);
//   Firefox and WebKit have no such command, so the page is torn down by navigating
//   it away (about:blank) in the middle of the writes.
// - what each engine is expected to offer (ENGINE_FACTS, measured by capabilities.mjs
//   and listed in docs/BROWSERS.md): the tests assert the page's choice against it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const shots = path.join(root, 'build/test-out/screenshots');
export const ALL_ENGINES = ['chromium', 'firefox', 'webkit'];

/** Binaries from the Debian packages scripts/bootstrap.sh installs. */
export const BINARIES = {
  chromium: '/usr/bin/chromium',
  firefox: '/usr/bin/firefox-esr',
  webkitDriver: '/usr/bin/WebKitWebDriver',
  // in webkit2gtk-driver's library folder, /usr/lib/<multiarch triplet>/webkit2gtk-4.1/
  miniBrowser: (() => {
    const found = fs.readdirSync('/usr/lib').map((d) => path.join('/usr/lib', d, 'webkit2gtk-4.1/MiniBrowser'))
      .find((f) => fs.existsSync(f));
    return found || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
  })(),
};

/** Threads: the engine has SharedArrayBuffer in a cross-origin-isolated page (docs/BROWSERS.md). */
export const ENGINE_FACTS = {
  chromium: { threads: true, relaxed: true },
  firefox: { threads: true, relaxed: true },
  webkit: { threads: false, relaxed: false }, // WebKitGTK 2.50: crossOriginIsolated true, no SharedArrayBuffer
};

/** The engines to run: OWLET_BROWSERS (comma list) or all three. */
export function engines() {
  const want = (process.env.OWLET_BROWSERS || ALL_ENGINES.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const e of want) if (!ALL_ENGINES.includes(e)) throw new Error(`OWLET_BROWSERS: unknown engine "${e}" (${ALL_ENGINES.join(', ')})`);
  return want;
}

/** Path of the page-side error recorder, for the test servers to inject. */
export const PAGE_ERRORS_URL = '/__owlet_test/page-errors.js';
export const PAGE_ERRORS_MOUNT = ['/__owlet_test/', 'tests/browser/page'];

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Common page operations, built on each engine's evaluate/click/... primitives. */
class Page {
  constructor(engine) { this.engine = engine; this.nativeErrors = []; }
  /** Poll fn(arg) in the page until it returns a truthy value. */
  async waitFor(fn, arg, { timeout = 60000, what = String(fn) } = {}) {
    const t0 = Date.now();
    for (;;) {
      let v;
      try { v = await this.evaluate(fn, arg); } catch (e) {
        // a navigation in progress destroys the context: try again
        if (!/context|navigat|destroyed|unload|no such (frame|window)|discarded|stale/i.test(String(e && e.message))) throw e;
      }
      if (v) return v;
      if (Date.now() - t0 > timeout) throw new Error(`${this.engine}: timed out after ${timeout} ms waiting for ${what}`);
      await sleep(100);
    }
  }
  waitForSelector(sel, o = {}) {
    return this.waitFor((s) => !!document.querySelector(s), sel, { what: sel, ...o });
  }
  textContent(sel) { return this.evaluate((s) => document.querySelector(s).textContent, sel); }
  inputValue(sel) { return this.evaluate((s) => document.querySelector(s).value, sel); }
  isChecked(sel) { return this.evaluate((s) => document.querySelector(s).checked, sel); }
  /** Set an input's value as typing would end: input and change events. */
  fill(sel, value) {
    return this.evaluate(([s, v]) => {
      const el = document.querySelector(s);
      el.focus();
      el.value = v;
      el.dispatchEvent(new Event('input', { bubbles: true }));
      el.dispatchEvent(new Event('change', { bubbles: true }));
    }, [sel, value]);
  }
  dispatchEvent(sel, type) {
    return this.evaluate(([s, t]) => { document.querySelector(s).dispatchEvent(new Event(t, { bubbles: true })); }, [sel, type]);
  }
  /** Viewport coordinates of point (x, y) of an element's box, scrolled into view first. */
  viewportPoint(sel, x, y) {
    return this.evaluate(([s, px, py]) => {
      const el = document.querySelector(s);
      el.scrollIntoView({ block: 'center', inline: 'center' });
      const r = el.getBoundingClientRect();
      return { x: r.left + px, y: r.top + py };
    }, [sel, x, y]);
  }
  /** Errors seen so far: the engine's console/page-error events plus the page's own record. */
  async errors() {
    let inPage = [];
    try {
      inPage = await this.evaluate(() => JSON.parse(sessionStorage.getItem('owlet.test.errors') || '[]'));
    } catch { /* not one of our pages */ }
    return [...this.nativeErrors, ...inPage];
  }
}

class PlaywrightPage extends Page {
  constructor(page, ctx) {
    super('chromium');
    this.ctx = ctx;
    this.watch(page);
  }
  watch(page) {
    this.p = page;
    page.on('console', (m) => { if (m.type() === 'error') this.nativeErrors.push(`console: ${m.text()}`); });
    page.on('pageerror', (e) => this.nativeErrors.push(`pageerror: ${e.message}`));
  }
  goto(url) { return this.p.goto(url); }
  reload() { return this.p.reload(); }
  evaluate(fn, arg) { return this.p.evaluate(fn, arg); }
  runScript(src) { return this.p.evaluate(src); }
  click(sel) { return this.p.click(sel); }
  async clickAt(x, y) { await this.p.mouse.click(x, y); }
  setInputFiles(sel, file) { return this.p.setInputFiles(sel, file); }
  screenshot(file) { return this.p.screenshot({ path: file, fullPage: true }); }
  async crash() {
    // DevTools Page.crash kills the renderer (falls back to closing the tab)
    try {
      const cdp = await this.ctx.newCDPSession(this.p);
      await Promise.race([cdp.send('Page.crash').catch(() => {}), sleep(3000)]);
    } catch { /* closed below */ }
    await this.p.close().catch(() => {});
    this.watch(await this.ctx.newPage());
    return 'renderer crashed (DevTools Page.crash)';
  }
}

class PuppeteerPage extends Page {
  constructor(page) {
    super('firefox');
    this.p = page;
    page.on('console', (m) => { if (m.type() === 'error') this.nativeErrors.push(`console: ${m.text()}`); });
    page.on('pageerror', (e) => this.nativeErrors.push(`pageerror: ${e.message}`));
  }
  goto(url) { return this.p.goto(url); }
  reload() { return this.p.reload(); }
  evaluate(fn, arg) { return this.p.evaluate(fn, arg); }
  runScript(src) { return this.p.evaluate(src); }
  click(sel) { return this.p.click(sel); }
  async clickAt(x, y) { await this.p.mouse.click(x, y); }
  async setInputFiles(sel, file) { await (await this.p.$(sel)).uploadFile(file); }
  screenshot(file) { return this.p.screenshot({ path: file, fullPage: true }); }
  async crash() { await this.p.goto('about:blank'); return 'page torn down mid-write (navigated to about:blank)'; }
}

class SeleniumPage extends Page {
  constructor(driver, By) { super('webkit'); this.d = driver; this.By = By; }
  goto(url) { return this.d.get(url); }
  reload() { return this.d.navigate().refresh(); }
  async evaluate(fn, arg) {
    // executeAsyncScript: the page function may be async; errors come back as text
    const r = await this.d.executeAsyncScript(
      `const done = arguments[arguments.length - 1];
       Promise.resolve().then(() => (${fn})(arguments[0]))
         .then((v) => done({ v: v === undefined ? null : v }), (e) => done({ e: String(e && e.stack ? e.message + '\\n' + e.stack : e) }));`,
      arg === undefined ? null : arg);
    if (r && 'e' in r) throw new Error(`in page: ${r.e}`);
    return r ? r.v : r;
  }
  runScript(src) { return this.d.executeScript(src); }
  async click(sel) { await (await this.d.findElement(this.By.css(sel))).click(); }
  async clickAt(x, y) {
    await this.d.actions({ async: true }).move({ x: Math.round(x), y: Math.round(y), origin: 'viewport' }).click().perform();
  }
  async setInputFiles(sel, file) { await (await this.d.findElement(this.By.css(sel))).sendKeys(file); }
  async screenshot(file) { fs.writeFileSync(file, Buffer.from(await this.d.takeScreenshot(), 'base64')); }
  async crash() { await this.d.get('about:blank'); return 'page torn down mid-write (navigated to about:blank)'; }
}

const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.on('error', reject);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

let xvfb = null; // { proc, display } shared by every WebKit session of this process

/** An X display for MiniBrowser: $DISPLAY, or an Xvfb this process starts (stopped at exit). */
async function display() {
  if (process.env.DISPLAY) return process.env.DISPLAY;
  if (xvfb) return xvfb.display;
  if (!fs.existsSync('/usr/bin/Xvfb')) throw new Error('WebKit needs an X display: install Debian xvfb, or run under xvfb-run -a');
  const proc = spawn('/usr/bin/Xvfb', ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'],
    { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  const n = await new Promise((resolve, reject) => {
    let buf = '';
    proc.stdio[3].on('data', (d) => { buf += d; if (buf.includes('\n')) resolve(buf.trim()); });
    proc.on('exit', (c) => reject(new Error(`Xvfb exited (${c}) before it gave a display`)));
    setTimeout(() => reject(new Error('Xvfb gave no display in 10 s')), 10000);
  });
  proc.unref();
  proc.stdio[3].destroy();
  xvfb = { proc, display: `:${n}` };
  process.on('exit', () => { try { proc.kill(); } catch { /* gone */ } });
  return xvfb.display;
}

/**
 * Start one engine with a fresh profile and one page.
 * @param {'chromium'|'firefox'|'webkit'} engine
 * @param {{viewport?:{width:number, height:number}}} [o]
 * @returns {Promise<{engine:string, page:Page, facts:{threads:boolean}, close:()=>Promise<void>}>}
 */
export async function launch(engine, o = {}) {
  const viewport = o.viewport || { width: 1200, height: 900 };
  fs.mkdirSync(shots, { recursive: true });
  if (engine === 'chromium') {
    const { chromium } = await import('playwright-core');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'owlet-chromium-'));
    const ctx = await chromium.launchPersistentContext(dir, { executablePath: BINARIES.chromium, headless: true,
      args: CHROMIUM_ARGS, viewport });
    const page = new PlaywrightPage(ctx.pages()[0] || (await ctx.newPage()), ctx);
    return { engine, page, facts: ENGINE_FACTS[engine],
      close: async () => { await ctx.close().catch(() => {}); fs.rmSync(dir, { recursive: true, force: true }); } };
  }
  if (engine === 'firefox') {
    const { default: puppeteer } = await import('puppeteer-core');
    const browser = await puppeteer.launch({ browser: 'firefox', executablePath: BINARIES.firefox, headless: true,
      defaultViewport: viewport, protocolTimeout: 300000 });
    const page = new PuppeteerPage((await browser.pages())[0] || (await browser.newPage()));
    return { engine, page, facts: ENGINE_FACTS[engine], close: () => browser.close().catch(() => {}) };
  }
  if (engine === 'webkit') {
    const { Builder, By } = await import('selenium-webdriver');
    const port = await freePort();
    const env = { ...process.env, DISPLAY: await display() };
    const drv = spawn(BINARIES.webkitDriver, [`--port=${port}`, '--host=127.0.0.1'], { env, stdio: 'ignore' });
    const exited = new Promise((resolve) => drv.on('exit', resolve));
    let driver;
    try {
      for (let i = 0; ; i++) { // until the driver listens
        const up = await new Promise((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
          s.on('error', () => resolve(false));
        });
        if (up) break;
        if (i > 100) throw new Error('WebKitWebDriver did not listen within 10 s');
        await sleep(100);
      }
      driver = await new Builder().usingServer(`http://127.0.0.1:${port}`).withCapabilities({
        browserName: 'MiniBrowser',
        'webkitgtk:browserOptions': { binary: BINARIES.miniBrowser, args: ['--automation'] },
      }).build();
      await driver.manage().setTimeouts({ script: 300000, pageLoad: 60000 });
      await driver.manage().window().setRect({ width: viewport.width, height: viewport.height }).catch(() => {});
    } catch (e) { drv.kill(); throw e; }
    return { engine, page: new SeleniumPage(driver, By), facts: ENGINE_FACTS[engine],
      close: async () => {
        await Promise.race([driver.quit().catch(() => {}), sleep(10000)]);
        drv.kill();
        await Promise.race([exited, sleep(3000)]);
      } };
  }
  throw new Error(`unknown engine ${engine}`);
}

/** Screenshot under build/test-out/screenshots/. */
export const shot = (page, name) => page.screenshot(path.join(shots, name));
