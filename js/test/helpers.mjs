// Test helpers (no tests here): a fake anywidget model and a jsdom host element.
import { JSDOM } from "jsdom";

/**
 * A stand-in for the anywidget model: get / set / on / off / save_changes.
 * `set` fires "change:<name>" listeners when the value changes, like the
 * Backbone model behind anywidget does.
 */
export function fakeModel(initial = {}) {
  const state = { ...initial };
  const listeners = new Map();
  const calls = { save_changes: 0, on: [], off: [], set: [] };
  return {
    state,
    calls,
    get(name) {
      return state[name];
    },
    set(name, value) {
      calls.set.push([name, value]);
      const old = state[name];
      state[name] = value;
      if (old !== value) {
        for (const callback of [...(listeners.get(`change:${name}`) || [])]) callback(value);
      }
    },
    on(name, callback) {
      calls.on.push(name);
      if (!listeners.has(name)) listeners.set(name, new Set());
      listeners.get(name).add(callback);
    },
    off(name, callback) {
      calls.off.push(name);
      listeners.get(name)?.delete(callback);
    },
    save_changes() {
      calls.save_changes += 1;
    },
    /** Python-side update: change the value and fire the change event. */
    update(name, value) {
      state[name] = value;
      for (const callback of [...(listeners.get(`change:${name}`) || [])]) callback(value);
    },
    listenerCount() {
      let count = 0;
      for (const set of listeners.values()) count += set.size;
      return count;
    },
  };
}

/** A fresh jsdom document with a host element for a widget view. */
export function host() {
  const dom = new JSDOM("<!doctype html><html><body></body></html>");
  const { document } = dom.window;
  const el = document.createElement("div");
  document.body.append(el);
  return { dom, window: dom.window, document, el };
}

/** Dispatch a bubbling event of `type` on `node`. */
export function fire(node, type, init = {}) {
  const window = node.ownerDocument.defaultView;
  const EventClass = type.startsWith("key") ? window.KeyboardEvent : window.MouseEvent;
  node.dispatchEvent(new EventClass(type, { bubbles: true, cancelable: true, ...init }));
}
