import { nebulaErrorBody } from '@nebula/client';
import { type FormEvent, useId, useState } from 'react';
import { errorText } from '../lib/use-query.ts';
import { apiFieldErrors, type FieldError, type Validated, validateConfigText } from '../lib/validate-config.ts';

/**
 * A JSON editor for an app config, validated with the API's schema as the user types; the errors
 * (and the API's, after a submit) are listed by field right under it, each naming its field.
 */
export function ConfigEditor(props: {
  initial: string;
  submitLabel: string;
  onSubmit(config: Record<string, unknown>): Promise<void>;
  label?: string;
  /** The check as the user types (default: the app config's schema). */
  validate?: (text: string) => Validated;
}) {
  const [text, setText] = useState(props.initial);
  const [serverErrors, setServerErrors] = useState<FieldError[]>([]);
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = useId();
  const checked = (props.validate ?? validateConfigText)(text);
  const errors = checked.ok ? serverErrors : checked.errors;
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!checked.ok) return;
    setBusy(true);
    setFailure(null);
    setServerErrors([]);
    try {
      await props.onSubmit(checked.config);
    } catch (err) {
      const fields = apiFieldErrors(nebulaErrorBody(err));
      setServerErrors(fields);
      setFailure(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} className="config-editor">
      <label htmlFor={`${id}-json`}>{props.label ?? 'Config (JSON)'}</label>
      <textarea
        id={`${id}-json`}
        value={text}
        spellCheck={false}
        rows={Math.min(24, Math.max(6, text.split('\n').length + 1))}
        onChange={(e) => {
          setText(e.target.value);
          setServerErrors([]);
        }}
        aria-invalid={errors.length > 0}
        aria-describedby={`${id}-errors`}
      />
      <ul id={`${id}-errors`} className="field-errors" aria-live="polite">
        {errors.map((e) => (
          <li key={`${e.field}/${e.path}/${e.message}`} data-field={e.field}>
            <strong>{e.field === '' ? 'config' : e.field}</strong>
            {e.path && <span className="mono">.{e.path}</span>}: {e.message}
          </li>
        ))}
      </ul>
      {failure && <p className="error">{failure}</p>}
      <button type="submit" disabled={busy || !checked.ok}>
        {props.submitLabel}
      </button>
    </form>
  );
}
