import assert from "node:assert/strict";
import { test } from "node:test";

import widget, { COLUMNS, formatEpochsToGreen, formatWallTime, sortRows } from "../src/runs_table.js";
import { formatDb, formatLr, zoneTable } from "../src/shared.js";
import { fakeModel, fire, host, RGB, ZONES } from "./helpers.mjs";

const ROWS = [
  {
    id: 0, label: "adam 1e-3", lr: 1e-3, batch_size: 50, optimizer: "adam", schedule: "constant",
    seed: 0, final_loss_db: -12.34, final_zone: "green", epochs_to_green: 7, wall_time: 12.34,
    status: "finished", color: "#1f77b4",
  },
  {
    id: 1, label: "sgd 1e-1", lr: 0.1, batch_size: 10, optimizer: "sgd", schedule: "cosine",
    seed: 1, final_loss_db: null, final_zone: null, epochs_to_green: null, wall_time: 3.0,
    status: "running", color: "#ff7f0e",
  },
  {
    id: 2, label: "Adam 3e-4", lr: 3e-4, batch_size: 200, optimizer: "Adam", schedule: "step",
    seed: 2, final_loss_db: -3.04, final_zone: "yellow", epochs_to_green: null, wall_time: 125,
    status: "finished", color: "#2ca02c",
  },
  {
    id: 10, label: "run 10", lr: null, batch_size: 25, optimizer: "rmsprop", schedule: null,
    seed: 3, final_loss_db: "NaN", final_zone: "red", epochs_to_green: null, wall_time: 7200,
    status: "diverged", color: "",
  },
];

function mount(state = {}) {
  const { el, document } = host();
  const model = fakeModel({ rows: ROWS, selected: -1, sort_by: "id", sort_ascending: true, zones: ZONES, ...state });
  const cleanup = widget.render({ model, el });
  const ids = () => [...el.querySelectorAll("tr.yw-row")].map((tr) => Number(tr.dataset.id));
  const header = (key) => el.querySelector(`th[data-key="${key}"]`);
  const row = (id) => el.querySelector(`tr[data-id="${id}"]`);
  const cell = (id, key) => row(id).querySelector(`td.yw-col-${key}`);
  return { el, document, model, cleanup, ids, header, row, cell };
}

test("default export has a render function", () => {
  assert.equal(typeof widget.render, "function");
});

test("renders one row per run and one header per column", () => {
  const { el, ids } = mount();
  assert.equal(el.querySelectorAll("table.yw-runs-table").length, 1);
  assert.equal(el.querySelectorAll("th.yw-th").length, COLUMNS.length);
  assert.deepEqual(ids(), [0, 1, 2, 10]);
  for (const tr of el.querySelectorAll("tr.yw-row")) {
    assert.equal(tr.querySelectorAll("td").length, COLUMNS.length);
  }
});

test("cells are formatted: lr, loss dB, wall time, zone dot, swatch, epochs to green", () => {
  const { cell, row } = mount();
  assert.equal(cell(0, "lr").textContent, "1e-3");
  assert.equal(cell(2, "lr").textContent, "3e-4");
  assert.equal(cell(10, "lr").textContent, "\u2013");
  assert.equal(cell(0, "final_loss_db").textContent, "-12.3 dB");
  assert.equal(cell(2, "final_loss_db").textContent, "-3.0 dB");
  assert.equal(cell(10, "final_loss_db").textContent, "\u2013"); // NaN
  assert.equal(cell(0, "wall_time").textContent, "12.3 s");
  assert.equal(cell(2, "wall_time").textContent, "2 min 05 s");
  assert.equal(cell(10, "wall_time").textContent, "2 h 00 min");
  assert.equal(cell(0, "epochs_to_green").textContent, "7");
  assert.equal(cell(1, "epochs_to_green").textContent, "\u2013"); // still running
  assert.equal(cell(2, "epochs_to_green").textContent, "never"); // finished, never green
  assert.equal(cell(10, "epochs_to_green").textContent, "never"); // diverged: ended too

  const zone = cell(0, "final_zone");
  assert.equal(zone.textContent, "green");
  assert.equal(zone.querySelector(".yw-dot").style.backgroundColor, RGB.green);
  assert.equal(zone.title, "test meaning of green");
  assert.equal(cell(2, "final_zone").querySelector(".yw-dot").style.backgroundColor, RGB.yellow);
  assert.equal(cell(10, "final_zone").querySelector(".yw-dot").style.backgroundColor, RGB.red);
  assert.equal(cell(1, "final_zone").textContent, "\u2013");

  const swatch = cell(0, "label").querySelector(".yw-swatch");
  assert.equal(swatch.style.backgroundColor, "rgb(31, 119, 180)");
  assert.equal(cell(0, "label").textContent, "adam 1e-3");
  assert.ok(cell(10, "label").querySelector(".yw-swatch").classList.contains("yw-swatch-none"));
  assert.ok(row(10).querySelector(".yw-status-diverged"));
});

