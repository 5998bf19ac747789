// The npm package as a user gets it: the tarball `make npm-pack` writes
// (build/npm/owlet-vlm-VERSION.tgz) is installed into a scratch project under the
// system's temp folder (offline: the package has no dependencies), then
// 1. its contents: the ES module entry and every module it imports, the engine
//    builds and their worker files, the declarations, the README;
// 2. a Node script (plain `node`, no flags) imports it by name, loads the demo
//    model, answers the sample question right and exits by itself (no unload());
// 3. the TypeScript declarations: every declared value is exported by the module
//    and the other way round; a strict script using the API type-checks with tsc
//    through the package's "exports" (lib es2022 only, as a Node project), and one
//    with a wrong option type does not;
// 4. a page served by a plain static server from the scratch folder imports the
//    package from node_modules (import map) in Chromium and answers the same:
//    threaded with COOP/COEP headers, single-thread without.
//
//   make test-package        (or: make npm-pack && node --test tests/package/pack.test.mjs)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { root, launch } from '../browser/engines.mjs';
import { startServer } from '../browser/web-server.mjs';

const NAME = 'owlet-vlm';
const demo = path.join(root, 'models/demo');
const question = fs.readFileSync(path.join(demo, 'sample-question.txt'), 'utf8').trim();
const expected = fs.readFileSync(path.join(demo, 'sample-answer.txt'), 'utf8').trim();
const version = JSON.parse(fs.readFileSync(path.join(root, 'npm/package.json'), 'utf8')).version;
const tarball = path.join(root, `build/npm/${NAME}-${version}.tgz`);
let scratch, pkgDir;

before(() => {
  assert.ok(fs.existsSync(tarball), `${tarball} is missing: run make npm-pack`);
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'owlet-pkg-'));
  fs.writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', tarball],
    { cwd: scratch, stdio: 'pipe' });
  pkgDir = path.join(scratch, 'node_modules', NAME);
});

after(() => { if (scratch) fs.rmSync(scratch, { recursive: true, force: true }); });

/** Files under dir, relative, '/'-separated. */
function listFiles(dir, rel = '') {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(dir, path.posix.join(rel, e.name)) : [path.posix.join(rel, e.name)]);
}

test('the installed package holds the entry, its modules, the engines and their workers', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.exports['.'].default, './wasm_glue/owlet.mjs');
  assert.equal(pkg.exports['.'].types, './owlet.d.ts');
  assert.deepEqual(pkg.dependencies ?? {}, {}, 'the package has no dependencies');
  const files = new Set(listFiles(pkgDir));
  for (const f of ['package.json', 'README.md', 'owlet.d.ts', 'wasm_glue/owlet.mjs', 'wasm_glue/engine-worker.mjs',
    ...['owlet', 'owlet-relaxed'].flatMap((b) => [`build/wasm/${b}.js`, `build/wasm/${b}.wasm`, `build/wasm/${b}.worker.js`]),
    'build/wasm/owlet-st.js', 'build/wasm/owlet-st.wasm'])
    assert.ok(files.has(f), `${f} is missing from the package`);
  // the engines are classic scripts engine-worker.mjs require()s in Node; the package is "type": "module"
  assert.equal(JSON.parse(fs.readFileSync(path.join(pkgDir, 'build/wasm/package.json'), 'utf8')).type, 'commonjs');
  // every module the runtime imports (static, dynamic or as a worker URL) is in the package
  for (const f of [...files].filter((x) => x.startsWith('wasm_glue/'))) {
    const src = fs.readFileSync(path.join(pkgDir, f), 'utf8');
    for (const m of src.matchAll(/(?:from\s+|import\(\s*|new URL\(\s*)'(\.\/[^']+\.mjs)'/g))
      assert.ok(files.has(path.posix.join('wasm_glue', m[1])), `${f} imports ${m[1]}, which is not in the package`);
  }
  // only what runs: no test builds, no sources, no Node-only ES entries of the engines
  for (const f of files)
    assert.match(f, /^(package\.json|build\/wasm\/package\.json|README\.md|owlet\.d\.ts|wasm_glue\/[a-z-]+(\.gen)?\.mjs|build\/wasm\/owlet(-st|-relaxed)?(\.worker)?\.(js|wasm))$/,
      `unexpected file in the package: ${f}`);
  assert.ok(!files.has('wasm_glue/engine-entry.mjs'));
});

test('Node: a script imports the package by name, answers the sample question and exits by itself', { timeout: 180000 }, async () => {
  const script = path.join(scratch, 'example.mjs');
  fs.writeFileSync(script, `
import { Owlet } from '${NAME}';
const owl = await Owlet.load(${JSON.stringify(path.join(demo, 'manifest.json'))}, {
  onProgress: (p) => { if (p.phase === 'load') globalThis.loaded = p.bytesDone; },
});
const chat = owl.chat();
await chat.addImage(${JSON.stringify(path.join(demo, 'sample.png'))});
let answer = '';
for await (const piece of chat.ask(${JSON.stringify(question)}, { maxTokens: 16 })) answer += piece;
console.log(JSON.stringify({ answer, build: owl.build, threads: owl.threads, loaded: globalThis.loaded }));
`);
  const r = await new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [script], { cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 150000);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out, err, ms: Date.now() - t0 }); });
  });
  assert.equal(r.signal, null, `killed after ${r.ms} ms: the script did not end by itself\n${r.err}`);
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out.trim().split('\n').pop());
  assert.equal(res.answer.trim(), expected);
  assert.ok(res.loaded > 0, 'load progress counted bytes');
  const want = Math.min(8, os.availableParallelism());
  assert.equal(res.threads, want);
  assert.equal(res.build, want > 1 ? 'owlet' : 'owlet-st');
  console.log(`# node: ${JSON.stringify(res)} in ${r.ms} ms`);
});

