import assert from "node:assert/strict";
import { test } from "node:test";

import widget, { bringIntoView, DEFS_ID, FOLLOW_MS, hoistPatterns, outOfView, TRIES_MS } from "../src/in_view.js";
import { fakeModel, fire, host } from "./helpers.mjs";

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

/** A stage whose top sits at `where.top` px in a window `height` px tall (jsdom lays nothing out). */
function placed(where, height = 576) {
  const found = nested();
  const window = found.stage.ownerDocument.defaultView;
  Object.defineProperty(window, "innerHeight", { value: height, configurable: true });
  found.stage.getBoundingClientRect = () => ({ top: where.top, bottom: where.top + 400 });
  return found;
}

const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test("outOfView: a stage above or below the window is out, one inside is in", () => {
  assert.equal(outOfView(placed({ top: 50 }).stage), false);
  assert.equal(outOfView(placed({ top: -300 }).stage), true);
  assert.equal(outOfView(placed({ top: 400 }).stage), true);
});

test("while follow is set the newest view brings its stage back; not once the run ends", async () => {
  const where = { top: 50 };
  const { inner, calls } = placed(where);
  const model = fakeModel({ target: ".yeswidget-stage", tries: 1, follow: true });
  const cleanup = widget.render({ model, el: inner });
  await wait(FOLLOW_MS + 100);
  assert.equal(calls.length, 1);  // the first try only: in view, it is left alone
  calls.length = 0;
  where.top = 3000;  // the notebook scrolled on to a later cell by itself
  await wait(FOLLOW_MS + 100);
  assert.ok(calls.length >= 1);
  const before = calls.length;
  model.update("follow", false);  // the run ended
  await wait(FOLLOW_MS + 100);
  assert.equal(calls.length, before);
  cleanup();
});

test("the user's own scrolling stops the following, and only the newest view follows", async () => {
  const where = { top: 3000 };
  const { inner, calls } = placed(where);
  const model = fakeModel({ target: ".yeswidget-stage", tries: 1, follow: true });
  const first = widget.render({ model, el: inner });
  const second = placed({ top: 3000 });
  const later = widget.render({ model: fakeModel({ target: ".yeswidget-stage", tries: 1, follow: true }),
    el: second.inner });
  await wait(TRIES_MS[0] + 50);
  calls.length = 0;
  second.calls.length = 0;
  fire(second.inner.ownerDocument.body, "wheel");
  await wait(FOLLOW_MS + 100);
  assert.equal(calls.length, 0);  // an earlier training cell's copy does not pull the page back
  assert.equal(second.calls.length, 0);  // the lecturer scrolled: the newest view lets them
  // an earlier output re-rendered in place when a run ends (tries 0) does not take the lead
  const third = placed({ top: 3000 });
  const refreshed = widget.render({ model: fakeModel({ target: ".yeswidget-stage", tries: 0, follow: true }),
    el: third.inner });
  await wait(FOLLOW_MS + 100);
  assert.equal(third.calls.length, 0);
  first();
  later();
  refreshed();
});
