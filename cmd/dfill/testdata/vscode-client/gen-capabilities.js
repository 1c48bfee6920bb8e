// Regenerates vscode-capabilities.json: the ClientCapabilities that VS Code's
// language client (vscode-languageclient 11, the library every LSP extension
// uses) sends in `initialize`, computed by that library's own code
// (BaseLanguageClient.computeClientCapabilities, which calls every built-in
// feature's fillClientCapabilities) with a stub for the `vscode` module it
// imports (capabilities do not depend on the editor's state).
//
// vscode-languageclient is not a dependency of the test; install it apart:
//
//   d=$(mktemp -d) && (cd "$d" && npm init -y >/dev/null && npm install --no-save vscode-languageclient@11.0.0)
//   node gen-capabilities.js "$d" > vscode-capabilities.json
'use strict';

const fs = require('fs');
const Module = require('module');
const path = require('path');

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node gen-capabilities.js DIR_WITH_VSCODE_LANGUAGECLIENT_11');
  process.exit(2);
}

// A stand-in for the `vscode` API: any property is another stand-in, any
// call or `new` returns one; only what the capabilities or the constructor
// read by value is given.
function stub(name) {
  return new Proxy(function () {}, {
    get(_target, prop) {
      if (prop === 'then') return undefined; // not a promise
      if (prop === Symbol.iterator) return function* () {};
      if (prop === Symbol.toPrimitive || prop === 'toString') return () => name;
      return stub(`${name}.${String(prop)}`);
    },
    apply: () => stub(`${name}()`),
    construct: () => stub(`new ${name}`),
  });
}
const vscode = new Proxy({
  version: '1.100.3',
  env: { appName: 'Visual Studio Code', language: 'en' },
  workspace: new Proxy({ workspaceFolders: undefined, textDocuments: [], notebookDocuments: [] },
    { get: (t, p) => (p in t ? t[p] : stub(`vscode.workspace.${String(p)}`)) }),
}, { get: (t, p) => (p in t ? t[p] : stub(`vscode.${String(p)}`)) });

const load = Module._load;
Module._load = function (request, ...rest) {
  return request === 'vscode' ? vscode : load.call(this, request, ...rest);
};
const req = Module.createRequire(path.join(path.resolve(dir), 'package.json'));
const version = JSON.parse(fs.readFileSync(path.join(path.resolve(dir), 'node_modules/vscode-languageclient/package.json'), 'utf8')).version;
if (!version.startsWith('11.')) {
  console.error(`vscode-languageclient ${version} in ${dir}, want 11.x`);
  process.exit(1);
}
const { LanguageClient } = req('vscode-languageclient/node');
const client = new LanguageClient('dfill', 'dfill', { command: 'dfill', args: ['serve'] },
  { documentSelector: [{ scheme: 'file', language: 'go' }] });
process.stdout.write(JSON.stringify(client.computeClientCapabilities(), null, 2) + '\n');
