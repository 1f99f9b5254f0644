import { type MouseEvent, type ReactNode, useEffect, useState } from 'react';

/**
 * Client routes under /ui, with the History API (the API answers index.html for each of them):
 *
 *   /ui                 apps          /ui/apps/<name>     one app
 *   /ui/rollouts/<id>   a rollout     /ui/hosts           hosts        /ui/cron-jobs   cron jobs
 */
export type Route =
  | { page: 'apps' }
  | { page: 'app'; name: string }
  | { page: 'rollout'; id: string }
  | { page: 'hosts' }
  | { page: 'cron-jobs' }
  | { page: 'not-found'; path: string };

export function parseRoute(path: string): Route {
  const rest = path.replace(/^\/ui\/?/, '').replace(/\/+$/, '');
  const parts = rest.split('/').map((p) => decodeURIComponent(p));
  if (rest === '' || rest === 'apps') return { page: 'apps' };
  if (parts[0] === 'apps' && parts.length === 2 && parts[1]) return { page: 'app', name: parts[1] };
  if (parts[0] === 'rollouts' && parts.length === 2 && parts[1]) return { page: 'rollout', id: parts[1] };
  if (rest === 'hosts') return { page: 'hosts' };
  if (rest === 'cron-jobs') return { page: 'cron-jobs' };
  return { page: 'not-found', path };
}

export function hrefOf(r: Route): string {
  switch (r.page) {
    case 'apps':
      return '/ui/';
    case 'app':
      return `/ui/apps/${encodeURIComponent(r.name)}`;
    case 'rollout':
      return `/ui/rollouts/${encodeURIComponent(r.id)}`;
    case 'hosts':
      return '/ui/hosts';
    case 'cron-jobs':
      return '/ui/cron-jobs';
    case 'not-found':
      return r.path;
  }
}

export function navigate(r: Route): void {
  history.pushState(null, '', hrefOf(r));
  dispatchEvent(new PopStateEvent('popstate'));
}

export function useRoute(): Route {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const on = () => setPath(location.pathname);
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  return parseRoute(path);
}

export function Link(props: { to: Route; children: ReactNode; className?: string }) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={hrefOf(props.to)} onClick={onClick} className={props.className}>
      {props.children}
    </a>
  );
}
