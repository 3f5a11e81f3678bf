// The widget modules must work offline: no imports from URLs or CDNs, no
// dynamic import(), no remote stylesheets. (tests/test_widgets.py checks the
// same from Python.)
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

const SRC = new URL("../src/", import.meta.url);
const files = readdirSync(SRC).filter((name) => /\.(m?js|css)$/.test(name));

test("js/src holds the two modules and their styles", () => {
  for (const name of ["runs_table.js", "zone_timeline.js", "runs_table.css", "zone_timeline.css"]) {
    assert.ok(files.includes(name), `missing ${name}`);
  }
});

for (const name of files) {
  test(`${name} reaches for nothing on the network`, () => {
    const text = readFileSync(new URL(name, SRC), "utf8");
    assert.doesNotMatch(text, /\bhttps?:\/\//i, "URL in source");
    assert.doesNotMatch(text, /(^|[\s"'(])\/\/[a-z0-9.-]+\.[a-z]{2,}\//im, "protocol-relative URL");
    assert.doesNotMatch(text, /\b(esm\.sh|unpkg|jsdelivr|cdnjs|skypack|jspm)\b/i, "CDN name");
    assert.doesNotMatch(text, /\bimport\s*\(/, "dynamic import()");
    assert.doesNotMatch(text, /@import\b/, "CSS @import");
    const specifiers = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?\bfrom\s*["']([^"']+)["']/gm)].map((m) => m[1]);
    specifiers.push(...[...text.matchAll(/^\s*import\s*["']([^"']+)["']/gm)].map((m) => m[1]));
    // anywidget loads each module on its own: even relative imports would not resolve
    assert.deepEqual(specifiers, [], `imports found: ${specifiers.join(", ")}`);
  });
}
