#!/usr/bin/env node
// Parse each Mermaid file given with mermaid's own parser (the one GitHub's renderer runs).
// Prints "<file>: ok (<diagram type>)" or "<file>: <parse error>"; exit 1 if any failed, 2 on usage.
// mermaid needs a DOM (DOMPurify) even to parse, so jsdom provides one; nothing is rendered.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node check.mjs FILE.mmd...');
  process.exit(2);
}
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });

let failed = 0;
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  try {
    const result = await mermaid.parse(text);
    console.log(`${file}: ok (${result.diagramType})`);
  } catch (err) {
    failed += 1;
    const message = String((err && err.message) || err).split('\n').join(' | ');
    console.log(`${file}: ${message}`);
  }
}
process.exit(failed ? 1 : 0);
