// page-errors.js - injected by the test servers into the pages under test (engines.mjs):
// records uncaught errors, unhandled rejections, console.error calls and CSP violations
// in sessionStorage ('owlet.test.errors'), so a test can read them in every engine
// (WebKitWebDriver has no console API) and across reloads.
(() => {
  const KEY = 'owlet.test.errors';
  const push = (s) => {
    try {
      const a = JSON.parse(sessionStorage.getItem(KEY) || '[]');
      a.push(String(s));
      sessionStorage.setItem(KEY, JSON.stringify(a));
    } catch { /* storage unavailable: nothing to record into */ }
  };
  addEventListener('error', (e) => push(`pageerror: ${e.message}`));
  addEventListener('unhandledrejection', (e) => push(`unhandledrejection: ${e.reason && e.reason.message ? e.reason.message : e.reason}`));
  document.addEventListener('securitypolicyviolation', (e) => push(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  const error = console.error.bind(console);
  console.error = (...a) => { push(`console: ${a.map(String).join(' ')}`); error(...a); };
})();
