import assert from "node:assert/strict";
import { test } from "node:test";

import widget, { bringIntoView, DEFS_ID, hoistPatterns, TRIES_MS } from "../src/in_view.js";
import { fakeModel, host } from "./helpers.mjs";

function nested() {
  const { el } = host();
  const doc = el.ownerDocument;
  const stage = doc.createElement("div");
  stage.className = "yeswidget-stage";
  const inner = doc.createElement("div");
  stage.appendChild(inner);
  el.appendChild(stage);
  const calls = [];
  stage.scrollIntoView = (options) => calls.push(options);
  return { stage, inner, calls };
}

test("bringIntoView scrolls the closest target, only as far as needed", () => {
  const { stage, inner, calls } = nested();
  assert.equal(bringIntoView(inner, ".yeswidget-stage"), stage);
  assert.deepEqual(calls, [{ block: "start", inline: "nearest" }]);
});

test("without a matching target the widget's own element is the target", () => {
  const { inner } = nested();
  assert.equal(bringIntoView(inner, ".not-there"), inner);
});

test("a view tries a few times while the figure lays out, and its cleanup cancels the rest", async () => {
  const { inner, calls } = nested();
  const model = fakeModel({ target: ".yeswidget-stage", tries: 2 });
  const cleanup = widget.render({ model, el: inner });
  await new Promise((resolve) => setTimeout(resolve, TRIES_MS[1] + 50));
  assert.equal(calls.length, 2);
  cleanup();
  const late = widget.render({ model: fakeModel({ target: ".yeswidget-stage", tries: 3 }), el: inner });
  late();  // removed before its first try
  await new Promise((resolve) => setTimeout(resolve, TRIES_MS[0] + 50));
  assert.equal(calls.length, 2);
});

test("the hatch patterns get one copy first in the page, once", () => {
  const { document, el } = host();
  el.innerHTML = '<svg><defs><pattern id="yw-hatch-red"></pattern><pattern id="yw-hatch-yellow"></pattern></defs></svg>';
  assert.equal(hoistPatterns(document), true);
  assert.equal(document.body.firstElementChild.id, DEFS_ID);
  assert.equal(document.getElementById("yw-hatch-red").closest("svg").id, DEFS_ID);  // the first of that id
  assert.equal(hoistPatterns(document), false);
  assert.equal(document.querySelectorAll(`#${DEFS_ID}`).length, 1);
});
