/**
 * Docker image references, parsed the way the engine does
 * (github.com/distribution/reference grammar):
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component ( "/" path-component )*
 *   domain    := host [ ":" port ]      (first component with a "." or ":", or "localhost")
 */
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]{1,5})?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$/;

export interface ImageReference {
  /** Registry host[:port]; `docker.io` when none is given. */
  registry: string;
  /** Repository path inside the registry, e.g. `library/nginx` or `team/app/web`. */
  repository: string;
  /** Tag; `latest` when neither tag nor digest is given. */
  tag: string | null;
  digest: string | null;
}

export class ImageReferenceError extends Error {
  override name = 'ImageReferenceError';
}

export function parseImageReference(ref: string): ImageReference {
  if (ref.length === 0 || ref.length > 255 + 128 + 80) throw new ImageReferenceError('empty or too long');
  if (/\s/.test(ref)) throw new ImageReferenceError('contains whitespace');
  let rest = ref;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw new ImageReferenceError(`invalid digest "${digest}"`);
  }
  let tag: string | null = null;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw new ImageReferenceError(`invalid tag "${tag}"`);
  }
  const parts = rest.split('/');
  let registry = 'docker.io';
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || /[A-Z]/.test(first))) {
    if (!DOMAIN_RE.test(first)) throw new ImageReferenceError(`invalid registry "${first}"`);
    const port = first.match(/:([0-9]+)$/)?.[1];
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
      throw new ImageReferenceError(`invalid registry port "${port}"`);
    }
    registry = first;
    parts.shift();
  }
  if (parts.length === 0) throw new ImageReferenceError('missing repository');
  for (const p of parts) {
    if (!PATH_COMPONENT_RE.test(p)) throw new ImageReferenceError(`invalid repository component "${p}"`);
  }
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > 255) throw new ImageReferenceError('repository name too long');
  return { registry, repository, tag: tag ?? (digest === null ? 'latest' : null), digest };
}

/** The fully qualified name to pull: `registry/repository[:tag][@digest]`. */
export function formatImageReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== null ? `:${ref.tag}` : ''}${ref.digest !== null ? `@${ref.digest}` : ''}`;
}
