export interface FatalLogLine {
  level: number;
  variables: string[];
  msg: string;
}

/**
 * The fatal JSON log line (pino level 60) in a process's output. Its stdout and stderr arrive
 * interleaved in no fixed order, so the last line is not always the fatal one.
 */
export function fatalLogLine(output: string): FatalLogLine {
  const fatal = output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as FatalLogLine)
    .find((l) => l.level === 60);
  if (!fatal) throw new Error(`no fatal JSON log line in: ${output}`);
  return fatal;
}
