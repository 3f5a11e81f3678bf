// The widget modules must work offline: no imports from URLs or CDNs, no
// dynamic import(), no remote stylesheets. The only import allowed is
// ./shared.js, which Python puts in front of each module before anywidget
// loads it (tests/test_tables.py checks that the composed modules have no
// import left).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

const SRC = new URL("../src/", import.meta.url);
const files = readdirSync(SRC).filter((name) => /\.(m?js|css)$/.test(name));

test("js/src holds the two modules, their styles and the shared module", () => {
  for (const name of ["runs_table.js", "zone_timeline.js", "runs_table.css", "zone_timeline.css", "shared.js"]) {
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
    const allowed = ["runs_table.js", "zone_timeline.js", "in_view.js"].includes(name) ? ["./shared.js"] : [];
    assert.deepEqual(specifiers, allowed, `imports found: ${specifiers.join(", ")}`);
  });
}

test("no module defines zone colours of its own (they come from Python)", () => {
  for (const name of files.filter((file) => file.endsWith(".js"))) {
    const text = readFileSync(new URL(name, SRC), "utf8");
    assert.doesNotMatch(text, /ZONE_COLORS|#FFB6C1|#FFD700|#00FF7F|#C8C8C8/i, `${name} hard-codes a zone colour`);
  }
});
