// yeswidget "in view": a widget of no size that, when it is shown, scrolls the element around it
// (the closest `target` selector, e.g. a training cell's copy of the Playground) into the visible
// part of the notebook. A training cell shows the live chart again; JupyterLab and Notebook 7 have
// by then scrolled to the next cell, which may leave the chart below or above the screen. While
// `follow` is set (the run is live) the newest view brings it back whenever it has left the screen,
// until the user scrolls by hand (wheel, touch, navigation keys, the scrollbar).
import { toNumber } from "./shared.js";

/** Milliseconds after the first render at which the target is brought into view (the figure lays
 * itself out after the first frame; Notebook 7 may scroll on to a later cell seconds after the run
 * starts, so two late tries bring the stage back). */
export const TRIES_MS = Object.freeze([120, 700, 1600, 4000, 8000]);

/** Scroll `target`'s top to the top of the visible notebook ("start"): the stage is shorter than a
 * projector's notebook area, so the room left below it absorbs a status line that wraps or a note
 * that appears later (scrolling only as far as needed left the chart's bottom edge at the fold). */
export function bringIntoView(el, selector) {
  const target = (selector && el.closest(selector)) || el;
  if (typeof target.scrollIntoView === "function") {
    target.scrollIntoView({ block: "start", inline: "nearest" });
  }
  return target;
}

/** Id of the one copy of the hatch patterns at the top of the page. */
export const DEFS_ID = "yw-hatch-defs";

/**
 * Put one copy of the Playground's hatch patterns (`#yw-hatch-red`, `#yw-hatch-yellow`) first in the
 * page: `fill: url(#id)` paints with the first element of that id, and the first copy, in the
 * Playground's own output far up the notebook, stops painting once the notebook skips rendering
 * that cell; every band filled from it would then show no colour at all.
 */
export function hoistPatterns(doc) {
  if (doc.getElementById(DEFS_ID)) return false;
  const pattern = doc.getElementById("yw-hatch-red");
  const svg = pattern && pattern.closest("svg");
  if (!svg) return false;
  const copy = svg.cloneNode(true);
  copy.id = DEFS_ID;
  doc.body.prepend(copy);
  return true;
}

/** While `follow` is set (the run is live), how often the newest view checks that its target is still
 * in view (Notebook 7 and JupyterLab scroll to a later cell on their own while a cell runs). */
export const FOLLOW_MS = 500;
/** Pixels a target may sit outside the visible notebook before it is brought back. */
export const SLACK_PX = 4;
const NAVIGATION_KEYS = new Set(["PageUp", "PageDown", "ArrowUp", "ArrowDown", "Home", "End", " "]);

/** The nearest ancestor that scrolls (JupyterLab's notebook panel, Notebook 7's), else null (the window). */
export function scrollParent(el) {
  const view = el.ownerDocument.defaultView;
  for (let node = el.parentElement; node; node = node.parentElement) {
    const overflow = view.getComputedStyle(node).overflowY;
    if ((overflow === "auto" || overflow === "scroll") && node.scrollHeight > node.clientHeight) return node;
  }
  return null;
}

/** Is `target` outside the visible part of the notebook (its top above it, or its bottom below)? */
export function outOfView(target) {
  const view = target.ownerDocument.defaultView;
  const parent = scrollParent(target);
  const box = parent ? parent.getBoundingClientRect() : { top: 0, bottom: view.innerHeight };
  const top = Math.max(box.top, 0);
  const bottom = Math.min(box.bottom, view.innerHeight);
  const rect = target.getBoundingClientRect();
  const tall = rect.bottom - rect.top > bottom - top;
  return rect.top < top - SLACK_PX || (!tall && rect.bottom > bottom + SLACK_PX);
}

// the newest view is the one that follows (earlier training cells show the same stage too)
let leader = null;

/** Keep `target` in view while the model's `follow` is set, until the user scrolls by hand. */
function follow(model, el, token) {
  const doc = el.ownerDocument;
  let userScrolled = false;
  const takeOver = (event) => {
    if (event.type === "keydown" && !NAVIGATION_KEYS.has(event.key)) return;
    if (event.type === "pointerdown" && event.target !== scrollParent(el)) return;  // only its scrollbar
    userScrolled = true;
  };
  const kinds = ["wheel", "touchmove", "keydown", "pointerdown"];
  kinds.forEach((kind) => doc.addEventListener(kind, takeOver, { capture: true, passive: true }));
  const timer = setInterval(() => {
    if (leader !== token || userScrolled || !model.get("follow")) return;
    const target = el.closest(model.get("target")) || el;
    if (target.isConnected && outOfView(target)) bringIntoView(el, model.get("target"));
  }, FOLLOW_MS);
  return () => {
    clearInterval(timer);
    kinds.forEach((kind) => doc.removeEventListener(kind, takeOver, { capture: true }));
  };
}

function render({ model, el }) {
  el.classList.add("yw-in-view");
  hoistPatterns(el.ownerDocument);
  const token = {};
  const limit = toNumber(model.get("tries")) ?? TRIES_MS.length;
  if (limit > 0) leader = token;  // a new display leads; an output re-rendered in place (tries 0) never does
  const timers = TRIES_MS.slice(0, Math.max(0, limit)).map((ms) =>
    setTimeout(() => bringIntoView(el, model.get("target")), ms));
  const stopFollowing = follow(model, el, token);
  return () => {
    timers.forEach((timer) => clearTimeout(timer));
    stopFollowing();
    if (leader === token) leader = null;
  };
}

export default { render };