test("formatters", () => {
  assert.equal(formatLr(0.001), "1e-3");
  assert.equal(formatLr(0.00025), "2.5e-4");
  assert.equal(formatLr(1), "1e0");
  assert.equal(formatLr(0), "0");
  assert.equal(formatLr(null), "\u2013");
  assert.equal(formatDb(-0.01), "0.0 dB");
  assert.equal(formatDb("-Infinity"), "-\u221e dB");
  assert.equal(formatDb(undefined), "\u2013");
  assert.equal(formatWallTime(0), "0.0 s");
  assert.equal(formatWallTime(59.9), "59.9 s");
  assert.equal(formatWallTime(60), "1 min 00 s");
  assert.equal(formatEpochsToGreen(null, "running"), "\u2013");
  assert.equal(formatEpochsToGreen(null, "finished"), "never");
  assert.equal(formatEpochsToGreen(null, "stopped"), "never");
  assert.equal(formatEpochsToGreen(3, "running"), "3");
});

test("header click sorts numerically, toggles direction, keeps None last", () => {
  const { model, header, ids } = mount();
  fire(header("lr"), "click");
  assert.equal(model.get("sort_by"), "lr");
  assert.equal(model.get("sort_ascending"), true);
  assert.ok(model.calls.save_changes >= 1);
  // 3e-4 < 1e-3 < 0.1 numerically (a string sort would differ); None last
  assert.deepEqual(ids(), [2, 0, 1, 10]);
  assert.equal(header("lr").querySelector(".yw-sort-arrow").textContent, "\u25b2");
  assert.equal(header("lr").getAttribute("aria-sort"), "ascending");
  assert.equal(header("id").querySelector(".yw-sort-arrow").textContent, "");

  const saves = model.calls.save_changes;
  fire(header("lr"), "click");
  assert.equal(model.get("sort_by"), "lr");
  assert.equal(model.get("sort_ascending"), false);
  assert.ok(model.calls.save_changes > saves);
  assert.deepEqual(ids(), [1, 0, 2, 10]); // None still last
  assert.equal(header("lr").querySelector(".yw-sort-arrow").textContent, "\u25bc");
  assert.equal(header("lr").getAttribute("aria-sort"), "descending");

  // a new column starts ascending again
  fire(header("final_loss_db"), "click");
  assert.equal(model.get("sort_ascending"), true);
  assert.deepEqual(ids(), [0, 2, 1, 10]); // -12.3 < -3.0; null and NaN last, in input order
});

test("numeric sort is not a string sort (batch 25 < 200, id 2 < 10)", () => {
  const { header, ids } = mount();
  fire(header("batch_size"), "click");
  assert.deepEqual(ids(), [1, 10, 0, 2]);
  fire(header("id"), "click");
  fire(header("id"), "click");
  assert.deepEqual(ids(), [10, 2, 1, 0]);
});

test("string columns sort case-insensitively with natural numbers, None last", () => {
  const { header, ids, model } = mount();
  fire(header("optimizer"), "click");
  assert.deepEqual(ids(), [0, 2, 10, 1]); // adam, Adam (ties keep input order), rmsprop, sgd
  fire(header("schedule"), "click");
  assert.deepEqual(ids(), [0, 1, 2, 10]); // constant, cosine, step, None
  fire(header("schedule"), "click");
  assert.equal(model.get("sort_ascending"), false);
  assert.deepEqual(ids(), [2, 1, 0, 10]); // None last in both directions
  fire(header("label"), "click");
  assert.deepEqual(ids(), [0, 2, 10, 1]); // "adam …", "Adam …", "run 10", "sgd …"
});

test("zone column sorts red, yellow, green", () => {
  const { header, ids } = mount();
  fire(header("final_zone"), "click");
  assert.deepEqual(ids(), [10, 2, 0, 1]);
});

test("sortRows: natural order and missing values", () => {
  const rows = [{ id: 0, label: "run 10" }, { id: 1, label: "run 2" }, { id: 2, label: "" }, { id: 3 }];
  assert.deepEqual(sortRows(rows, "label", true).map((r) => r.id), [1, 0, 2, 3]);
  assert.deepEqual(sortRows(rows, "label", false).map((r) => r.id), [0, 1, 2, 3]);
  const numbers = [{ id: 0, lr: "Infinity" }, { id: 1, lr: 1 }, { id: 2, lr: "NaN" }, { id: 3, lr: -1 }];
  assert.deepEqual(sortRows(numbers, "lr", true).map((r) => r.id), [3, 1, 0, 2]);
  assert.deepEqual(sortRows(numbers, "unknown-column", true).map((r) => r.id), [0, 1, 2, 3]);
  // the zone order comes from the zone table (bad to good); "none" and unknown sort last
  const zoned = [{ id: 0, final_zone: "none" }, { id: 1, final_zone: "green" }, { id: 2, final_zone: "red" }, { id: 3 }];
  assert.deepEqual(sortRows(zoned, "final_zone", true, zoneTable(ZONES)).map((r) => r.id), [2, 1, 0, 3]);
  assert.deepEqual(sortRows(zoned, "final_zone", false, zoneTable(ZONES)).map((r) => r.id), [1, 2, 0, 3]);
  // without zone definitions no zone is known: the input order stays
  assert.deepEqual(sortRows(zoned, "final_zone", true).map((r) => r.id), [0, 1, 2, 3]);
});

