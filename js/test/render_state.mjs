// Not a test file: tests/test_tables.py runs it with node to render a widget
// exactly as anywidget would, from what Python sends.
//
//   node js/test/render_state.mjs MODULE.mjs STATE.json
//
// MODULE.mjs is the composed `_esm` text of a widget (get_state()["_esm"]),
// STATE.json its synced traits. Prints, as JSON, what the view drew for each
// zone-coloured element: {zone, color (computed rgb), text, title}, and the
// zone timeline's pill and headline (if any).
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

import { fakeModel, host } from "./helpers.mjs";

const [modulePath, statePath] = process.argv.slice(2);
const widget = (await import(pathToFileURL(modulePath).href)).default;
const state = JSON.parse(readFileSync(statePath, "utf8"));
const { el } = host();
const cleanup = widget.render({ model: fakeModel(state), el });

const colorOf = (node) => node.style.backgroundColor || node.querySelector(".yw-dot")?.style.backgroundColor || "";
const drawn = [...el.querySelectorAll("[data-zone]")]
  .filter((node) => node.dataset.zone !== "" && !node.classList.contains("yw-badge"))
  .map((node) => ({ zone: node.dataset.zone, color: colorOf(node), text: node.textContent, title: node.title }));
const pill = el.querySelector(".yw-pill");
const headline = el.querySelector(".yw-headline");
console.log(JSON.stringify({
  drawn,
  pill: pill ? { text: pill.textContent, color: pill.style.backgroundColor } : null,
  headline: headline ? headline.textContent : null,
}));
cleanup();
