#!/usr/bin/env node
// Validate PrometheusRule objects (one JSON object per file) with the validator that
// @kubernetes-models/prometheus-operator generates from prometheus-operator's CRD schema.
// Prints "<file>: ok" or one "<file>: <path>: <problem>" line per problem; exit 1 if any
// object has a problem, 2 on usage.
//
// The CRD schema allows unknown fields (the API server prunes them, and refuses them under
// strict field validation, kubectl's default), so the schema validator cannot report them.
// They are found here from the validator itself: it reads every field its schema declares
// (and every key of a free-form map), so a field it never read is one the schema does not know.
// The package comes from tools/mermaid-check (npm ci there; DRPC_NODE_MODULES overrides).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node k8s_models_validate.mjs OBJECT.json...');
  process.exit(2);
}
const modules = process.env.DRPC_NODE_MODULES
  ? pathToFileURL(`${process.env.DRPC_NODE_MODULES}/`)
  : new URL('../tools/mermaid-check/node_modules/', import.meta.url);
const modelUrl = new URL(
  '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule.js', modules);
const { PrometheusRule } = await import(modelUrl.href);

function isObject(value) {
  return value !== null && typeof value === 'object';
}

// A view of `value` that records, per object, which of its keys were read.
function watched(value, reads) {
  if (!isObject(value)) return value;
  reads.set(value, new Set());
  const children = new Map();
  return new Proxy(value, {
    get(target, key, receiver) {
      const item = Reflect.get(target, key, receiver);
      if (typeof key !== 'string' || !Object.hasOwn(target, key)) return item;
      reads.get(target).add(key);
      if (!children.has(key)) children.set(key, watched(item, reads));
      return children.get(key);
    },
  });
}

function unreadFields(value, reads, path, out) {
  if (!isObject(value)) return out;
  for (const [key, item] of Object.entries(value)) {
    const where = `${path}/${key}`;
    if (!Array.isArray(value) && !reads.get(value)?.has(key)) {
      out.push(`${where}: unknown field`);
    } else {
      unreadFields(item, reads, where, out);
    }
  }
  return out;
}

function problems(data) {
  if (!isObject(data) || Array.isArray(data)) return ['(root): not an object'];
  const model = new PrometheusRule(data);
  const reads = new WeakMap();
  const out = [];
  try {
    watched(model, reads).validate();
  } catch (err) {
    if (!Array.isArray(err?.errors)) throw err;
    for (const e of err.errors) out.push(`${e.instancePath || '(root)'}: ${e.message}`);
  }
  return unreadFields(model, reads, '', out);
}

let failed = 0;
for (const file of files) {
  const found = problems(JSON.parse(readFileSync(file, 'utf8')));
  if (found.length === 0) {
    console.log(`${file}: ok`);
  } else {
    failed += 1;
    for (const problem of found) console.log(`${file}: ${problem}`);
  }
}
process.exit(failed ? 1 : 0);
