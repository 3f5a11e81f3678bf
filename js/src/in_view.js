// yeswidget "in view": a widget of no size that, when it is shown, scrolls the element around it
// (the closest `target` selector, e.g. a training cell's copy of the Playground) into the visible
// part of the notebook. A training cell shows the live chart again; JupyterLab and Notebook 7 have
// by then scrolled to the next cell, which may leave the chart below or above the screen.
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

function render({ model, el }) {
  el.classList.add("yw-in-view");
  hoistPatterns(el.ownerDocument);
  const limit = toNumber(model.get("tries")) ?? TRIES_MS.length;
  const timers = TRIES_MS.slice(0, Math.max(0, limit)).map((ms) =>
    setTimeout(() => bringIntoView(el, model.get("target")), ms));
  return () => timers.forEach((timer) => clearTimeout(timer));
}

export default { render };
