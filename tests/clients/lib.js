// What the Node.js client scripts share: printing a step, and catching an error reply.
"use strict";

// Maps and sets become sorted plain objects and arrays, so that every server prints alike.
function plain(v) {
  if (v instanceof Map) return plain(Object.fromEntries(v));
  if (v instanceof Set) return [...v].map(plain).sort();
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object" && !Buffer.isBuffer(v)) {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, plain(v[k])]));
  }
  return v;
}

// One step's result, as one JSON line.
function show(label, value) {
  console.log(JSON.stringify([label, plain(value)]));
}

// The error a command's promise was rejected with, as text.
async function errorOf(promise) {
  try {
    await promise;
    return "no error";
  } catch (e) {
    return "error: " + e.message;
  }
}

module.exports = { plain, show, errorOf };
