import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A private CA and a server certificate it signed, as PEM files in a folder of their own. */
export interface TestCa {
  dir: string;
  /** The CA's certificate: what a client is told to trust. */
  caFile: string;
  /** The server's certificate (for `subjectAltName`) and its private key. */
  certFile: string;
  keyFile: string;
  ca: string;
  cert: string;
  key: string;
  remove(): void;
}

/**
 * Makes a throwaway CA and a server certificate for 127.0.0.1 and localhost (or `altNames`), valid
 * one day, with openssl (the stack installs it). For TLS tests: the server gets cert + key, the
 * client trusts `ca`; a client that does not is refused.
 */
export function makeTestCa(opts: { altNames?: string[]; cn?: string } = {}): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-ca-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 30_000 });
  try {
    ssl('req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=nebula test CA');
    ssl('req', '-newkey', 'ed25519', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${opts.cn ?? '127.0.0.1'}`);
    writeFileSync(join(dir, 'san.ext'), `subjectAltName=${(opts.altNames ?? ['IP:127.0.0.1', 'DNS:localhost']).join(',')}\n`);
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext');
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const file = (name: string) => join(dir, name);
  return {
    dir,
    caFile: file('ca.pem'),
    certFile: file('server.pem'),
    keyFile: file('server.key'),
    ca: readFileSync(file('ca.pem'), 'utf8'),
    cert: readFileSync(file('server.pem'), 'utf8'),
    key: readFileSync(file('server.key'), 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
