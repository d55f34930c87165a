// Virtualised table bodies for the long lists (agents, tasks, dead tasks and letters): only the rows
// in view, plus a margin, are in the DOM, between two spacer rows that keep the scroll height of the
// whole list. Rendering is coalesced: however many changes arrive, a list renders at most once per
// animation frame (the first change of a frame at once, the rest at the next frame; a timer stands
// in while the page is hidden and has no frames). A list renders what its `items()` returns at that
// moment, so filtering costs one pass per frame, never per event.
// Rows are rebuilt only when their item changed (panels bump `item.v`); unchanged rows are reused.
// Row heights are taken as uniform (the rows are one line: dashboard.css keeps cells on one line).
// Also here: an array kept sorted by binary search (no sort per event) and the filter box's matcher.

/** Rows rendered above and below the visible ones. */
const MARGIN = 10;
/** Row height until one is measured, px. */
const DEFAULT_ROW_PX = 25;
/** Rows rendered when the list's box has no height yet (hidden, not laid out). */
const UNMEASURED_ROWS = 40;
/** While the page is hidden it gets no animation frames: a render waits at most this long. */
const HIDDEN_WAIT_MS = 250;

/**
 * A function that runs `fn` at most once per animation frame, however often it is called: the first
 * call in a frame runs `fn` at once (an isolated change shows without waiting), later ones in the
 * same frame are folded into one run at the next frame. While the page is hidden (no frames) a
 * timer stands in.
 */
export function coalesce(fn) {
  /** A run is owed to the next frame. */
  let pending = false;
  /** `fn` ran since the current frame began. */
  let ran = false;
  let frame = 0;
  let timer = 0;
  const run = () => {
    ran = true;
    arm();
    fn();
  };
  const onFrame = () => {
    cancelAnimationFrame(frame);
    clearTimeout(timer);
    frame = 0;
    ran = false;
    if (pending) {
      pending = false;
      run();
    }
  };
  const arm = () => {
    if (frame) return;
    frame = requestAnimationFrame(onFrame);
    timer = setTimeout(onFrame, HIDDEN_WAIT_MS);
  };
  return () => {
    if (pending) return;
    if (ran) {
      pending = true;
      arm();
    } else run();
  };
}