test("a 'none' zone (no verdict) is drawn grey with its word; zones changes re-render", () => {
  const rows = [{ id: 0, label: "flat", final_zone: "none", status: "finished" }];
  const { model, cell } = mount({ rows });
  const zone = cell(0, "final_zone");
  assert.equal(zone.textContent, "no verdict");
  assert.equal(zone.dataset.zone, "none");
  assert.equal(zone.querySelector(".yw-dot").style.backgroundColor, RGB.none);

  // new definitions from Python: the colour and the word follow
  const changed = structuredClone(ZONES);
  changed.zones.none.band = "#010203";
  changed.zones.none.word = "cannot judge";
  model.update("zones", changed);
  assert.equal(cell(0, "final_zone").textContent, "cannot judge");
  assert.equal(cell(0, "final_zone").querySelector(".yw-dot").style.backgroundColor, "rgb(1, 2, 3)");
});

test("without zone definitions the zone cells show a dash, not a made-up colour", () => {
  const { cell } = mount({ zones: undefined });
  assert.equal(cell(0, "final_zone").textContent, "\u2013");
  assert.equal(cell(0, "final_zone").querySelector(".yw-dot"), null);
});

test("the model's sort_by / sort_ascending drive the order (Python-side change)", () => {
  const { model, ids, header } = mount();
  model.update("sort_by", "wall_time");
  assert.deepEqual(ids(), [1, 0, 2, 10]);
  model.update("sort_ascending", false);
  assert.deepEqual(ids(), [10, 2, 0, 1]);
  assert.ok(header("wall_time").classList.contains("yw-sorted"));
});

test("row click sets selected, calls save_changes and highlights the row", () => {
  const { model, row, el } = mount();
  fire(row(2).querySelector("td.yw-col-optimizer"), "click"); // a click on a cell selects its row
  assert.equal(model.get("selected"), 2);
  assert.equal(model.calls.save_changes, 1);
  assert.ok(row(2).classList.contains("yw-selected"));
  assert.equal(row(2).getAttribute("aria-selected"), "true");
  assert.equal(el.querySelectorAll("tr.yw-selected").length, 1);

  fire(row(10), "click");
  assert.equal(model.get("selected"), 10);
  assert.equal(model.calls.save_changes, 2);
  assert.ok(!row(2).classList.contains("yw-selected"));
  assert.ok(row(10).classList.contains("yw-selected"));
});

test("selection from Python highlights the row; Enter on a focused row selects it", () => {
  const { model, row, el } = mount({ selected: 1 });
  assert.ok(row(1).classList.contains("yw-selected"));
  model.update("selected", -1);
  assert.equal(el.querySelectorAll("tr.yw-selected").length, 0);
  fire(row(0), "keydown", { key: "Enter" });
  assert.equal(model.get("selected"), 0);
  assert.equal(model.calls.save_changes, 1);
});

test("re-renders on change:rows; empty rows show a placeholder", () => {
  const { model, ids, el } = mount();
  model.update("rows", [{ id: 5, label: "new", status: "running" }]);
  assert.deepEqual(ids(), [5]);
  model.update("rows", []);
  assert.deepEqual(ids(), []);
  assert.equal(el.querySelector("tr.yw-empty").textContent, "no runs yet");
});

test("listens to the five change events and cleanup removes them and the DOM", () => {
  const { model, cleanup, el } = mount();
  const events = ["change:rows", "change:selected", "change:sort_by", "change:sort_ascending", "change:zones"];
  assert.deepEqual([...model.calls.on].sort(), [...events].sort());
  assert.equal(model.listenerCount(), events.length);
  assert.equal(typeof cleanup, "function");

  const table = el.querySelector("table");
  cleanup();
  assert.deepEqual([...model.calls.off].sort(), [...events].sort());
  assert.equal(model.listenerCount(), 0);
  assert.equal(el.childNodes.length, 0);

  // no re-render (and no error) after cleanup
  model.update("rows", [{ id: 9 }]);
  model.update("sort_by", "lr");
  assert.equal(el.childNodes.length, 0);
  assert.equal(table.querySelectorAll("tr.yw-row").length, 4); // the detached table was left alone

  // clicks on the detached table no longer reach the model
  const saves = model.calls.save_changes;
  fire(table.querySelector("tr.yw-row"), "click");
  fire(table.querySelector("th"), "click");
  assert.equal(model.calls.save_changes, saves);
});

test("two views of one model are independent", () => {
  const { el, document } = host();
  const other = document.createElement("div");
  document.body.append(other);
  const model = fakeModel({ rows: ROWS, selected: -1, sort_by: "id", sort_ascending: true, zones: ZONES });
  const first = widget.render({ model, el });
  const second = widget.render({ model, el: other });
  first();
  model.update("selected", 2);
  assert.ok(other.querySelector('tr[data-id="2"]').classList.contains("yw-selected"));
  second();
  assert.equal(model.listenerCount(), 0);
});
