import { useState } from 'react';
import { AppPage } from './pages/app-page.tsx';
import { AppsPage } from './pages/apps-page.tsx';
import { CronJobPage } from './pages/cron-job-page.tsx';
import { CronJobsPage } from './pages/cron-jobs-page.tsx';
import { DeviceGroupPage } from './pages/device-group-page.tsx';
import { DeviceGroupsPage } from './pages/device-groups-page.tsx';
import { HostsPage } from './pages/hosts-page.tsx';
import { LoginPage } from './pages/login-page.tsx';
import { PrunesPage } from './pages/prunes-page.tsx';
import { RolloutPage } from './pages/rollout-page.tsx';
import { Link, type Route, useRoute } from './router.tsx';
import { type Session, SessionContext } from './session.tsx';

/** The shell: the login page until signed in, then the navigation and the page of the route. */
export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const route = useRoute();
  if (session === null) return <LoginPage onSignedIn={setSession} />;
  return (
    <SessionContext.Provider value={session}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Nebula</span>
        <nav aria-label="Main">
          <NavLink to={{ page: 'apps' }} current={route.page === 'apps' || route.page === 'app' || route.page === 'rollout'}>
            Apps
          </NavLink>
          <NavLink to={{ page: 'hosts' }} current={route.page === 'hosts'}>
            Hosts
          </NavLink>
          <NavLink to={{ page: 'device-groups' }} current={route.page === 'device-groups' || route.page === 'device-group' || route.page === 'prunes'}>
            Device groups
          </NavLink>
          <NavLink to={{ page: 'cron-jobs' }} current={route.page === 'cron-jobs' || route.page === 'cron-job'}>
            Cron jobs
          </NavLink>
        </nav>
        <span className="who">
          {session.me.name}
          {session.me.permissions.admin ? ' (admin)' : ''}
          <button type="button" className="link" onClick={() => setSession(null)}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route} />
      </main>
    </SessionContext.Provider>
  );
}

function NavLink(props: { to: Route; current: boolean; children: string }) {
  return (
    <span aria-current={props.current ? 'page' : undefined}>
      <Link to={props.to}>{props.children}</Link>
    </span>
  );
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'apps':
      return <AppsPage />;
    case 'app':
      return <AppPage key={route.name} name={route.name} />;
    case 'rollout':
      return <RolloutPage key={route.id} id={route.id} />;
    case 'hosts':
      return <HostsPage />;
    case 'cron-jobs':
      return <CronJobsPage />;
    case 'cron-job':
      return <CronJobPage key={route.name} name={route.name} />;
    case 'device-groups':
      return <DeviceGroupsPage />;
    case 'device-group':
      return <DeviceGroupPage key={route.name} name={route.name} />;
    case 'prunes':
      return <PrunesPage key={route.group} group={route.group} />;
    case 'not-found':
      return (
        <section>
          <h1>Not found</h1>
          <p>
            Nothing at {route.path}. <Link to={{ page: 'apps' }}>Back to the apps</Link>
          </p>
        </section>
      );
  }
}
