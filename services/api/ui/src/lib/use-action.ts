import { useState } from 'react';
import { errorText } from './use-query.ts';

/**
 * One write at a time from a page: `busy` while it runs (buttons disabled), the API's message when
 * it fails (shown next to the buttons), `done` called after a success (e.g. a reload).
 */
export function useAction(done: () => void) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (write: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await write();
      done();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}
