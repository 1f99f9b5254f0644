import { type FormEvent, useState } from 'react';
import { LoginError, type Session, signIn } from '../session.tsx';

/** The login form: a user of the API (or the local admin), by password. */
export function LoginPage(props: { onSignedIn(s: Session): void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setBusy(true);
    setError(null);
    try {
      props.onSignedIn(await signIn(String(form.get('username') ?? ''), String(form.get('password') ?? '')));
    } catch (err) {
      setError(err instanceof LoginError ? err.message : String(err));
      setBusy(false);
    }
  };
  return (
    <main className="login">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Nebula</h1>
        <p className="muted">Sign in with your Nebula user.</p>
        <label htmlFor="username">Username</label>
        <input id="username" name="username" autoComplete="username" required />
        <label htmlFor="password">Password</label>
        <input id="password" name="password" type="password" autoComplete="current-password" required />
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