/** The first index of sorted `arr` whose item does not come before `item`. */
export function lowerBound(arr, item, cmp) {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(arr[mid], item) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Items kept in `cmp` order by binary search: insert and remove are a search plus one splice. An
 * item's sort key must not change while it is in the list (remove it, change it, insert it again).
 */
export class SortedList {
  constructor(cmp) {
    this.cmp = cmp;
    /** The items in order: read it, never write it. */
    this.items = [];
  }

  get size() {
    return this.items.length;
  }

  insert(item) {
    this.items.splice(lowerBound(this.items, item, this.cmp), 0, item);
  }

  remove(item) {
    const a = this.items;
    let i = lowerBound(a, item, this.cmp);
    while (i < a.length && a[i] !== item && this.cmp(a[i], item) === 0) i++;
    if (a[i] !== item) i = a.indexOf(item);
    if (i >= 0) a.splice(i, 1);
  }

  /** Removes and returns the last item. */
  pop() {
    return this.items.pop();
  }

  clear() {
    this.items = [];
  }
}

/**
 * A matcher for a filter box's text: every word of it must occur in an item's search text
 * (case-insensitive), or null when the box is empty (no filter).
 */
export function matcher(text) {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return null;
  return (haystack) => words.every((w) => haystack.includes(w));
}

/**
 * Wires a filter box: `onChange(match)` after each edit (one per frame at most), with the box's
 * matcher (null when empty).
 */
export function filterBox(input, onChange) {
  const changed = coalesce(() => onChange(matcher(input.value)));
  input.addEventListener('input', changed);
}

export class VirtualList {
  /**
   * @param {object} o
   * @param {HTMLElement} o.scroller the element that scrolls, holding the table
   * @param {HTMLTableElement} o.table its tbody gets the rows
   * @param {() => readonly object[]} o.items the rows to show now, in order (called at render)
   * @param {(item: object) => string} o.key an item's stable key
   * @param {(item: object) => HTMLTableRowElement} o.row builds an item's row
   * @param {(tr: HTMLTableRowElement, item: object) => void} [o.live] updates the time-dependent
   *   cells of a row in view, at every render
   * @param {string} [o.empty] what an empty list says
   */
  constructor(o) {
    this.o = o;
    this.body = o.table.tBodies[0];
    this.columns = o.table.tHead?.rows[0]?.cells.length ?? 1;
    this.rowPx = DEFAULT_ROW_PX;
    this.measured = false;
    /** key -> { tr, item, v } for the rows in the DOM. */
    this.rows = new Map();
    this.current = [];
    this.top = this.spacer();
    this.bottom = this.spacer();
    this.emptyRow = document.createElement('tr');
    this.emptyRow.className = 'vempty';
    const td = document.createElement('td');
    td.colSpan = this.columns;
    td.textContent = o.empty ?? '';
    this.emptyRow.append(td);
    /** Renders so far, also on the table as `data-renders` (bench/dashboard.ts reads it). */
    this.renders = 0;
    this.schedule = coalesce(() => this.render());
    o.scroller.addEventListener('scroll', this.schedule, { passive: true });
    // The box grows with its first rows (up to its max-height) and with the window: what is in view changes.
    new ResizeObserver(this.schedule).observe(o.scroller);
  }

  spacer() {
    const tr = document.createElement('tr');
    tr.className = 'vspacer';
    tr.setAttribute('aria-hidden', 'true');
    const td = document.createElement('td');
    td.colSpan = this.columns;
    tr.append(td);
    return tr;
  }

  /** Scrolls back to the first row (after the filter changed, say). */
  scrollToTop() {
    this.o.scroller.scrollTop = 0;
    this.schedule();
  }

  render() {
    this.renders++;
    this.o.table.dataset.renders = String(this.renders);
    const items = this.o.items();
    const n = items.length;
    const { scroller } = this.o;
    const head = this.o.table.tHead?.offsetHeight ?? 0;
    const h = this.rowPx;
    let first = 0;
    let last = Math.min(n, UNMEASURED_ROWS);
    if (scroller.clientHeight > 0) {
      const from = scroller.scrollTop - head;
      // Never past the end (a list that shrank under a scrolled box shows its last rows).
      first = Math.max(0, Math.min(n - MARGIN, Math.floor(from / h) - MARGIN));
      last = Math.max(first, Math.min(n, Math.ceil((from + scroller.clientHeight) / h) + MARGIN));
    }
    const next = new Map();
    const trs = [];
    for (let i = first; i < last; i++) {
      const item = items[i];
      const k = this.o.key(item);
      let r = this.rows.get(k);
      if (!r || r.item !== item || r.v !== item.v) r = { tr: this.o.row(item), item, v: item.v };
      next.set(k, r);
      trs.push(r.tr);
      this.o.live?.(r.tr, item);
    }
    this.rows = next;
    this.top.style.height = `${first * h}px`;
    this.bottom.style.height = `${(n - last) * h}px`;
    const same = trs.length === this.current.length && trs.every((tr, i) => tr === this.current[i]);
    if (!same || (n === 0) !== (this.body.firstChild === this.emptyRow)) {
      if (n === 0) this.body.replaceChildren(this.emptyRow);
      else this.body.replaceChildren(this.top, ...trs, this.bottom);
      this.current = trs;
    }
    if (!this.measured && trs.length > 0) {
      const px = trs[0].getBoundingClientRect().height;
      if (px > 0) {
        this.measured = true;
        if (Math.abs(px - h) > 0.5) {
          this.rowPx = px;
          this.schedule();
        }
      }
    }
  }
}

/** "3 s", "4 min", "2 h" ago (from `at`, epoch ms), or '' when unknown. */
export function age(at, now = Date.now()) {
  if (!at) return '';
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** Sets an element's text only when it differs (no DOM write for an unchanged value). */
export function setText(e, text) {
  const t = String(text ?? '');
  if (e.textContent !== t) e.textContent = t;
}
