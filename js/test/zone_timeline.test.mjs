import assert from "node:assert/strict";
import { test } from "node:test";

import { zoneTable } from "../src/shared.js";
import widget, { bucketRecords, cellText } from "../src/zone_timeline.js";
import { fakeModel, fire, host, RGB, ZONES } from "./helpers.mjs";

const TABLE = zoneTable(ZONES);

function record(epoch, zone, loss = -epoch / 2) {
  return { epoch, loss_db: loss, upper_db: -1.25, lower_db: -6.5, zone };
}

function mount(state = {}) {
  const { el } = host();
  const model = fakeModel({ records: [], zone: "", headline: "", max_cells: 400, zones: ZONES, ...state });
  const cleanup = widget.render({ model, el });
  const cells = () => [...el.querySelectorAll(".yw-strip .yw-cell")];
  return { el, model, cleanup, cells };
}

test("default export has a render function", () => {
  assert.equal(typeof widget.render, "function");
});

test("one cell per epoch, coloured by zone", () => {
  const zones = ["red", "red", "yellow", "yellow", "yellow", "green"];
  const { cells } = mount({ records: zones.map((zone, i) => record(i + 1, zone)), zone: "green" });
  assert.equal(cells().length, zones.length);
  cells().forEach((cell, i) => {
    assert.equal(cell.dataset.zone, zones[i]);
    assert.equal(cell.style.backgroundColor, RGB[zones[i]]);
  });
});

test("tooltip names the epoch, the loss, both edges and the zone", () => {
  const records = [
    { epoch: 1, loss_db: 2.0, upper_db: -1.25, lower_db: -6.5, zone: "red" },
    { epoch: 2, loss_db: -3.46, upper_db: -1.25, lower_db: -6.54, zone: "yellow" },
  ];
  const { cells } = mount({ records });
  const title = cells()[1].title;
  assert.equal(title, "epoch 2 \u00b7 loss -3.5 dB \u00b7 YES-0 -1.3 dB \u00b7 lower edge -6.5 dB \u00b7 yellow");
  assert.match(cells()[0].title, /^epoch 1 · loss 2\.0 dB · YES-0 -1\.3 dB · lower edge -6\.5 dB · red$/);
});

test("non-finite values sent by Python as strings are shown, missing ones as a dash", () => {
  const records = [{ epoch: 1, loss_db: "-Infinity", upper_db: "NaN", lower_db: null, zone: "green" }];
  const { cells } = mount({ records });
  assert.equal(cells()[0].title, "epoch 1 \u00b7 loss -\u221e dB \u00b7 YES-0 \u2013 \u00b7 lower edge \u2013 \u00b7 green");
});

test("more records than max_cells are bucketed; each cell shows its worst zone", () => {
  const zones = [];
  for (let i = 0; i < 1000; i += 1) zones.push(i < 300 ? "red" : i < 700 ? "yellow" : "green");
  zones[850] = "red"; // one bad epoch late in the run
  const records = zones.map((zone, i) => record(i + 1, zone));
  const { cells, model } = mount({ records, max_cells: 400 });

  const size = Math.ceil(1000 / 400); // 3 epochs per cell
  assert.equal(cells().length, Math.ceil(1000 / size));
  assert.ok(cells().length <= 400);
  const bucketOf = (epoch) => cells()[Math.floor((epoch - 1) / size)];
  assert.equal(bucketOf(851).dataset.zone, "red"); // worst zone wins over green
  assert.equal(bucketOf(851).style.backgroundColor, RGB.red);
  assert.equal(bucketOf(1000).dataset.zone, "green");
  // the bucket epochs 700..702: index 699 is yellow, 700 and 701 green -> yellow
  assert.equal(bucketOf(701).dataset.zone, "yellow");

  const title = bucketOf(851).title;
  assert.match(title, /^epochs 850–852 · worst zone red \(red 1, green 2\)/);
  assert.match(title, /at epoch 852: loss -426\.0 dB · YES-0 -1\.3 dB · lower edge -6\.5 dB/);
  // 1000 = 333 * 3 + 1: the last cell holds epoch 1000 alone
  assert.match(cells().at(-1).title, /^epoch 1000 · loss -500\.0 dB · .* · green$/);

  // max_cells changes re-bucket
  model.update("max_cells", 10);
  assert.equal(cells().length, 10);
  assert.match(cells()[0].title, /^epochs 1–100 · worst zone red \(red 100\)/);
  model.update("max_cells", 5000);
  assert.equal(cells().length, 1000);
});

test("bucketRecords never makes more than max_cells cells", () => {
  for (const n of [0, 1, 9, 10, 11, 399, 400, 401, 799, 800, 801, 12345]) {
    const records = Array.from({ length: n }, (_, i) => record(i + 1, "yellow"));
    for (const maxCells of [10, 37, 400]) {
      const cells = bucketRecords(records, maxCells, TABLE);
      assert.ok(cells.length <= Math.max(maxCells, 10), `${n} records, max ${maxCells}`);
      assert.equal(cells.reduce((sum, cell) => sum + cell.size, 0), n);
      if (n <= maxCells) assert.equal(cells.length, n);
    }
  }
  // below the minimum of 10 cells the limit is 10
  assert.equal(bucketRecords(Array.from({ length: 20 }, (_, i) => record(i + 1, "red")), 2, TABLE).length, 10);
});

test("cellText for records without zones", () => {
  const single = bucketRecords([{ epoch: 1 }, { epoch: 2 }], 10, TABLE);
  assert.equal(single.length, 2);
  assert.equal(cellText(single[0], TABLE), "epoch 1 \u00b7 loss \u2013 \u00b7 YES-0 \u2013 \u00b7 lower edge \u2013 \u00b7 no zone");
  const records = Array.from({ length: 30 }, (_, i) => ({ epoch: i + 1 }));
  const [bucket] = bucketRecords(records, 10, TABLE);
  assert.equal(bucket.zone, null);
  assert.match(cellText(bucket, TABLE), /^epochs 1–3 · no zone · at epoch 3: loss – ·/);
});

