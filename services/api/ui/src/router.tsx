import { type MouseEvent, type ReactNode, useEffect, useState } from 'react';

/**
 * Client routes under /ui, with the History API (the API answers index.html for each of them):
 *
 *   /ui                 apps          /ui/apps/<name>     one app
 *   /ui/rollouts/<id>   a rollout     /ui/hosts           hosts        /ui/cron-jobs   cron jobs
 *   /ui/cron-jobs/<name>  one cron job and its runs
 *   /ui/device-groups   device groups /ui/device-groups/<name>  one group   /ui/device-groups/<name>/prunes  its prunes
 */
export type Route =
  | { page: 'apps' }
  | { page: 'app'; name: string }
  | { page: 'rollout'; id: string }
  | { page: 'hosts' }
  | { page: 'cron-jobs' }
  | { page: 'cron-job'; name: string }
  | { page: 'device-groups' }
  | { page: 'device-group'; name: string }
  | { page: 'prunes'; group: string }
  | { page: 'not-found'; path: string };

export function parseRoute(path: string): Route {
  const rest = path.replace(/^\/ui\/?/, '').replace(/\/+$/, '');
  const parts = rest.split('/').map((p) => decodeURIComponent(p));
  if (rest === '' || rest === 'apps') return { page: 'apps' };
  if (parts[0] === 'apps' && parts.length === 2 && parts[1]) return { page: 'app', name: parts[1] };
  if (parts[0] === 'rollouts' && parts.length === 2 && parts[1]) return { page: 'rollout', id: parts[1] };
  if (rest === 'hosts') return { page: 'hosts' };
  if (rest === 'cron-jobs') return { page: 'cron-jobs' };
  if (parts[0] === 'cron-jobs' && parts.length === 2 && parts[1]) return { page: 'cron-job', name: parts[1] };
  if (rest === 'device-groups') return { page: 'device-groups' };
  if (parts[0] === 'device-groups' && parts.length === 2 && parts[1]) return { page: 'device-group', name: parts[1] };
  if (parts[0] === 'device-groups' && parts.length === 3 && parts[1] && parts[2] === 'prunes') return { page: 'prunes', group: parts[1] };
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
    case 'cron-job':
      return `/ui/cron-jobs/${encodeURIComponent(r.name)}`;
    case 'device-groups':
      return '/ui/device-groups';
    case 'device-group':
      return `/ui/device-groups/${encodeURIComponent(r.name)}`;
    case 'prunes':
      return `/ui/device-groups/${encodeURIComponent(r.group)}/prunes`;
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
