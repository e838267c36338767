// Data for a page: a query, reloaded on demand, at an interval and on subscription messages.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { query, subscribe } from './api.js';

export function useQuery(text, variables, { pollMs = 0 } = {}) {
  const [state, setState] = useState({ data: undefined, error: undefined, loading: true });
  const key = JSON.stringify(variables);
  const seq = useRef(0);
  const reload = useCallback(() => {
    const mine = ++seq.current;
    query(text, variables).then(
      (data) => mine === seq.current && setState({ data, error: undefined, loading: false }),
      (error) => mine === seq.current && setState({ data: undefined, error, loading: false }),
    );
  }, [text, key]);
  useEffect(() => {
    setState({ data: undefined, error: undefined, loading: true });
    reload();
    if (!pollMs) return undefined;
    const timer = setInterval(reload, pollMs);
    return () => clearInterval(timer);
  }, [reload, pollMs]);
  return { ...state, reload };
}

/** Reloads (coalesced) on every message of each subscription in `subscriptions` ([query, variables]). */
export function useLive(subscriptions, reload) {
  const key = JSON.stringify(subscriptions);
  const [events, setEvents] = useState(0);
  useEffect(() => {
    let pending;
    const onData = () => {
      setEvents((n) => n + 1);
      clearTimeout(pending);
      pending = setTimeout(reload, 150);
    };
    const stops = subscriptions.map(([text, variables]) => subscribe(text, variables, onData));
    return () => {
      clearTimeout(pending);
      for (const stop of stops) stop();
    };
  }, [key, reload]);
  return events;
}