test('TypeScript: the declarations match the module and type-check a strict script through the package', async () => {
  const dts = fs.readFileSync(path.join(pkgDir, 'owlet.d.ts'), 'utf8');
  const declared = [...dts.matchAll(/^export (?:class|const|function) (\w+)/gm)].map((m) => m[1]).sort();
  const mod = await import(pathToFileURL(path.join(pkgDir, 'wasm_glue/owlet.mjs')).href);
  assert.deepEqual(declared, Object.keys(mod).sort(), 'owlet.d.ts declares exactly the module\'s exports');
  const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
  assert.ok(fs.existsSync(tsc), 'typescript is a devDependency: run npm ci');
  const good = `
import { Owlet, OwletError, cache, LIMITS, type Progress, type Stats } from '${NAME}';
const owl: Owlet = await Owlet.load('models/demo/manifest.json', { onProgress: (p: Progress) => p.bytesDone, kvType: 'f16' });
const chat = owl.chat();
await chat.addImage(new Uint8Array(8));
let s: string = '';
for await (const piece of chat.ask('What is it?', { maxTokens: 8, stop: ['.'] })) s += piece;
const stream = await owl.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }], stream: true });
for await (const c of stream) s += c.choices[0].delta.content ?? '';
const full = await owl.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }] });
s += full.choices[0].message.content + full.usage.total_tokens;
const st: Stats = await owl.stats();
const n: number = st.decodeTokPerS + LIMITS.imagesPerTurn + (await cache.list()).length;
try { await owl.unload(); } catch (e) { if (e instanceof OwletError && e.code === 'state') console.log(n, s); }
`;
  const bad = `import { Owlet } from '${NAME}';\nconst owl = await Owlet.load('m.json');\nfor await (const p of owl.chat().ask('q', { maxTokens: '8' })) console.log(p);\n`;
  const check = (name, src) => {
    fs.writeFileSync(path.join(scratch, name), src);
    try {
      execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext',
        '--moduleResolution', 'nodenext', '--lib', 'es2022', path.join(scratch, name)],
      { cwd: scratch, stdio: 'pipe' });
      return '';
    } catch (e) { return String(e.stdout) + String(e.stderr); }
  };
  assert.equal(check('good.mts', good), '', 'a correct script type-checks');
  assert.match(check('bad.mts', bad), /bad\.mts\(3,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/,
    'a wrong option type is a type error');
});

test('browser: a page on a plain static server imports the package from node_modules and answers', { timeout: 240000 }, async () => {
  fs.cpSync(demo, path.join(scratch, 'models/demo'), { recursive: true });
  fs.writeFileSync(path.join(scratch, 'index.html'), `<!doctype html>
<meta charset="utf-8"><title>owlet-vlm from node_modules</title><link rel="icon" href="data:,">
<script type="importmap">{ "imports": { "${NAME}": "./node_modules/${NAME}/wasm_glue/owlet.mjs" } }</script>
<script type="module">
  import { Owlet } from '${NAME}';
  globalThis.result = (async () => {
    let loaded = 0;
    const owl = await Owlet.load('models/demo/manifest.json', { onProgress: (p) => { if (p.phase === 'load') loaded = p.bytesDone; } });
    const chat = owl.chat();
    await chat.addImage('models/demo/sample.png');
    let answer = '';
    for await (const piece of chat.ask(${JSON.stringify(question)}, { maxTokens: 16 })) answer += piece;
    return { answer, build: owl.build, threads: owl.threads, isolated: crossOriginIsolated, loaded };
  })().catch((e) => ({ error: String(e && e.stack || e) }));
</script>
`);
  const b = await launch('chromium');
  try {
    // with COOP/COEP: threaded; a server without them: the single-thread build
    for (const coi of [true, false]) {
      const server = await startServer({ coi, mounts: [['/', scratch]] });
      try {
        await b.page.goto(server.url + 'index.html');
        await b.page.waitFor(() => !!globalThis.result, null, { timeout: 30000, what: 'the page module' });
        const res = await b.page.evaluate(() => globalThis.result);
        assert.equal(res.error, undefined, res.error);
        assert.equal(res.answer.trim(), expected);
        assert.equal(res.isolated, coi);
        if (coi) assert.match(res.build, /^owlet(-relaxed)?$/, 'threaded in an isolated page');
        else assert.equal(res.build, 'owlet-st');
        assert.ok(res.loaded > 0);
        const paths = server.requests.map((q) => q.path);
        assert.ok(paths.includes(`/node_modules/${NAME}/build/wasm/${res.build}.wasm`), `the engine came from node_modules: ${paths.join(' ')}`);
        assert.ok(paths.includes(`/node_modules/${NAME}/wasm_glue/engine-worker.mjs`));
        assert.deepEqual(server.requests.filter((q) => q.status >= 400), [], 'no failed request');
        assert.deepEqual(b.page.nativeErrors, []);
        console.log(`# browser (${coi ? 'COOP/COEP' : 'no headers'}): ${JSON.stringify(res)}`);
      } finally { await server.close(); }
    }
  } finally {
    await b.close();
  }
});
