// yeswidget "in view": a widget of no size that, when it is shown, scrolls the element around it
// (the closest `target` selector, e.g. a training cell's copy of the Playground) into the visible
// part of the notebook. A training cell shows the live chart again; JupyterLab and Notebook 7 have
// by then scrolled to the next cell, which may leave the chart below or above the screen.
import { toNumber } from "./shared.js";

/** Milliseconds after the first render at which the target is brought into view (the figure lays
 * itself out after the first frame, so one late try catches its final height). */
export const TRIES_MS = Object.freeze([120, 700, 1600]);

/** Scroll `target` into view only as far as needed ("nearest"): a chart already in view stays put. */
export function bringIntoView(el, selector) {
  const target = (selector && el.closest(selector)) || el;
  if (typeof target.scrollIntoView === "function") {
    target.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
  return target;
}

function render({ model, el }) {
  el.classList.add("yw-in-view");
  const limit = toNumber(model.get("tries")) ?? TRIES_MS.length;
  const timers = TRIES_MS.slice(0, Math.max(0, limit)).map((ms) =>
    setTimeout(() => bringIntoView(el, model.get("target")), ms));
  return () => timers.forEach((timer) => clearTimeout(timer));
}

export default { render };