test("badge shows the zone word and the headline", () => {
  const headline = "yellow: inside the cloud, training is meaningful but not optimal";
  const { el, model } = mount({ records: [record(1, "yellow")], zone: "yellow", headline });
  const pill = el.querySelector(".yw-badge .yw-pill");
  assert.equal(pill.textContent, "yellow");
  assert.equal(pill.style.backgroundColor, RGB.yellow);
  assert.equal(el.querySelector(".yw-headline").textContent, "inside the cloud, training is meaningful but not optimal");

  model.update("zone", "green");
  model.update("headline", "green: effective training");
  assert.equal(pill.textContent, "green");
  assert.equal(pill.style.backgroundColor, RGB.green);
  assert.equal(el.querySelector(".yw-headline").textContent, "effective training");

  model.update("headline", "");
  assert.equal(el.querySelector(".yw-headline").textContent, "test meaning of green"); // from the zones trait
});

test("'none' (no verdict) is grey, named by its word, and loses to any real zone in a bucket", () => {
  const records = [record(1, "none"), record(2, "none"), record(3, "green")];
  const { el, cells, model } = mount({ records, zone: "none" });
  assert.equal(cells()[0].style.backgroundColor, RGB.none);
  assert.equal(cells()[0].dataset.zone, "none");
  assert.match(cells()[0].title, / · no verdict$/);
  const pill = el.querySelector(".yw-pill");
  assert.equal(pill.textContent, "no verdict");
  assert.equal(pill.style.backgroundColor, RGB.none);
  assert.equal(el.querySelector(".yw-headline").textContent, "test meaning of none");
  assert.equal(el.querySelector(".yw-strip").getAttribute("aria-label"), "3 epochs: red 0, yellow 0, green 1, no verdict 2");

  const many = Array.from({ length: 30 }, (_, i) => record(i + 1, i === 1 ? "green" : "none"));
  const [first, second] = bucketRecords(many, 10, TABLE);
  assert.equal(first.zone, "green"); // epochs 1-3: none, green, none
  assert.equal(second.zone, "none");
  assert.match(cellText(first, TABLE), /^epochs 1–3 · worst zone green \(green 1, no verdict 2\)/);

  model.update("zone", "");
  model.update("records", []);
  assert.equal(pill.textContent, "no verdict yet");
});

test("colours and words follow a change of the zones trait", () => {
  const { el, cells, model } = mount({ records: [record(1, "red"), record(2, "yellow")], zone: "yellow" });
  assert.equal(cells()[1].style.backgroundColor, RGB.yellow);
  const changed = structuredClone(ZONES);
  changed.zones.yellow.band = "#0A0B0C";
  changed.zones.yellow.meaning = "changed in Python";
  model.update("zones", changed);
  assert.equal(cells()[1].style.backgroundColor, "rgb(10, 11, 12)");
  assert.equal(el.querySelector(".yw-pill").style.backgroundColor, "rgb(10, 11, 12)");
  assert.equal(el.querySelector(".yw-headline").textContent, "changed in Python");
  // no definitions at all: every zone is unknown, drawn as "no zone"
  model.update("zones", {});
  assert.ok(cells().every((cell) => cell.classList.contains("yw-cell-none")));
  assert.equal(el.querySelector(".yw-pill").textContent, "no verdict yet");
});

test("badge falls back to the last record's zone, then to 'no verdict yet'", () => {
  const { el, model } = mount({ records: [record(1, "red"), record(2, "yellow")] });
  assert.equal(el.querySelector(".yw-pill").textContent, "yellow");
  model.update("records", []);
  assert.equal(el.querySelector(".yw-pill").textContent, "no verdict yet");
  assert.ok(el.querySelector(".yw-pill").classList.contains("yw-pill-none"));
  assert.equal(el.querySelectorAll(".yw-cell").length, 0);
  assert.equal(el.querySelector(".yw-readout").textContent, "no epochs yet");
});

test("hovering a cell shows its text in the readout line", () => {
  const { el, cells } = mount({ records: [record(1, "red"), record(2, "green")] });
  const readout = el.querySelector(".yw-readout");
  assert.match(readout.textContent, /^latest: epoch 2 ·/);
  fire(cells()[0], "mouseover");
  assert.equal(readout.textContent, cells()[0].title);
  fire(cells()[0], "mouseout");
  assert.match(readout.textContent, /^latest: epoch 2 ·/);
});

test("re-renders on change:records", () => {
  const { model, cells } = mount({ records: [record(1, "red")] });
  assert.equal(cells().length, 1);
  model.update("records", [record(1, "red"), record(2, "yellow"), record(3, "green")]);
  assert.deepEqual(cells().map((c) => c.dataset.zone), ["red", "yellow", "green"]);
});

test("cleanup removes listeners and DOM; no re-render afterwards", () => {
  const { model, cleanup, el } = mount({ records: [record(1, "red")] });
  const events = ["change:records", "change:zone", "change:headline", "change:max_cells", "change:zones"];
  assert.deepEqual([...model.calls.on].sort(), [...events].sort());
  cleanup();
  assert.deepEqual([...model.calls.off].sort(), [...events].sort());
  assert.equal(model.listenerCount(), 0);
  assert.equal(el.childNodes.length, 0);
  model.update("records", [record(1, "green"), record(2, "green")]);
  model.update("zone", "green");
  assert.equal(el.childNodes.length, 0);
});
