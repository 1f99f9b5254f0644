import { nebulaErrorBody } from '@nebula/client';
import { useCallback, useEffect, useRef, useState } from 'react';

/**
 * One read through the typed client, with loading and error states, again on `reload()` or every
 * `everyMs`. Each call gets a deadline (15 s) and is aborted when the page goes away.
 */
export interface QueryState<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload(): void;
}

export function useQuery<T>(run: (signal: AbortSignal) => Promise<T>, deps: readonly unknown[], everyMs?: number): QueryState<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const runRef = useRef(run);
  runRef.current = run;
  // biome-ignore lint/correctness/useExhaustiveDependencies: deps are the caller's, tick forces a reload
  useEffect(() => {
    const ac = new AbortController();
    const signal = AbortSignal.any([ac.signal, AbortSignal.timeout(15_000)]);
    setLoading(true);
    runRef.current(signal).then(
      (d) => {
        if (ac.signal.aborted) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (err: unknown) => {
        if (ac.signal.aborted) return;
        setError(errorText(err));
        setLoading(false);
      },
    );
    const timer = everyMs ? setTimeout(() => setTick((t) => t + 1), everyMs) : null;
    return () => {
      ac.abort();
      if (timer) clearTimeout(timer);
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

/** What to show for a failed call: the API's message, and its compat body when it has one. */
export function errorText(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const body = nebulaErrorBody(err);
  const extra = body && Object.keys(body).length > 0 ? ` ${JSON.stringify(body)}` : '';
  return `${message}${extra}`;
}
