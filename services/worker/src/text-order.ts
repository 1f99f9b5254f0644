/**
 * Orders of text without ICU: String#localeCompare loads the ICU collation data (~3 MB resident in
 * a worker that idles in about 80), and none of what the worker sorts is language text.
 */

/** Plain code-unit order (ids, ISO timestamps). */
export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const isDigit = (c: number) => c >= 48 && c <= 57;

/**
 * Names as people read them: digit runs by their value (`web-2` before `web-10`), letters without
 * regard to case; then code-unit order between names that are still equal (case, leading zeros).
 */
export function naturalCompare(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(j);
    if (isDigit(ca) && isDigit(cb)) {
      let ei = i;
      let ej = j;
      while (ei < a.length && isDigit(a.charCodeAt(ei))) ei++;
      while (ej < b.length && isDigit(b.charCodeAt(ej))) ej++;
      const ra = a.slice(i, ei).replace(/^0+(?=\d)/, '');
      const rb = b.slice(j, ej).replace(/^0+(?=\d)/, '');
      if (ra.length !== rb.length) return ra.length - rb.length;
      if (ra !== rb) return ra < rb ? -1 : 1;
      i = ei;
      j = ej;
      continue;
    }
    const la = a[i]?.toLowerCase() ?? '';
    const lb = b[j]?.toLowerCase() ?? '';
    if (la !== lb) return la < lb ? -1 : 1;
    i++;
    j++;
  }
  if (i < a.length || j < b.length) return i < a.length ? 1 : -1;
  return byCodeUnit(a, b);
}
